// `hpfeeds subscribe|publish|sendfile`, argument-compatible with the reference `hpfeeds-client`.
import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { DEFAULT_MAX_FRAME_LENGTH } from './codec.js';
import { HpfeedsClient } from './client.js';

export interface HpfeedsCliIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  /** Read by `publish --file -`. */
  stdin: AsyncIterable<Buffer | string>;
  /** Aborting ends `subscribe` with exit code 0 (wire SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
}

export const HPFEEDS_CLI_USAGE = `usage: hpfeeds <subscribe|publish|sendfile> [options] [payload...]

  subscribe                 print every message received on the channels
  publish [payload...]      publish the arguments (joined by spaces), or --file
  sendfile PATH             publish the contents of PATH (reference alias of publish --file)

options:
  --host HOST               broker host (default localhost)
  -p, --port PORT           broker port (default 10000)
  -i, --ident IDENT         authkey ident (required)
  -s, --secret SECRET       authkey secret (or --secret-file PATH, first line)
  -c, --chan CHANNEL        channel, repeatable (at least one)
  --tls                     connect with TLS (system CAs)
  --tlscert PATH            CA certificate to trust (implies --tls; alias --certfile)
  --servername NAME         TLS server name to verify (default: host)
  --file PATH               publish: payload from a file, '-' = stdin
  -n, --count N             subscribe: exit after N messages

subscribe writes one line per message to stdout, as the reference client does:
  [feedcli] publish to CHANNEL by IDENT: PAYLOAD
PAYLOAD is the UTF-8 text, or "base64:" + base64 of the bytes when the payload is binary or
contains control characters (so every message stays on one line). Status lines go to stderr.
Exit status: 0 ok, 1 connection or broker error, 2 usage error.
`;

interface CliOptions {
  action: 'subscribe' | 'publish' | 'sendfile';
  host: string;
  port: number;
  ident: string;
  secret: string;
  channels: string[];
  tls: boolean;
  caPath?: string;
  servername?: string;
  file?: string;
  count?: number;
  words: string[];
}

class UsageError extends Error {}

const VALUE_OPTIONS: Record<string, string> = {
  '--host': 'host',
  '-p': 'port',
  '--port': 'port',
  '-i': 'ident',
  '--ident': 'ident',
  '-s': 'secret',
  '--secret': 'secret',
  '--secret-file': 'secretFile',
  '-c': 'chan',
  '--chan': 'chan',
  '--tlscert': 'ca',
  '--certfile': 'ca',
  '--servername': 'servername',
  '--file': 'file',
  '-n': 'count',
  '--count': 'count',
};

async function parseArgs(argv: string[]): Promise<CliOptions | 'help'> {
  const values: Record<string, string> = {};
  const channels: string[] = [];
  const positional: string[] = [];
  let tls = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') return 'help';
    if (arg === '--tls') {
      tls = true;
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const name = VALUE_OPTIONS[flag];
    if (name === undefined) {
      if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`);
      positional.push(arg);
      continue;
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i];
    else throw new UsageError(`${flag} needs a value`);
    if (name === 'chan') channels.push(value);
    else values[name] = value;
  }

  const [action, ...words] = positional;
  if (action !== 'subscribe' && action !== 'publish' && action !== 'sendfile') {
    throw new UsageError('You need to give "subscribe" or "publish" as <action>.');
  }
  const port = Number(values.port ?? 10000);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`invalid port ${values.port}`);
  if (!values.ident) throw new UsageError('--ident is required');
  let secret = values.secret;
  if (values.secretFile !== undefined) secret = (await readFile(values.secretFile, 'utf8')).split(/\r?\n/)[0];
  if (!secret) throw new UsageError('--secret (or --secret-file) is required');
  if (channels.length === 0) throw new UsageError('at least one --chan is required');
  let count: number | undefined;
  if (values.count !== undefined) {
    count = Number(values.count);
    if (!Number.isInteger(count) || count < 1) throw new UsageError(`invalid --count ${values.count}`);
  }
  let file = values.file;
  if (action === 'sendfile') {
    if (words.length !== 1) throw new UsageError('sendfile takes exactly one PATH');
    file = words[0];
  }
  if (action === 'publish' && file === undefined && words.length === 0) throw new UsageError('publish needs a payload or --file');
  return {
    action,
    host: values.host ?? 'localhost',
    port,
    ident: values.ident,
    secret,
    channels,
    tls: tls || values.ca !== undefined,
    caPath: values.ca,
    servername: values.servername,
    file,
    count,
    words: action === 'sendfile' ? [] : words,
  };
}

/** Text if it prints on one line, else base64 (lossless, unlike the reference's 20-byte hex preview). */
export function formatPayload(payload: Buffer): string {
  if (isUtf8(payload)) {
    const text = payload.toString('utf8');
    // eslint-disable-next-line no-control-regex
    if (!/[\u0000-\u0008\u000a-\u001f\u007f]/.test(text)) return text;
  }
  return `base64:${payload.toString('base64')}`;
}

