// cowrie's human-readable messages back into cowrie's structured fields.
//
// The public HoneyBee node forwards each line of cowrie's JSON log as a PotStatusUpdate carrying
// only the rendered `message` (cowrie's `format % event`). Every format cowrie 2.4 emits for SSH
// and telnet sessions (src/cowrie/{ssh,telnet,shell,insults,commands,core}/*.py, and the proxy
// variants) is fixed, so the fields can be read back. The result carries the same keys cowrie's
// JSON event would (eventid, src_ip, username, input, url, shasum, duration, ...), typed as cowrie
// types them (ports, durations and terminal sizes are numbers).
//
// This runs once per forwarded line on the ingest path, so it dispatches on the first word (one
// Map lookup) and then parses one known format with string operations or one anchored,
// precompiled expression. No cascade of expressions is tried in turn.

/** Fields recovered from one line; always has `eventid`. */
export type CowrieTextFields = { eventid: string } & Record<string, unknown>;

type Parser = (text: string) => CowrieTextFields | undefined;

const HEX64 = /^[0-9a-f]{64}$/;
const NEW_CONNECTION = /^New connection: (\S+):(\d{1,5}) \((\S+):(\d{1,5})\) \[session: ([^\]\s]*)\]$/;
const DURATION = /^(\d+(?:\.\d+)?) (seconds|milliseconds)$/;
const DIRECT_TCP_REQUEST = /^direct-tcp connection request to (\S+):(\d{1,5}) from (\S+):(\d{1,5})$/;
const DIRECT_TCP_REDIRECT = /^redirected direct-tcp connection request from (\S+):(\d{1,5}) to (\S+):(\d{1,5}) to (\S+):(\d{1,5})$/;
const DIRECT_TCP_TUNNEL = /^tunneled direct-tcp connection request (\S+):(\d{1,5})->(\S+):(\d{1,5}) to (\S+):(\d{1,5})$/;
const DIRECT_TCP_DATA = /^discarded direct-tcp forward request (\S+) to (\S+):(\d{1,5})(?: with data ([\s\S]*))?$/;

/**
 * cowrie logs typed input read by a command as `INPUT (<realm>): ...` under different eventids,
 * depending on the command (src/cowrie/commands/*.py). Unknown realms get cowrie.session.input.
 */
const INPUT_REALMS: ReadonlyMap<string, string> = new Map([
  ['awk', 'cowrie.session.input'],
  ['base64', 'cowrie.session.input'],
  ['cat', 'cowrie.session.input'],
  ['dd', 'cowrie.session.input'],
  ['tee', 'cowrie.session.input'],
  ['chpasswd', 'cowrie.command.input'],
  ['crontab', 'cowrie.command.input'],
  ['grep', 'cowrie.command.input'],
  ['tail', 'cowrie.command.input'],
  ['head', 'cowrie.command.input'],
  ['perl', 'cowrie.command.input'],
  ['python', 'cowrie.command.input'],
  ['uniq', 'cowrie.command.input'],
  ['wc', 'cowrie.command.input'],
  ['passwd', 'cowrie.command.success'],
  ['php', 'cowrie.command.success'],
  ['scp', 'cowrie.session.file_download'],
]);

function after(text: string, prefix: string): string | undefined {
  return text.startsWith(prefix) ? text.slice(prefix.length) : undefined;
}

function port(s: string): number | undefined {
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

/** The sha-256 cowrie names stored artefacts and tty logs after (the path's last segment). */
function shasumOfPath(path: string): string | undefined {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return HEX64.test(base) ? base : undefined;
}

/** `<n> seconds` (cowrie 2.x, %d or %f) or `<n> milliseconds` (cowrie 3.x) -> duration fields. */
function duration(text: string): Record<string, number> | undefined {
  const m = DURATION.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return m[2] === 'seconds' ? { duration: n } : { duration: n / 1000, duration_ms: n };
}

function newConnection(text: string): CowrieTextFields | undefined {
  const m = NEW_CONNECTION.exec(text);
  if (m === null) return undefined;
  const srcPort = port(m[2]!);
  const dstPort = port(m[4]!);
  if (srcPort === undefined || dstPort === undefined) return undefined;
  return { eventid: 'cowrie.session.connect', src_ip: m[1]!, src_port: srcPort, dst_ip: m[3]!, dst_port: dstPort, session: m[5]! };
}

/** Twisted renders bytes credentials as b'...' in some cowrie versions. */
function unbytes(s: string): string {
  return s.length >= 3 && s.startsWith("b'") && s.endsWith("'") ? s.slice(2, -1) : s;
}

function loginAttempt(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'login attempt [');
  if (rest === undefined) return undefined;
  let eventid: string;
  let inner: string;
  if (rest.endsWith('] succeeded')) {
    eventid = 'cowrie.login.success';
    inner = rest.slice(0, -'] succeeded'.length);
  } else if (rest.endsWith('] failed')) {
    eventid = 'cowrie.login.failed';
    inner = rest.slice(0, -'] failed'.length);
  } else {
    return undefined;
  }
  // Usernames with '/' are rare, passwords with '/' are not: the first '/' separates them.
  const slash = inner.indexOf('/');
  if (slash < 0) return { eventid, username: unbytes(inner) }; // cowrie 3 public-key login: no password
  return { eventid, username: unbytes(inner.slice(0, slash)), password: unbytes(inner.slice(slash + 1)) };
}

