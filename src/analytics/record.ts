// The normalised attack record. Field names and meanings follow the classic hpfeeds-logger model
// (src_ip, dest_ip, dest_port, transport, protocol, ssh_username, ssh_password, command, url, md5,
// signature, severity, sensor, app, vendor_product, direction, ids_type), so SIEM mappings and saved
// analyst queries written for MHN/CHN logs carry over. Fields hpfeeds-logger does not have are
// `session`, `sha256`, `login` and `pot_id`.
import { canonicalIp } from './ip.js';

/** A stored event as the analytics domain reads it (a structural subset of the events writer's PendingEvent). */
export interface StoredEvent {
  id: number;
  node: string;
  potId: string;
  potType: string;
  eventType: string;
  /** Epoch ms. */
  timestamp: number;
  data: Record<string, unknown>;
}

/**
 * An event's stored data JSON as the fold reads it: an object as is, any other JSON value as
 * `{ value }`, text that is not JSON as `{ raw }` (as the events writer gives its batch hooks).
 */
export function parseEventData(json: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(json);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
  } catch {
    return { raw: json };
  }
}

export interface AttackRecord {
  event_id: number;
  /** hpfeeds-logger `type`: the event's type (cowrie eventid, dionaea channel, ...). */
  type: string;
  /** hpfeeds-logger `sensor`: the node that reported the event. */
  sensor: string;
  pot_id: string;
  /** hpfeeds-logger `app`: the honeypot software (the pot type). */
  app: string;
  vendor_product: string;
  direction: 'inbound';
  ids_type: 'network';
  /** Epoch ms. */
  timestamp: number;
  src_ip: string | null;
  src_port: number | null;
  dest_ip: string | null;
  dest_port: number | null;
  /** Layer 4: tcp or udp. */
  transport: string;
  /** Application protocol when the pot says (ssh, telnet, smbd, http...), else hpfeeds-logger's default 'ip'. */
  protocol: string;
  session: string | null;
  ssh_username: string | null;
  ssh_password: string | null;
  /** 'success' | 'failed' for login events, null otherwise. */
  login: 'success' | 'failed' | null;
  command: string | null;
  url: string | null;
  md5: string | null;
  sha256: string | null;
  signature: string;
  severity: 'high' | 'medium' | 'low';
}

/** Longest string kept in a record field: rollup keys and session steps are indexed. */
export const MAX_FIELD_LENGTH = 1024;

