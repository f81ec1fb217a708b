// Batch hook of the events writer (the seam is described in src/events/store.ts): the attack
// analytics ingest, run in the writer thread inside each batch's transaction, so rollups commit
// with their events and none of that work runs on the event loop. Its settings arrive as plain
// data (the hook's init options), and it builds its own geo databases and CIDR lists from them.
import type Database from 'better-sqlite3';
import { createAttackIngest, type AnalyticsSettings, type AttackIngest } from './ingest.js';
import type { StoredEvent } from './record.js';

let ingest: AttackIngest | undefined;

export function init(_db: Database.Database, settings?: AnalyticsSettings): void {
  ingest = createAttackIngest(settings ?? {});
}

export function onEventBatch(db: Database.Database, batch: readonly StoredEvent[]): void {
  if (ingest === undefined) throw new Error('analytics batch hook used before init()');
  ingest(db, batch);
}
