// Per-batch pre-aggregation: a batch of stored events becomes counter increments keyed like the
// rollup tables, so the store does one upsert per distinct key instead of one per event and
// dimension (a batch of 1000 events has a handful of event types, ports and countries).
import { credentialKey, DIM_ID, FACT, HOUR_MS, MINUTE_MS, serviceKey } from './dimensions.js';
import type { GeoEnricher, GeoInfo } from './geo.js';
import type { CidrList } from './ip.js';
import { normaliseEvent, type AttackRecord, type StoredEvent } from './record.js';

const SEP = '\u0001';

export interface AttackerDelta {
  ip: string;
  firstSeen: number;
  lastSeen: number;
  events: number;
  geo: GeoInfo;
  scanner: string | null;
  loginsFailed: number;
  loginsOk: number;
  commands: number;
  downloads: number;
  /** One entry per (kind, value). */
  facts: FactDelta[];
  /** facts indexed by kind, then value (no composite key strings to build per event). */
  factIndex: (Map<string, FactDelta> | undefined)[];
}

export interface FactDelta {
  kind: number;
  value: string;
  count: number;
  first: number;
  last: number;
}

export interface SessionStep {
  eventId: number;
  at: number;
  kind: string;
  value: string;
  detail: string | null;
}

export interface SessionDelta {
  node: string;
  potId: string;
  potType: string;
  session: string;
  srcIp: string | null;
  srcPort: number | null;
  destIp: string | null;
  destPort: number | null;
  protocol: string | null;
  startedAt: number;
  lastSeen: number;
  closed: boolean;
  events: number;
  loginsFailed: number;
  username: string | null;
  password: string | null;
  steps: SessionStep[];
}

export interface RollupIncrement {
  dim: number;
  hour: number;
  node: string;
  potType: string;
  key: string;
  count: number;
}

export interface MinuteIncrement {
  minute: number;
  node: string;
  potType: string;
  count: number;
}

export interface BatchAggregate {
  /** One increment per (dim, hour bucket, node, pot type, key). */
  hourly: RollupIncrement[];
  /** One increment per (minute bucket, node, pot type). */
  minutes: MinuteIncrement[];
  /** Where each (node, pot type, hour)'s increments are found while folding. */
  scopes: Map<string, Map<string, Map<number, Scope>>>;
  /** hour bucket -> events from ignored sources */
  ignored: Map<number, number>;
  asnNames: Map<number, string>;
  attackers: Map<string, AttackerDelta>;
  sessions: Map<string, SessionDelta>;
  /** Highest event id folded in (0: none): the store records it as the ingest's watermark. */
  lastEventId: number;
  /**
   * Keys (first event ids) of the noted batches folded in: on PostgreSQL the write deletes their
   * notes from analytics_backlog in its transaction (pg-ingest.ts). Empty when batches are not noted.
   */
  batches: number[];
  /** Events folded in. */
  events: number;
}

/** The increments of one (node, pot type, hour), indexed by dim then key. */
interface Scope {
  hour: number;
  node: string;
  potType: string;
  dims: (Map<string, RollupIncrement> | undefined)[];
  minutes: Map<number, MinuteIncrement>;
}

export interface AggregateContext {
  geo: GeoEnricher | null;
  ignore: CidrList;
  scanners: CidrList;
}

function scopeOf(agg: BatchAggregate, node: string, potType: string, hour: number): Scope {
  let byType = agg.scopes.get(node);
  if (byType === undefined) agg.scopes.set(node, (byType = new Map()));
  let byHour = byType.get(potType);
  if (byHour === undefined) byType.set(potType, (byHour = new Map()));
  let scope = byHour.get(hour);
  if (scope === undefined) byHour.set(hour, (scope = { hour, node, potType, dims: [], minutes: new Map() }));
  return scope;
}

/** Counts one event under (dim, key) in its scope's hourly increments. */
function bump(agg: BatchAggregate, scope: Scope, dim: number, key: string): void {
  let m = scope.dims[dim];
  if (m === undefined) scope.dims[dim] = m = new Map();
  const inc = m.get(key);
  if (inc === undefined) {
    const created = { dim, hour: scope.hour, node: scope.node, potType: scope.potType, key, count: 1 };
    m.set(key, created);
    agg.hourly.push(created);
  } else inc.count++;
}

