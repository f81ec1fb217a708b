// Batch hook of the events writer (the seam is described in src/events/store.ts): the attack
// analytics ingest, run in the writer thread inside each batch's transaction, so none of that work
// runs on the event loop. Batches are folded in memory by a fold thread of the hook's own (fold.ts)
// and written about once per `flushMs` (BufferedAttackIngest in ingest.ts); the writer calls
// flush() when idle and before closing, and
// replays events committed after the last write at start. Settings arrive as plain data (the
// hook's init options), and it builds its own geo databases and CIDR lists from them.
import type Database from 'better-sqlite3';
import { WorkerFolder } from './fold.js';
import { BufferedAttackIngest, type AnalyticsSettings } from './ingest.js';
import type { StoredEvent } from './record.js';

let ingest: BufferedAttackIngest | undefined;

function current(): BufferedAttackIngest {
  if (ingest === undefined) throw new Error('analytics batch hook used before init()');
  return ingest;
}

export function init(_db: Database.Database, settings?: AnalyticsSettings): void {
  // The fold runs in a thread of its own (fold.ts): the writer thread keeps the events' commits.
  ingest = new BufferedAttackIngest(settings ?? {}, undefined, new WorkerFolder(settings ?? {}));
}

export function onEventBatch(db: Database.Database, batch: readonly StoredEvent[]): void {
  current().onBatch(db, batch);
}

export function flush(db: Database.Database): void {
  current().flush(db);
}

/** Whether anything waits for flush(): the writer flushes when idle only then. */
export function pending(): boolean {
  return current().pendingEvents > 0;
}

export function replayFrom(db: Database.Database, maxEventId: number): number | null {
  return current().replayFrom(db, maxEventId);
}