function text(v: unknown): string | null {
  if (typeof v === 'string') return v.length > MAX_FIELD_LENGTH ? v.slice(0, MAX_FIELD_LENGTH) : v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

function port(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : null;
}

function hexHash(v: unknown, length: number): string | null {
  if (typeof v !== 'string' || v.length !== length || !/^[0-9a-fA-F]+$/.test(v)) return null;
  return v.toLowerCase();
}

// Aliases used by the pots we know and by generic loggers, most specific first, per record field.
const ALIASES = {
  transport: ['transport', 'connection_transport'],
  md5: ['md5', 'md5hash', 'md5sum'],
  sha256: ['sha256', 'shasum', 'sha256hash', 'sha256sum'],
  srcIp: ['src_ip', 'source_ip', 'remote_host', 'saddr', 'peerIP', 'attacker_ip', 'remote_ip', 'client_ip', 'src_host', 'ip'],
  srcPort: ['src_port', 'source_port', 'remote_port', 'sport', 'peerPort', 'attacker_source_port', 'client_port'],
  dstIp: ['dst_ip', 'dest_ip', 'destination_ip', 'local_host', 'daddr', 'hostIP', 'honey_ip', 'public_ip'],
  dstPort: ['dst_port', 'dest_port', 'destination_port', 'local_port', 'dport', 'hostPort', 'honey_port'],
  protocol: ['protocol', 'connection_protocol', 'app_protocol', 'service'],
  session: ['session', 'session_id', 'sessionid', 'sid'],
  username: ['username', 'user', 'login', 'ssh_username'],
  password: ['password', 'pass', 'ssh_password'],
  command: ['command', 'cmd', 'input'],
  url: ['url', 'request_url', 'uri', 'download_url'],
} as const;
type AliasField = keyof typeof ALIASES;
const ALIAS_FIELDS = Object.keys(ALIASES) as AliasField[];
/** alias -> (field slot, rank within the field's list); a key names one field only. */
const ALIAS_SLOT = new Map<string, { slot: number; rank: number }>();
ALIAS_FIELDS.forEach((field, slot) => ALIASES[field].forEach((alias, rank) => ALIAS_SLOT.set(alias, { slot, rank })));

/**
 * For every record field, the value of its most specific alias that is present and not empty.
 * One pass over the event's own keys (about ten) and a Map lookup each: probing every alias of
 * every field (about sixty lookups, nearly all of keys the object lacks) was the largest single
 * cost of normalising.
 */
function aliasValues(d: Record<string, unknown>): unknown[] {
  const values: unknown[] = new Array(ALIAS_FIELDS.length);
  const ranks: number[] = new Array(ALIAS_FIELDS.length).fill(Infinity);
  for (const key in d) {
    const at = ALIAS_SLOT.get(key);
    if (at === undefined || at.rank >= ranks[at.slot]! || !Object.hasOwn(d, key)) continue;
    const v = d[key];
    if (v === undefined || v === null || v === '') continue;
    values[at.slot] = v;
    ranks[at.slot] = at.rank;
  }
  return values;
}
const SLOT = Object.fromEntries(ALIAS_FIELDS.map((f, i) => [f, i])) as Record<AliasField, number>;

function nested(d: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = d[key];
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function baseRecord(e: StoredEvent, d: Record<string, unknown>): AttackRecord {
  const v = aliasValues(d);
  const transport = text(v[SLOT.transport])?.toLowerCase() ?? 'tcp';
  const md5 = hexHash(v[SLOT.md5], 32);
  const sha256 = hexHash(v[SLOT.sha256], 64);
  return {
    event_id: e.id,
    type: e.eventType,
    sensor: e.node,
    pot_id: e.potId,
    app: e.potType,
    vendor_product: e.potType,
    direction: 'inbound',
    ids_type: 'network',
    timestamp: e.timestamp,
    src_ip: canonicalIp(v[SLOT.srcIp]),
    src_port: port(v[SLOT.srcPort]),
    dest_ip: canonicalIp(v[SLOT.dstIp]),
    dest_port: port(v[SLOT.dstPort]),
    transport: transport === 'udp' ? 'udp' : transport === 'tcp' ? 'tcp' : transport.slice(0, 16),
    protocol: text(v[SLOT.protocol])?.slice(0, 32) ?? 'ip',
    session: text(v[SLOT.session]),
    ssh_username: text(v[SLOT.username]),
    ssh_password: text(v[SLOT.password]),
    login: null,
    command: text(v[SLOT.command]),
    url: text(v[SLOT.url]),
    md5,
    sha256,
    signature: text(d.signature) ?? 'Connection to Honeypot',
    severity: d.severity === 'low' || d.severity === 'medium' ? d.severity : 'high',
  };
}

/** cowrie JSON log events (also what the real node's cowrie text lines are turned into). */
function cowrie(r: AttackRecord, d: Record<string, unknown>, eventId: string): void {
  r.vendor_product = 'Cowrie';
  r.app = r.app === '' || r.app === 'unknown' ? 'cowrie' : r.app;
  r.type = eventId;
  // cowrie puts the typed line in `input` and a free-text `message` in every event: only input is a command.
  r.command = null;
  r.url = null;
  r.sha256 = null;
  const proto = typeof d.protocol === 'string' ? d.protocol : null;
  r.protocol = proto ?? 'ip';
  const shell = proto === 'telnet' ? 'Telnet' : 'SSH';
  switch (eventId) {
    case 'cowrie.session.connect':
      r.signature = `${shell} session on cowrie honeypot`;
      break;
    case 'cowrie.login.success':
    case 'cowrie.login.failed':
      r.login = eventId === 'cowrie.login.success' ? 'success' : 'failed';
      r.signature = `${shell} login attempted on cowrie honeypot`;
      break;
    case 'cowrie.command.input':
      r.command = text(d.input);
      r.signature = 'command attempted on cowrie honeypot';
      break;
    case 'cowrie.command.failed':
      r.command = text(d.input);
      r.signature = 'unknown command attempted on cowrie honeypot';
      break;
    case 'cowrie.session.file_download':
    case 'cowrie.session.file_download.failed':
      r.url = text(d.url);
      r.sha256 = hexHash(d.shasum, 64);
      r.signature = 'URL download attempted on cowrie honeypot';
      break;
    case 'cowrie.session.file_upload':
      r.sha256 = hexHash(d.shasum, 64);
      r.signature = 'file upload attempted on cowrie honeypot';
      break;
    case 'cowrie.direct-tcpip.request':
      r.signature = 'port forwarding attempted on cowrie honeypot';
      r.dest_ip = canonicalIp(d.dst_ip) ?? r.dest_ip;
      r.dest_port = port(d.dst_port) ?? r.dest_port;
      break;
    default:
      r.signature = `${shell} session on cowrie honeypot`;
  }
  if (r.login === null) {
    r.ssh_username = null;
    r.ssh_password = null;
  }
}

/** dionaea: the hpfeeds ihandler payloads (connections, capture) and the log_json form. */
function dionaea(r: AttackRecord, d: Record<string, unknown>): void {
  r.vendor_product = 'Dionaea';
  const conn = nested(d, 'connection');
  if (conn !== undefined) {
    if (typeof conn.protocol === 'string') r.protocol = conn.protocol.slice(0, 32);
    if (typeof conn.transport === 'string') r.transport = conn.transport.slice(0, 16);
  }
  const dl = nested(d, 'download');
  if (dl !== undefined) {
    r.url ??= text(dl.url);
    r.md5 ??= hexHash(dl.md5hash ?? dl.md5, 32);
  }
  const creds = nested(d, 'credentials');
  if (creds !== undefined) {
    r.ssh_username ??= text(Array.isArray(creds.username) ? creds.username[0] : creds.username);
    r.ssh_password ??= text(Array.isArray(creds.password) ? creds.password[0] : creds.password);
  }
  r.signature = r.url !== null || r.md5 !== null ? 'Malware download on dionaea honeypot' : 'Connection to Honeypot';
  if (r.ssh_username !== null || r.ssh_password !== null) r.login = 'failed';
}

function isDionaea(potType: string, eventType: string): boolean {
  return potType === 'dionaea' || eventType.startsWith('dionaea.');
}

/**
 * The normalised record of one stored event. Pure and total: unknown pots get whatever the generic
 * aliases find; a field that is absent or malformed (not an address, port out of range) is null.
 */
export function normaliseEvent(e: StoredEvent): AttackRecord {
  const d = e.data;
  const r = baseRecord(e, d);
  const eventId = typeof d.eventid === 'string' && d.eventid.startsWith('cowrie.') ? d.eventid : e.eventType;
  if (eventId.startsWith('cowrie.')) cowrie(r, d, eventId);
  else if (isDionaea(e.potType, e.eventType)) dionaea(r, d);
  else if (r.ssh_username !== null || r.ssh_password !== null) {
    const t = e.eventType.toLowerCase();
    r.login = t.includes('success') || d.success === true ? 'success' : 'failed';
  }
  return r;
}
