// The storage seam of the events domain. The service talks to an EventStore only; SQLite
// (sqlite-store.ts: a writer worker thread plus a read pool) is the one implementation today, and a
// PostgreSQL store implements the same interface later.
//
// Plug-in seam for other domains (e.g. analytics rollups), hosted by the store's writer:
//
//   A *batch hook module* exports
//       export function onEventBatch(db: Database.Database, batch: readonly StoredEvent[]): void
//   and optionally
//       export function init(db: Database.Database, options?: unknown): void  // once, at writer start
//   (`options`: plain data given with the module's URL in `batchHooks`, e.g. the domain's settings)
//   It runs in the writer worker thread, synchronously, inside the transaction that inserts the batch
//   (after the inserts, so every event has its id), within a SAVEPOINT: if it throws, its own writes
//   are rolled back, the events are still committed, and the failure is logged and counted
//   (apiary_event_hook_failures_total). A hook therefore never costs events, and its writes commit
//   atomically with them when it succeeds. Batches arrive in commit order; events of one node are in
//   the order the node sent them.
//   A hook that buffers across batches (writes every N ms, not every batch) also exports
//       export function flush(db): void              // write what is buffered; the writer calls it in a
//                                                    // transaction when no batch came for 200 ms, and at close
//       export function pending(): boolean           // optional: anything to flush?
//       export function replayFrom(db, maxEventId: number): number | null
//   replayFrom is asked once at writer start: the committed events with ids above the returned one
//   (up to maxEventId) are fed to onEventBatch again, then flush() runs, before new batches are
//   taken; so a hook that records the last event id it wrote loses nothing to a crash.
//   Pass hook module URLs in the store's `batchHooks` option
//   (moduleBeside(import.meta.url, 'ingest') from the hook's domain; .ts under tsx, .js when built).
//
//   Read-side queries of other domains run in the read pool (src/db/read-pool.ts, "query modules").
import type { EventListQuery, EventPage, EventStats, EventStatsQuery } from './queries.js';
import type { EventJson } from './types.js';

/** One event as handed to the store: normalised, not yet committed. */
export interface NewEvent {
  node: string;
  potId: string;
  potType: string;
  eventType: string;
  /** Epoch ms (the node's time, or the receive time when it sent none usable). */
  timestamp: number;
  /** Epoch ms at which the core read the line. */
  receivedAt: number;
  /** The event data as JSON text, exactly as stored (and as republished). */
  dataJson: string;
  /** True for PotStatusUpdate-derived events (free text in data.message). */
  fromStatus: boolean;
}

/** A committed event's row: what it was handed to the store as, with its id. */
export interface StoredRow extends Readonly<NewEvent> {
  readonly id: number;
}

/** A committed event as batch hooks see it. */
export interface StoredEvent extends StoredRow {
  /** dataJson parsed (lazily, once). */
  readonly data: Record<string, unknown>;
}

export interface RetentionStep {
  /** Delete events received before this epoch ms (0 = no age limit). */
  receivedBefore: number;
  /** Keep at most this many of the newest events (0 = no row limit). */
  maxRows: number;
  /** Most rows deleted by this step. */
  limit: number;
}

/** What a store reports as it works; the event service turns it into metrics and log lines. */
export interface EventStoreObserver {
  /** Duration of one committed batch transaction. */
  commitSeconds(seconds: number): void;
  /** A batch hook threw: its writes were rolled back, the events committed. */
  hookFailed(hook: string, error: string): void;
  /** The store's writer failed (and is being restarted). */
  writerError(error: string): void;
}

/** One committed batch as a notes table gives it back: its key, its owner, its events. */
export interface NotedBatch {
  /** The batch's first (lowest) event id. */
  key: number;
  /** Who noted it (for the fan-out outbox: the origin of the core that committed it). */
  owner: string;
  /** Epoch ms at which it was committed. */
  notedAt: number;
  /** Its events still stored, in id order, as they were committed. */
  events: StoredRow[];
}

/**
 * A table in which every batch append() commits is noted, in the same transaction as its events,
 * keyed by its first event id, until the table's owner forgets it: what a crash left between a
 * commit and the work that must follow it (handing the batch to the other cores, folding it into
 * analytics) is found here afterwards. pg-batch-notes.ts says which tables there are.
 */
export interface BatchNotes {
  /** These batches (by key) were dealt with: forget them. */
  forget(keys: readonly number[]): Promise<void>;
  /** Batches noted before `before` (epoch ms) and still here, oldest first, with their events. */
  unsent(before: number, limit: number): Promise<NotedBatch[]>;
}

export interface EventStore {
  /**
   * Starts noting every committed batch in `table` (owned by the caller's domain; its shape in
   * pg-batch-notes.ts) under `owner`. Only PostgreSQL offers it: its transactions are the ones a
   * core can die in the middle of with other cores (or its next start) left to finish the work.
   */
  noteBatches?(table: string, owner: string): BatchNotes;
  /** Registers the (one) observer; the event service calls this. */
  observe?(observer: EventStoreObserver): void;
  /**
   * Appends a batch in one transaction (batch hooks included). Resolves, once committed, with the
   * ids of the events in batch order; rejects when the transaction failed (nothing was stored).
   * Batches commit in the order append() was called.
   */
  append(batch: readonly NewEvent[]): Promise<ArrayLike<number>>;
  /** Deletes at most `step.limit` expired rows; resolves with how many were deleted, by reason. */
  retentionStep(step: RetentionStep): Promise<{ age: number; rows: number }>;
  list(query: EventListQuery): Promise<EventPage>;
  get(id: number): Promise<EventJson | undefined>;
  stats(query: EventStatsQuery & { since: number; until: number }): Promise<EventStats>;
  /** Waits for appends in flight, then releases the store's threads and connections. */
  close(): Promise<void>;
}
