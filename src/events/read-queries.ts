// Query module of the events domain for the read pool (src/db/read-pool.ts): runs in a read worker
// thread, on that worker's read-only connection.
import type Database from 'better-sqlite3';
import { EventQueries, type EventListQuery, type EventStatsQuery } from './queries.js';

export const EVENT_QUERY_MODULE = 'events';

export function createQueries(db: Database.Database) {
  const q = new EventQueries(db);
  return {
    list: (args: EventListQuery) => q.list(args),
    get: (args: { id: number }) => q.get(args.id),
    stats: (args: EventStatsQuery & { since: number; until: number }) => q.stats(args),
  };
}