function ttyLog(text: string): CowrieTextFields | undefined {
  let rest = after(text, 'Closing TTY Log: ');
  if (rest !== undefined) {
    const at = rest.lastIndexOf(' after ');
    if (at < 0) return undefined;
    const d = duration(rest.slice(at + 7));
    if (d === undefined) return undefined;
    const ttylog = rest.slice(0, at);
    const shasum = shasumOfPath(ttylog);
    return { eventid: 'cowrie.log.closed', ttylog, ...d, ...(shasum !== undefined ? { shasum } : {}) };
  }
  rest = after(text, 'Opening TTY Log: ');
  if (rest !== undefined) return { eventid: 'cowrie.log.open', ttylog: rest };
  return undefined;
}

function connectionLost(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'Connection lost after ');
  if (rest === undefined) return undefined;
  const d = duration(rest);
  return d === undefined ? undefined : { eventid: 'cowrie.session.closed', ...d };
}

function commandResult(text: string): CowrieTextFields | undefined {
  let input = after(text, 'Command found: ');
  if (input !== undefined) return { eventid: 'cowrie.command.success', input };
  input = after(text, 'Command not found: ');
  if (input !== undefined) return { eventid: 'cowrie.command.failed', input };
  return undefined;
}

function terminalSize(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'Terminal Size: ');
  if (rest === undefined) return undefined;
  const sp = rest.indexOf(' ');
  if (sp < 1) return undefined;
  const width = Number(rest.slice(0, sp));
  const height = Number(rest.slice(sp + 1));
  if (!Number.isInteger(width) || !Number.isInteger(height) || rest.length > 24) return undefined;
  return { eventid: 'cowrie.client.size', width, height };
}

function remoteVersion(text: string): CowrieTextFields | undefined {
  const version = after(text, 'Remote SSH version: ');
  return version === undefined ? undefined : { eventid: 'cowrie.client.version', version };
}

function hassh(text: string): CowrieTextFields | undefined {
  const h = after(text, 'SSH client hassh fingerprint: ');
  return h === undefined ? undefined : { eventid: 'cowrie.client.kex', hassh: h };
}

function requestEnv(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'request_env: ');
  if (rest === undefined) return undefined;
  const eq = rest.indexOf('=');
  if (eq < 0) return undefined;
  return { eventid: 'cowrie.client.var', name: rest.slice(0, eq), value: rest.slice(eq + 1) };
}

function directTcp(text: string): CowrieTextFields | undefined {
  const m = DIRECT_TCP_REQUEST.exec(text);
  if (m === null) return undefined;
  return { eventid: 'cowrie.direct-tcpip.request', dst_ip: m[1]!, dst_port: port(m[2]!), src_ip: m[3]!, src_port: port(m[4]!) };
}

function redirected(text: string): CowrieTextFields | undefined {
  const m = DIRECT_TCP_REDIRECT.exec(text);
  if (m === null) return undefined;
  return {
    eventid: 'cowrie.direct-tcpip.redirect',
    src_ip: m[1]!, src_port: port(m[2]!), dst_ip: m[3]!, dst_port: port(m[4]!), new_ip: m[5]!, new_port: port(m[6]!),
  };
}

function tunneled(text: string): CowrieTextFields | undefined {
  const m = DIRECT_TCP_TUNNEL.exec(text);
  if (m === null) return undefined;
  return {
    eventid: 'cowrie.direct-tcpip.tunnel',
    src_ip: m[1]!, src_port: port(m[2]!), dst_ip: m[3]!, dst_port: port(m[4]!), new_ip: m[5]!, new_port: port(m[6]!),
  };
}

function discarded(text: string): CowrieTextFields | undefined {
  const m = DIRECT_TCP_DATA.exec(text);
  if (m === null) return undefined;
  return {
    eventid: 'cowrie.direct-tcpip.data',
    id: m[1]!, dst_ip: m[2]!, dst_port: port(m[3]!),
    ...(m[4] !== undefined ? { data: m[4] } : {}),
  };
}

function tunnelProxy(text: string): CowrieTextFields | undefined {
  const data = after(text, 'sending via tunnel proxy ');
  return data === undefined ? undefined : { eventid: 'cowrie.tunnelproxy-tcpip.data', data };
}

