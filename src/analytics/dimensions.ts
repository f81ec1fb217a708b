// Stored numbers of rollup dimensions and attacker fact kinds. They are persisted: never renumber.

/** Dimensions of GET /attacks/top and /attacks/timeline. */
export const DIMENSIONS = [
  'src_ip',
  'dst_port',
  'country',
  'asn',
  'username',
  'password',
  'credential',
  'command',
  'url',
  'hash',
  'node',
  'pot_type',
  'event_type',
] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/**
 * Rollup `dim` column. node and pot_type have no rows of their own: every event has one event_type
 * row, whose node and pot_type columns answer them.
 */
export const DIM_ID = {
  event_type: 0,
  src_ip: 1,
  dst_port: 2,
  country: 3,
  asn: 4,
  username: 5,
  password: 6,
  credential: 7,
  command: 8,
  url: 9,
  hash: 10,
} as const;
export type RolledDimension = keyof typeof DIM_ID;
export const ROLLED_DIM_IDS: readonly number[] = Object.values(DIM_ID);

/** Where a dimension is read: the rollup dim and the column grouped on. */
export function dimensionSource(by: Dimension): { dim: number; column: 'key' | 'node' | 'pot_type' } {
  if (by === 'node') return { dim: DIM_ID.event_type, column: 'node' };
  if (by === 'pot_type') return { dim: DIM_ID.event_type, column: 'pot_type' };
  return { dim: DIM_ID[by], column: 'key' };
}

/**
 * attacker_facts.kind. Where an attacker went is two facts per event, not five: `target` is the
 * JSON [node, pot_id, pot_type] and `service` is `port/protocol`; nodes, pots, pot types, ports and
 * protocols are summed from them on read (one upsert per event and kind is the ingest's main cost).
 */
export const FACT = {
  credential: 4,
  command: 5,
  url: 6,
  hash: 7,
  target: 10,
  service: 11,
} as const;
export type FactKind = keyof typeof FACT;
export const FACT_NAMES: Record<number, FactKind> = Object.fromEntries(Object.entries(FACT).map(([k, v]) => [v, k as FactKind]));

/** Attacker tags: `scanner` from the operator's list, the others from behaviour. */
export const TAGS = ['scanner', 'bruteforce', 'logged_in', 'downloaded', 'ran_commands'] as const;
export type Tag = (typeof TAGS)[number];

/** Failed logins from one address that make it a `bruteforce` attacker. */
export const DEFAULT_BRUTEFORCE_MIN_FAILURES = 5;

/** Credential rollup key: JSON keeps any username/password distinct and reversible. */
export function credentialKey(username: string, password: string): string {
  return JSON.stringify([username, password]);
}

export function parseCredentialKey(key: string): { username: string; password: string } {
  try {
    const v = JSON.parse(key) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'string' && typeof v[1] === 'string') return { username: v[0], password: v[1] };
  } catch {
    // fall through
  }
  return { username: key, password: '' };
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const MINUTE_MS = 60_000;

/** `service` fact value: destination port and application protocol ('' when unknown). */
export function serviceKey(port: number | null, protocol: string): string {
  return (port === null ? '' : String(port)) + '/' + (protocol === 'ip' ? '' : protocol);
}

export function parseServiceKey(v: string): { port: number | null; protocol: string | null } {
  const i = v.indexOf('/');
  const port = i > 0 ? Number(v.slice(0, i)) : NaN;
  const protocol = i >= 0 ? v.slice(i + 1) : '';
  return { port: Number.isInteger(port) ? port : null, protocol: protocol === '' ? null : protocol };
}

export function parseTargetKey(v: string): { node: string; potId: string; potType: string } {
  try {
    const a = JSON.parse(v) as unknown;
    if (Array.isArray(a) && a.length === 3) return { node: String(a[0]), potId: String(a[1]), potType: String(a[2]) };
  } catch {
    // fall through
  }
  return { node: v, potId: '', potType: '' };
}