async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

export async function runHpfeedsCli(argv: string[], io: HpfeedsCliIo): Promise<number> {
  const log = (line: string) => io.stderr.write(`[feedcli] ${line}\n`);
  let opts: CliOptions | 'help';
  try {
    opts = await parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) {
      log(`Error: ${(err as Error).message}`);
      return 1;
    }
    io.stderr.write(`${HPFEEDS_CLI_USAGE}\nerror: ${err.message}\n`);
    return 2;
  }
  if (opts === 'help') {
    io.stdout.write(HPFEEDS_CLI_USAGE);
    return 0;
  }

  let payload: Buffer | undefined;
  try {
    if (opts.action !== 'subscribe') {
      payload = opts.file === undefined ? Buffer.from(opts.words.join(' ')) : opts.file === '-' ? await readAll(io.stdin) : await readFile(opts.file);
      const frameLength = 7 + Buffer.byteLength(opts.ident) + Math.max(...opts.channels.map((c) => Buffer.byteLength(c))) + payload.length;
      if (frameLength > DEFAULT_MAX_FRAME_LENGTH) {
        log(`Error: payload of ${payload.length} bytes exceeds the 1 MiB hpfeeds limit`);
        return 1;
      }
    }
    const client = new HpfeedsClient({
      host: opts.host,
      port: opts.port,
      ident: opts.ident,
      secret: opts.secret,
      tls: opts.tls ? { ca: opts.caPath ? await readFile(opts.caPath) : undefined, servername: opts.servername } : undefined,
      reconnect: false,
    });
    await client.connect();
    log(`connected to ${client.brokerName}`);
    return payload === undefined ? await subscribe(client, opts, io, log) : await publish(client, opts, payload, log);
  } catch (err) {
    log(`Error: ${(err as Error).message}`);
    return 1;
  }
}

async function publish(client: HpfeedsClient, opts: CliOptions, payload: Buffer, log: (line: string) => void): Promise<number> {
  client.publish(opts.channels, payload);
  // close() half-closes and waits for the broker to hang up, which it does only after handling
  // our publishes: an ERROR (e.g. no pub permission) has arrived by then.
  await client.close();
  if (client.lastServerError !== undefined) {
    log(`Error message from broker: ${client.lastServerError}`);
    return 1;
  }
  log(`published ${payload.length} bytes to ${opts.channels.join(', ')}`);
  return 0;
}

function subscribe(client: HpfeedsClient, opts: CliOptions, io: HpfeedsCliIo, log: (line: string) => void): Promise<number> {
  return new Promise<number>((resolve) => {
    let received = 0;
    let finished = false;
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      io.signal?.removeEventListener('abort', onAbort);
      void client.close(1000).then(() => resolve(code));
    };
    const onAbort = () => finish(0);
    client.on('message', (ident, channel, payload) => {
      if (finished) return;
      io.stdout.write(`[feedcli] publish to ${channel} by ${ident}: ${formatPayload(payload)}\n`);
      if (opts.count !== undefined && ++received >= opts.count) finish(0);
    });
    client.on('error', (err) => log(`Error message from broker: ${err.message}`));
    client.on('disconnect', (reason) => {
      if (!finished) log(`connection lost: ${reason}`);
      finish(1);
    });
    if (io.signal?.aborted) return finish(0);
    io.signal?.addEventListener('abort', onAbort);
    client.subscribe(opts.channels);
  });
}