function downloaded(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'Downloaded URL (');
  if (rest === undefined) return undefined;
  // The URL is attacker-chosen and may contain anything; the fixed tail is searched from the end.
  const mid = rest.lastIndexOf(') with SHA-256 ');
  if (mid < 0) return undefined;
  const tail = rest.slice(mid + 15);
  const to = tail.indexOf(' to ');
  if (to < 0) return undefined;
  return { eventid: 'cowrie.session.file_download', url: rest.slice(0, mid), shasum: tail.slice(0, to), outfile: tail.slice(to + 4) };
}

function downloadFailed(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'Attempt to download file(s) from URL (');
  if (rest === undefined || !rest.endsWith(') failed')) return undefined;
  return { eventid: 'cowrie.session.file_download.failed', url: rest.slice(0, -8) };
}

function saved(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'Saved stdin contents with SHA-256 ') ?? after(text, 'Saved redir contents with SHA-256 ');
  if (rest === undefined) return undefined;
  const to = rest.indexOf(' to ');
  if (to < 0) return undefined;
  return { eventid: 'cowrie.session.file_download', shasum: rest.slice(0, to), outfile: rest.slice(to + 4) };
}

function uploaded(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'SCP Uploaded file "') ?? after(text, 'SFTP Uploaded file "');
  if (rest === undefined) return undefined;
  const q = rest.lastIndexOf('" to ');
  if (q < 0) return undefined;
  const outfile = rest.slice(q + 5);
  const shasum = shasumOfPath(outfile);
  return { eventid: 'cowrie.session.file_upload', filename: rest.slice(0, q), outfile, ...(shasum !== undefined ? { shasum } : {}) };
}

function input(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'INPUT (');
  if (rest === undefined) return undefined;
  const close = rest.indexOf('): ');
  if (close < 0) return undefined;
  const realm = rest.slice(0, close);
  return { eventid: INPUT_REALMS.get(realm) ?? 'cowrie.session.input', realm, input: rest.slice(close + 3) };
}

function publicKey(text: string): CowrieTextFields | undefined {
  const rest = after(text, 'public key attempt for user ');
  if (rest === undefined) return undefined;
  // The username is the attacker's; the fixed parts are searched from the end.
  const fp = rest.lastIndexOf(' with fingerprint ');
  if (fp < 0) return undefined;
  const ty = rest.lastIndexOf(' of type ', fp);
  if (ty < 0) return undefined;
  return { eventid: 'cowrie.client.fingerprint', username: rest.slice(0, ty), type: rest.slice(ty + 9, fp), fingerprint: rest.slice(fp + 18) };
}

function lostBackend(text: string): CowrieTextFields | undefined {
  let rest = after(text, 'Lost connection with the pool backend: id ');
  if (rest !== undefined) return { eventid: 'cowrie.proxy.client_disconnect', vm_id: rest };
  rest = after(text, "Lost connection with the proxy's backend: ");
  if (rest === undefined) return undefined;
  const colon = rest.lastIndexOf(':');
  if (colon < 0) return undefined;
  return { eventid: 'cowrie.proxy.client_disconnect', honey_ip: rest.slice(0, colon), honey_port: port(rest.slice(colon + 1)) };
}

/** First word of cowrie's message -> the one parser for the formats starting with it. */
const BY_FIRST_WORD: ReadonlyMap<string, Parser> = new Map<string, Parser>([
  ['New', newConnection],
  ['login', loginAttempt],
  ['CMD:', (t) => (t.startsWith('CMD: ') ? { eventid: 'cowrie.command.input', input: t.slice(5) } : undefined)],
  ['Command', commandResult],
  ['Closing', ttyLog],
  ['Opening', ttyLog],
  ['Connection', connectionLost],
  ['Terminal', terminalSize],
  ['Remote', remoteVersion],
  ['SSH', hassh],
  ['request_env:', requestEnv],
  ['direct-tcp', directTcp],
  ['redirected', redirected],
  ['tunneled', tunneled],
  ['discarded', discarded],
  ['sending', tunnelProxy],
  ['Downloaded', downloaded],
  ['Attempt', downloadFailed],
  ['Saved', saved],
  ['SCP', uploaded],
  ['SFTP', uploaded],
  ['INPUT', input],
  ['public', publicKey],
  ['Lost', lostBackend],
]);

/**
 * Parses one cowrie message. Returns its eventid and fields, or undefined when the text matches
 * none of cowrie's formats. Never throws; linear in the text's length.
 */
export function parseCowrieText(text: string): CowrieTextFields | undefined {
  const sp = text.indexOf(' ');
  if (sp <= 0 || sp > 16) return undefined;
  const parser = BY_FIRST_WORD.get(text.slice(0, sp));
  return parser === undefined ? undefined : parser(text);
}
