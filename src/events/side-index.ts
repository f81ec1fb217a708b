// The events writer's side of the side index tables events_by_node and events_by_type (schema.ts
// says what they hold; queries.ts reads them). Why they exist: an index on events gets its hot
// leaves (one per node, one per event type: ~15 pages) rewritten into the WAL at every commit, each
// page 2 pwrite calls and later a checkpoint write, whatever the batch size. The side tables are
// filled from events in bulk, sorted by key, so each of their leaves is dirtied once per catch-up
// of a few thousand rows instead of once per batch. Everything here runs on the writer's connection.
import type Database from 'better-sqlite3';
import { AppendedTail } from './side-index-tail.js';

/**
 * Rows left unindexed before the append that reaches this count makes a catch-up due. Read cost
 * grows with the tail (a filtered page scans it by id: ~1 ms per 4000 rows on the 2-core VM); write
 * cost per event falls with it (the ~15 leaves a catch-up dirties are shared by more rows: at 4000
 * rows they are well under 0.1 µs per event). Time since the last catch-up does not matter to
 * either, so there is no time trigger: at low rates the idle catch-up keeps the tail short.
 */
export const CATCH_UP_ROWS = 4000;
/** With no append for this long and a tail left, the tail is indexed in its own transaction. */
export const IDLE_CATCH_UP_MS = 1000;
/**
 * Most rows one catch-up indexes: a long tail (events written by something else than the writer, or a
 * database filled with the indexes missing) is caught up over several transactions, so appends and
 * retention steps keep their turn in between.
 */
export const MAX_CATCH_UP_ROWS = 50_000;

export interface SideIndexOptions {
  catchUpRows?: number;
  idleMs?: number;
  maxCatchUpRows?: number;
  /** A catch-up outside an append (idle, close) failed; the next one retries. */
  onFailure?: (error: string) => void;
}

/** What retention reports for each deleted event (DELETE ... RETURNING id, node_name, event_type). */
export interface DeletedEvent {
  id: number;
  node_name: string;
  event_type: string;
}

export class EventSideIndex {
  private readonly catchUpRows: number;
  private readonly idleMs: number;
  private readonly maxRows: number;
  /** Rows above the watermark as this writer knows them (resynced at each catch-up). */
  private tail: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly watermark: Database.Statement;
  private readonly maxId: Database.Statement;
  private readonly fillNode: Database.Statement;
  private readonly fillType: Database.Statement;
  private readonly putNode: Database.Statement;
  private readonly putType: Database.Statement;
  /** The ids this writer appended above the watermark (side-index-tail.ts). */
  private readonly appended: AppendedTail;
  private readonly setWatermark: Database.Statement;
  private readonly forgetNode: Database.Statement;
  private readonly forgetType: Database.Statement;
  private readonly catchUpAlone: Database.Transaction<() => void>;
  private readonly onFailure: (error: string) => void;
  /** Catch-ups that inserted the appended ids instead of reading events (for tests and diagnostics). */
  catchUpsFromAppends = 0;

