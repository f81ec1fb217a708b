// Query module of the analytics domain for the read pool (src/db/read-pool.ts): the AttackStore's
// reads run in a read worker process, on its read-only connection, so a wide top-N or STIX bundle
// never holds the event loop that serves nodes, hpfeeds and the API.
import type Database from 'better-sqlite3';
import type { IndicatorKind } from './reader.js';
import { SqliteAttackQueries } from './sqlite-queries.js';
import type { IntelIpQuery, SessionListQuery, TimelineQuery, TopQuery } from './store.js';

export interface AnalyticsQueryOptions {
  bruteforceMinFailures?: number;
}

export function createQueries(db: Database.Database, options: AnalyticsQueryOptions = {}) {
  const q = new SqliteAttackQueries(db, options);
  return {
    top: (a: TopQuery) => q.top(a),
    timeline: (a: TimelineQuery) => q.timeline(a),
    attacker: (a: { ip: string; limit: number }) => q.attacker(a.ip, a.limit),
    sessions: (a: SessionListQuery) => q.sessions(a),
    session: (a: { id: number }) => q.session(a.id),
    intelIps: (a: IntelIpQuery) => q.intelIps(a),
    indicators: (a: { kind: IndicatorKind; since: number; until: number; limit: number }) => q.indicators(a.kind, a.since, a.until, a.limit),
    ignoredCount: (a: { since: number; until: number }) => q.ignoredCount(a.since, a.until),
  };
}
