// How rows read from the analytics tables become AttackReader answers, shared by the SQLite and
// PostgreSQL stores so both give the same answers to the same rows: session rows, attacker tags
// and profiles (composite facts summed by their parts), intel rows and timeline series.
import {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  parseCredentialKey,
  parseServiceKey,
  parseTargetKey,
  type Tag,
} from './dimensions.js';
import type { AttackerProfile, FactRow, IntelIpRow, SessionRow, TimelineQuery, TimelineResult, TimelineSeries } from './store.js';

export class AnalyticsQueryError extends Error {
  override name = 'AnalyticsQueryError';
}

/** Most buckets a timeline may return per series. */
export const MAX_TIMELINE_BUCKETS = 10_000;

export interface SessionDbRow extends Omit<SessionRow, 'closed'> {
  closed: number;
}

export function sessionRow(r: SessionDbRow): SessionRow {
  return { ...r, closed: r.closed === 1 };
}

export const SESSION_COLUMNS =
  'id, node, pot_id, pot_type, session, src_ip, src_port, dest_ip, dest_port, protocol, started_at, last_seen, closed, events, logins_failed, username, password';

export interface AttackerDbRow {
  ip: string;
  first_seen: number;
  last_seen: number;
  events: number;
  scope: 'public' | 'private' | 'loopback' | 'reserved';
  country: string | null;
  asn: number | null;
  as_org: string | null;
  city: string | null;
  latitude: number | null;
  longitude: number | null;
  scanner: string | null;
  logins_failed: number;
  logins_ok: number;
  commands: number;
  downloads: number;
}

/** Sums composite facts (target, service) by one of their parts, highest count first. */
export function rollupFacts(rows: readonly FactRow[], part: (value: string) => string | null, limit: number): FactRow[] {
  const out = new Map<string, FactRow>();
  for (const r of rows) {
    const k = part(r.value);
    if (k === null) continue;
    const cur = out.get(k);
    if (cur === undefined) out.set(k, { value: k, count: r.count, first_seen: r.first_seen, last_seen: r.last_seen });
    else {
      cur.count += r.count;
      cur.first_seen = Math.min(cur.first_seen, r.first_seen);
      cur.last_seen = Math.max(cur.last_seen, r.last_seen);
    }
  }
  return [...out.values()].sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0)).slice(0, limit);
}

export function attackerTags(
  a: { scanner: string | null; logins_failed: number; logins_ok: number; downloads: number; commands: number },
  bruteforceMin: number,
): Tag[] {
  const tags: Tag[] = [];
  if (a.scanner !== null) tags.push('scanner');
  if (a.logins_failed >= bruteforceMin) tags.push('bruteforce');
  if (a.logins_ok > 0) tags.push('logged_in');
  if (a.downloads > 0) tags.push('downloaded');
  if (a.commands > 0) tags.push('ran_commands');
  return tags;
}

/** What a profile is built from: the attacker row, all its target and service facts, its top facts per kind, its newest sessions. */
export interface ProfileParts {
  attacker: AttackerDbRow;
  targets: FactRow[];
  services: FactRow[];
  credentials: FactRow[];
  commands: FactRow[];
  urls: FactRow[];
  hashes: FactRow[];
  sessions: SessionDbRow[];
}

export function attackerProfile(p: ProfileParts, listLimit: number, bruteforceMin: number): AttackerProfile {
  const a = p.attacker;
  return {
    ip: a.ip,
    first_seen: a.first_seen,
    last_seen: a.last_seen,
    events: a.events,
    geo: { scope: a.scope, country: a.country, asn: a.asn, as_org: a.as_org, city: a.city, latitude: a.latitude, longitude: a.longitude },
    scanner: a.scanner,
    tags: attackerTags(a, bruteforceMin),
    logins_failed: a.logins_failed,
    logins_ok: a.logins_ok,
    nodes: rollupFacts(p.targets, (v) => parseTargetKey(v).node, listLimit),
    pots: rollupFacts(p.targets, (v) => { const t = parseTargetKey(v); return t.node + '/' + t.potId; }, listLimit),
    pot_types: rollupFacts(p.targets, (v) => parseTargetKey(v).potType, listLimit),
    ports: rollupFacts(p.services, (v) => { const port = parseServiceKey(v).port; return port === null ? null : String(port); }, listLimit),
    protocols: rollupFacts(p.services, (v) => parseServiceKey(v).protocol, listLimit),
    credentials: p.credentials.map((f) => ({ ...f, ...parseCredentialKey(f.value) })),
    commands: p.commands,
    urls: p.urls,
    hashes: p.hashes,
    sessions: p.sessions.map(sessionRow),
  };
}

/** An intel row from an attacker row and the values of its most frequent service and target facts. */
export function intelIpRow(r: AttackerDbRow & { service: string | null; target: string | null }, bruteforceMin: number): IntelIpRow {
  const service = r.service === null ? { port: null, protocol: null } : parseServiceKey(r.service);
  return {
    ip: r.ip,
    events: r.events,
    first_seen: r.first_seen,
    last_seen: r.last_seen,
    country: r.country,
    asn: r.asn,
    as_org: r.as_org,
    tags: attackerTags(r, bruteforceMin),
    port: service.port,
    pot_type: r.target === null ? null : parseTargetKey(r.target).potType,
    protocol: service.protocol,
  };
}

/** A timeline's bucket unit and bucket range [from, to); throws on a window the API refuses. */
export function timelineRange(q: TimelineQuery): { unit: number; from: number; to: number } {
  if (q.until <= q.since) throw new AnalyticsQueryError('until must be after since');
  const unit = q.bucket === 'minute' ? MINUTE_MS : q.bucket === 'hour' ? HOUR_MS : DAY_MS;
  const from = Math.floor(q.since / unit);
  const to = Math.ceil(q.until / unit);
  if (to - from > MAX_TIMELINE_BUCKETS) {
    throw new AnalyticsQueryError(`range too large for ${q.bucket} buckets (max ${MAX_TIMELINE_BUCKETS})`);
  }
  if (q.bucket === 'minute' && q.by !== undefined && q.by !== 'node' && q.by !== 'pot_type') {
    throw new AnalyticsQueryError('minute timelines can be split by node or pot_type only');
  }
  return { unit, from, to };
}

/** Series from (bucket, key, count) rows in bucket order: one per key of `keys` (even without points), else per key met. */
export function timelineResult(
  q: TimelineQuery,
  unit: number,
  from: number,
  to: number,
  keys: string[] | null,
  rows: { b: number; k: string | null; c: number }[],
): TimelineResult {
  const series = new Map<string | null, TimelineSeries>();
  if (keys !== null) for (const k of keys) series.set(k, { key: k, points: [] });
  for (const r of rows) {
    let s = series.get(r.k);
    if (s === undefined) series.set(r.k, (s = { key: r.k, points: [] }));
    s.points.push({ start: r.b * unit, count: r.c });
  }
  if (q.by === undefined && series.size === 0) series.set(null, { key: null, points: [] });
  return { bucket: q.bucket, by: q.by ?? null, since: from * unit, until: to * unit, series: [...series.values()] };
}