/** `target` fact values, JSON [node, pot_id, pot_type], built once per distinct triple. */
const targets = new Map<string, Map<string, Map<string, string>>>();
function targetKey(node: string, potId: string, potType: string): string {
  let a = targets.get(node);
  if (a === undefined) {
    if (targets.size > 10_000) targets.clear();
    targets.set(node, (a = new Map()));
  }
  let b = a.get(potId);
  if (b === undefined) a.set(potId, (b = new Map()));
  let t = b.get(potType);
  if (t === undefined) b.set(potType, (t = JSON.stringify([node, potId, potType])));
  return t;
}

const UNKNOWN_GEO: GeoInfo = { scope: 'public', country: null, asn: null, as_org: null, city: null, latitude: null, longitude: null };

function fact(a: AttackerDelta, kind: number, value: string, at: number): void {
  let m = a.factIndex[kind];
  if (m === undefined) a.factIndex[kind] = m = new Map();
  const f = m.get(value);
  if (f === undefined) {
    const created = { kind, value, count: 1, first: at, last: at };
    m.set(value, created);
    a.facts.push(created);
  } else {
    f.count++;
    if (at < f.first) f.first = at;
    if (at > f.last) f.last = at;
  }
}

function sessionStep(r: AttackRecord): SessionStep | null {
  if (r.login !== null) {
    return { eventId: r.event_id, at: r.timestamp, kind: 'login.' + r.login, value: r.ssh_username ?? '', detail: r.ssh_password };
  }
  if (r.command !== null) {
    return { eventId: r.event_id, at: r.timestamp, kind: r.type === 'cowrie.command.failed' ? 'command.failed' : 'command', value: r.command, detail: null };
  }
  if (r.url !== null) return { eventId: r.event_id, at: r.timestamp, kind: 'download', value: r.url, detail: r.sha256 ?? r.md5 };
  if (r.sha256 !== null || r.md5 !== null) {
    return { eventId: r.event_id, at: r.timestamp, kind: 'upload', value: (r.sha256 ?? r.md5)!, detail: null };
  }
  return null;
}

export function emptyAggregate(): BatchAggregate {
  return { hourly: [], minutes: [], scopes: new Map(), ignored: new Map(), asnNames: new Map(), attackers: new Map(), sessions: new Map(), lastEventId: 0, batches: [], events: 0 };
}

/**
 * Folds a batch of stored events into counter increments: into `agg` when given (the buffered
 * ingest folds many writer batches into one aggregate), else a new one. Pure apart from the geo cache.
 */