  constructor(
    private readonly db: Database.Database,
    opts: SideIndexOptions = {},
  ) {
    this.catchUpRows = Math.max(1, opts.catchUpRows ?? CATCH_UP_ROWS);
    this.idleMs = Math.max(0, opts.idleMs ?? IDLE_CATCH_UP_MS);
    this.maxRows = Math.max(1, opts.maxCatchUpRows ?? MAX_CATCH_UP_ROWS);
    this.onFailure = opts.onFailure ?? (() => undefined);
    this.watermark = db.prepare("SELECT coalesce((SELECT value FROM events_side_state WHERE key = 'indexed_through'), 0)").pluck();
    this.maxId = db.prepare('SELECT coalesce(max(id), 0) FROM events').pluck();
    // Sorted by key: consecutive inserts land on the same leaf, each leaf is dirtied once. OR IGNORE:
    // a side row above the watermark cannot exist (rows and watermark move in one transaction), but
    // if one did, failing every append over it would be worse than keeping it.
    this.fillNode = db.prepare('INSERT OR IGNORE INTO events_by_node (node_name, id) SELECT node_name, id FROM events WHERE id > ? AND id <= ? ORDER BY node_name, id');
    this.fillType = db.prepare('INSERT OR IGNORE INTO events_by_type (event_type, id) SELECT event_type, id FROM events WHERE id > ? AND id <= ? ORDER BY event_type, id');
    // The same rows from the ids the appends held: one statement per name, its ids ascending.
    this.putNode = db.prepare('INSERT OR IGNORE INTO events_by_node (node_name, id) SELECT ?, value FROM json_each(?)');
    this.putType = db.prepare('INSERT OR IGNORE INTO events_by_type (event_type, id) SELECT ?, value FROM json_each(?)');
    this.setWatermark = db.prepare("INSERT INTO events_side_state (key, value) VALUES ('indexed_through', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    // One range per name: the side rows of that name in the deleted ids' span whose event is gone.
    // Survivors in the span (retention by age is not strictly in id order) are kept by NOT EXISTS.
    this.forgetNode = db.prepare(
      'DELETE FROM events_by_node WHERE node_name = ? AND id >= ? AND id <= ? AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = events_by_node.id)',
    );
    this.forgetType = db.prepare(
      'DELETE FROM events_by_type WHERE event_type = ? AND id >= ? AND id <= ? AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = events_by_type.id)',
    );
    // IMMEDIATE: the watermark is read under the write lock (another writer may have moved it).
    this.catchUpAlone = db.transaction(() => this.catchUp());
    this.tail = Math.max(0, (this.maxId.get() as number) - (this.watermark.get() as number));
    this.appended = new AppendedTail(this.maxRows, this.tail === 0);
    this.scheduleIdle();
  }

  /** Rows above the watermark, as of the last catch-up plus the appends since. */
  get pendingRows(): number {
    return this.tail;
  }

  /**
   * Indexes up to maxCatchUpRows rows above the watermark and moves it. Must run inside a write
   * transaction (catchUpNow's). Returns the rows still unindexed.
   */
  catchUp(): number {
    const from = this.watermark.get() as number;
    const newest = this.maxId.get() as number;
    // Never past the newest id: a later row must not land below the watermark unindexed.
    const to = Math.min(newest, from + this.maxRows);
    if (to > from) {
      const held = this.appended.covering(from, to);
      if (held !== undefined) {
        for (const [name, ids] of held.byNode) this.putNode.run(name, '[' + ids.join(',') + ']');
        for (const [name, ids] of held.byType) this.putType.run(name, '[' + ids.join(',') + ']');
        this.catchUpsFromAppends++;
      } else {
        this.fillNode.run(from, to);
        this.fillType.run(from, to);
      }
      this.setWatermark.run(to);
    }
    // If this transaction then fails, the held ids are gone with the tail still there: the next
    // catch-up finds nothing held for it and reads events.
    if (to === newest) this.appended.restart();
    else this.appended.drop();
    this.tail = newest - Math.max(from, to);
    return this.tail;
  }

  /**
   * Called in the append transaction after its inserts: counts them. The catch-up they may make due
   * (catchUpDue) is not run in that transaction: it took 5 to 10 ms for 4000 rows, added to the
   * commit of the batch that crossed the mark (a latency spike on 1 to 7% of batches). The writer
   * runs it with catchUpNow() once the batch's answer is out (writer-worker.ts).
   */
  afterAppend(ids: ArrayLike<number>, nodeOf: (i: number) => string, typeOf: (i: number) => string): void {
    this.tail += ids.length;
    this.appended.add(ids, nodeOf, typeOf);
    this.scheduleIdle();
  }

  /** An append transaction failed after afterAppend: the ids it held were rolled back. */
  appendFailed(): void {
    this.appended.drop();
  }

  /** Enough rows wait for a catch-up (catchUpRows). */
  get catchUpDue(): boolean {
    return this.tail >= this.catchUpRows;
  }

  /** Catches up in a transaction of its own (due after appends, idle, close). Returns the rows still unindexed. */
  catchUpNow(): number {
    try {
      this.catchUpAlone.immediate();
    } catch (err) {
      this.onFailure(err instanceof Error ? err.message : String(err));
    }
    return this.tail;
  }

  /**
   * Removes the side rows of events retention just deleted, in its transaction. One statement per
   * distinct node and per distinct type among them, each walking that name's side rows between its
   * lowest and highest deleted id: the work is bounded by the retention chunk (its rows, and at
   * most as many names), not by the table.
   */
  forget(deleted: readonly DeletedEvent[]): void {
    if (deleted.length === 0) return;
    this.appended.deleted(deleted.map((d) => d.id));
    const span = (key: (d: DeletedEvent) => string): Map<string, [number, number]> => {
      const m = new Map<string, [number, number]>();
      for (const d of deleted) {
        const k = key(d);
        const r = m.get(k);
        if (r === undefined) m.set(k, [d.id, d.id]);
        else {
          if (d.id < r[0]) r[0] = d.id;
          if (d.id > r[1]) r[1] = d.id;
        }
      }
      return m;
    };
    for (const [name, [lo, hi]] of span((d) => d.node_name)) this.forgetNode.run(name, lo, hi);
    for (const [name, [lo, hi]] of span((d) => d.event_type)) this.forgetType.run(name, lo, hi);
  }

  /**
   * Stops the idle timer and indexes what is left (up to maxCatchUpRows; the rest at the next start).
   * Asks the database, not the count of this writer's appends: rows may come from elsewhere.
   */
  close(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.db.open) this.catchUpNow();
  }

  private scheduleIdle(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.tail <= 0) return;
    // A tail longer than one catch-up continues right after, between other messages.
    const delay = this.tail > this.maxRows ? 0 : this.idleMs;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.catchUpNow();
      this.scheduleIdle();
    }, delay);
    // The writer thread lives as long as its message port; this timer must not hold anything else up.
    this.idleTimer.unref();
  }
}
