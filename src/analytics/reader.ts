// The read side of the AttackStore as the routes use it: every read is a promise, so it can run in
// the read pool's worker processes (pooledAttackReader) or, in tests, on a store in this process.
import { moduleBeside, type QueryModuleRef, type ReadPool } from '../db/index.js';
import type { AnalyticsQueryOptions } from './read-queries.js';
import type { AttackStore } from './store.js';

type ReadMethod = 'top' | 'timeline' | 'attacker' | 'sessions' | 'session' | 'intelIps' | 'indicators' | 'ignoredCount';
export type IndicatorKind = Parameters<AttackStore['indicators']>[0];

export type AttackReader = {
  [K in ReadMethod]: (...args: Parameters<AttackStore[K]>) => Promise<ReturnType<AttackStore[K]>>;
};

export const ANALYTICS_QUERY_MODULE = 'analytics';

/** The read-pool module of the analytics domain: pass it to the ReadPool's `modules`. */
export function analyticsQueryModules(options: AnalyticsQueryOptions = {}): Record<string, QueryModuleRef> {
  return { [ANALYTICS_QUERY_MODULE]: { url: moduleBeside(import.meta.url, 'read-queries'), options } };
}

/** Reads through the read pool (the pool must have loaded analyticsQueryModules()). */
export function pooledAttackReader(pool: ReadPool): AttackReader {
  const run = <T>(query: string, args: unknown) => pool.run<T>(ANALYTICS_QUERY_MODULE, query, args);
  return {
    top: (q) => run('top', q),
    timeline: (q) => run('timeline', q),
    attacker: (ip, limit) => run('attacker', { ip, limit }),
    sessions: (q) => run('sessions', q),
    session: (id) => run('session', { id }),
    intelIps: (q) => run('intelIps', q),
    indicators: (kind, since, until, limit) => run('indicators', { kind, since, until, limit }),
    ignoredCount: (since, until) => run('ignoredCount', { since, until }),
  };
}

/** Reads on a store in this process (tests, tools): the same answers, synchronously computed. */
export function directAttackReader(store: AttackStore): AttackReader {
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => R) =>
    async (...a: A) =>
      fn(...a);
  return {
    top: wrap((q) => store.top(q)),
    timeline: wrap((q) => store.timeline(q)),
    attacker: wrap((ip, limit) => store.attacker(ip, limit)),
    sessions: wrap((q) => store.sessions(q)),
    session: wrap((id) => store.session(id)),
    intelIps: wrap((q) => store.intelIps(q)),
    indicators: wrap((kind, since, until, limit) => store.indicators(kind, since, until, limit)),
    ignoredCount: wrap((since, until) => store.ignoredCount(since, until)),
  };
}