export function aggregateBatch(batch: readonly StoredEvent[], ctx: AggregateContext, agg: BatchAggregate = emptyAggregate()): BatchAggregate {
  agg.events += batch.length;
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i]!;
    if (e.id > agg.lastEventId) agg.lastEventId = e.id;
    const r = normaliseEvent(e);
    const ip = r.src_ip;
    const ts = e.timestamp;
    const hour = Math.floor(ts / HOUR_MS);
    if (ip !== null && ctx.ignore.size > 0 && ctx.ignore.match(ip) !== undefined) {
      agg.ignored.set(hour, (agg.ignored.get(hour) ?? 0) + 1);
      continue;
    }
    const scope = scopeOf(agg, e.node, e.potType, hour);
    bump(agg, scope, DIM_ID.event_type, String(e.eventType));
    const minute = Math.floor(ts / MINUTE_MS);
    const m = scope.minutes.get(minute);
    if (m === undefined) {
      const created = { minute, node: e.node, potType: e.potType, count: 1 };
      scope.minutes.set(minute, created);
      agg.minutes.push(created);
    } else m.count++;
    if (r.dest_port !== null) bump(agg, scope, DIM_ID.dst_port, String(r.dest_port));
    const loginAttempt = r.login !== null && (r.ssh_username !== null || r.ssh_password !== null);
    if (loginAttempt) {
      const u = r.ssh_username ?? '';
      const p = r.ssh_password ?? '';
      bump(agg, scope, DIM_ID.username, u);
      bump(agg, scope, DIM_ID.password, p);
      bump(agg, scope, DIM_ID.credential, credentialKey(u, p));
    }
    if (r.command !== null) bump(agg, scope, DIM_ID.command, r.command);
    if (r.url !== null) bump(agg, scope, DIM_ID.url, r.url);
    const hash = r.sha256 ?? r.md5;
    if (hash !== null) bump(agg, scope, DIM_ID.hash, hash);

    if (ip !== null) {
      const geo = ctx.geo?.lookup(ip) ?? UNKNOWN_GEO;
      bump(agg, scope, DIM_ID.src_ip, ip);
      bump(agg, scope, DIM_ID.country, geo.scope !== 'public' ? geo.scope : (geo.country ?? 'unknown'));
      if (geo.asn !== null) {
        bump(agg, scope, DIM_ID.asn, String(geo.asn));
        if (geo.as_org !== null && !agg.asnNames.has(geo.asn)) agg.asnNames.set(geo.asn, geo.as_org);
      }
      let a = agg.attackers.get(ip);
      if (a === undefined) {
        const scanner = ctx.scanners.size > 0 ? ctx.scanners.match(ip) : undefined;
        a = {
          ip,
          firstSeen: ts,
          lastSeen: ts,
          events: 0,
          geo,
          scanner: scanner === undefined ? null : scanner,
          loginsFailed: 0,
          loginsOk: 0,
          commands: 0,
          downloads: 0,
          facts: [],
          factIndex: [],
        };
        agg.attackers.set(ip, a);
      }
      a.events++;
      if (ts < a.firstSeen) a.firstSeen = ts;
      if (ts > a.lastSeen) a.lastSeen = ts;
      fact(a, FACT.target, targetKey(e.node, e.potId, e.potType), ts);
      if (r.dest_port !== null || r.protocol !== 'ip') fact(a, FACT.service, serviceKey(r.dest_port, r.protocol), ts);
      if (loginAttempt) {
        if (r.login === 'success') a.loginsOk++;
        else a.loginsFailed++;
        fact(a, FACT.credential, credentialKey(r.ssh_username ?? '', r.ssh_password ?? ''), ts);
      }
      if (r.command !== null) {
        a.commands++;
        fact(a, FACT.command, r.command, ts);
      }
      if (r.url !== null) {
        a.downloads++;
        fact(a, FACT.url, r.url, ts);
      }
      if (hash !== null) fact(a, FACT.hash, hash, ts);
    }

    if (r.session !== null && r.session !== '') {
      const key = e.node + SEP + e.potId + SEP + r.session;
      let s = agg.sessions.get(key);
      if (s === undefined) {
        s = {
          node: e.node,
          potId: e.potId,
          potType: e.potType,
          session: r.session,
          srcIp: ip,
          srcPort: r.src_port,
          destIp: r.dest_ip,
          destPort: r.dest_port,
          protocol: r.protocol === 'ip' ? null : r.protocol,
          startedAt: ts,
          lastSeen: ts,
          closed: false,
          events: 0,
          loginsFailed: 0,
          username: null,
          password: null,
          steps: [],
        };
        agg.sessions.set(key, s);
      }
      s.events++;
      if (ts < s.startedAt) s.startedAt = ts;
      if (ts > s.lastSeen) s.lastSeen = ts;
      s.srcIp ??= ip;
      s.srcPort ??= r.src_port;
      s.destIp ??= r.dest_ip;
      s.destPort ??= r.dest_port;
      if (r.protocol !== 'ip') s.protocol ??= r.protocol;
      if (r.type === 'cowrie.session.closed') s.closed = true;
      if (r.login === 'failed') s.loginsFailed++;
      if (r.login === 'success') {
        s.username = r.ssh_username;
        s.password = r.ssh_password;
      }
      const step = sessionStep(r);
      if (step !== null) s.steps.push(step);
    }
  }
  return agg;
}

export const KEY_SEPARATOR = SEP;
