// The analytics ingest: a pure synchronous function of (connection, batch of stored events), run
// inside the events writer's transaction (today on the main thread, later in the writer worker).
// Everything it needs is built from serialisable settings, so a worker can build its own.
import { readFileSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { aggregateBatch, type AggregateContext, type BatchAggregate } from './aggregate.js';
import { InThreadFolder, type Folder } from './fold.js';
import { GeoEnricher, type GeoOptions } from './geo.js';
import { CidrList } from './ip.js';
import type { StoredEvent } from './record.js';
import { SqliteAttackStore } from './sqlite-store.js';
import type { AttackStore } from './store.js';

export interface AnalyticsSettings {
  /** Sources never counted as attacks (the events are still stored): CIDRs or addresses. */
  ignoreCidrs?: readonly string[];
  /** Known scanner ranges, `CIDR [label]` per entry. */
  scannerCidrs?: readonly string[];
  /** File with one `CIDR [label]` a line ('#' comments), read once at start, added to scannerCidrs. */
  scannerCidrsFile?: string;
  /** Enrichment settings; false = no enrichment at all (country 'unknown', no ASN). */
  geo?: GeoOptions | false;
  /** Failed logins that make an address a `bruteforce` attacker. */
  bruteforceMinFailures?: number;
  /**
   * The writer's batches are folded in memory and written at most this often (ms), so a key seen
   * in many batches costs one upsert per interval instead of one per batch. 0 = write every batch.
   * Default 1000.
   */
  flushMs?: number;
  /** Events folded in memory before a write whatever the interval. Default 50 000. */
  flushMaxEvents?: number;
  /** Keys kept per dimension and day in the top-K summaries of long-window top-N (tests use tiny ones). */
  topKeysPerDay?: number;
  /** Keys kept per dimension and hour in the top-K summaries of 24 h top-N (tests use tiny ones). */
  topKeysPerHour?: number;
}

export const DEFAULT_FLUSH_MS = 1000;
export const DEFAULT_FLUSH_MAX_EVENTS = 50_000;

export type AttackIngest = (sqlite: Database.Database, batch: readonly StoredEvent[]) => void;

/** Reads the operator's scanner list file: one `CIDR [label]` a line. */
export function readCidrFile(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n');
}

/** Builds the parts of ingest that are costly to make once (geo databases, CIDR lists). */
export function createAggregateContext(settings: AnalyticsSettings = {}): AggregateContext {
  const scanners = [...(settings.scannerCidrs ?? []), ...(settings.scannerCidrsFile ? readCidrFile(settings.scannerCidrsFile) : [])];
  return {
    geo: settings.geo === false ? null : new GeoEnricher(settings.geo ?? {}),
    ignore: new CidrList(settings.ignoreCidrs ?? []),
    scanners: new CidrList(scanners),
  };
}

/**
 * The ingest function for the events writer. Runs its writes in a nested transaction (a
 * savepoint), so a failure here rolls back the analytics of the batch only: the caller catches and
 * logs it, and the events themselves still commit.
 */
export function createAttackIngest(settings: AnalyticsSettings = {}, ctx = createAggregateContext(settings)): AttackIngest {
  const stores = new WeakMap<Database.Database, { store: AttackStore; apply: (batch: readonly StoredEvent[]) => void }>();
  return (sqlite, batch) => {
    if (batch.length === 0) return;
    let entry = stores.get(sqlite);
    if (entry === undefined) {
      const store = new SqliteAttackStore(sqlite, { bruteforceMinFailures: settings.bruteforceMinFailures, topKeysPerDay: settings.topKeysPerDay, topKeysPerHour: settings.topKeysPerHour });
      entry = { store, apply: sqlite.transaction((b: readonly StoredEvent[]) => store.write(aggregateBatch(b, ctx))) };
      stores.set(sqlite, entry);
    }
    entry.apply(batch);
  };
}

/**
 * The ingest as the events writer runs it: batches are folded into one in-memory aggregate and
 * written when `flushMs` has passed since the last write (inside the batch's transaction), when
 * `flushMaxEvents` are pending, or by flush() (the writer calls it when idle and before closing).
 * Rollups then lag the events by up to flushMs. The store records the highest event id it wrote
 * (its watermark) in the same transaction, so after a crash the events committed but not yet
 * written to the rollups are exactly those above it: replayFrom() tells the writer where to start
 * feeding them again.
 */
export class BufferedAttackIngest {
  private readonly folder: Folder;
  private readonly flushMs: number;
  private readonly maxEvents: number;
  private pending = 0;
  private lastFlush = performance.now();
  private readonly stores = new WeakMap<Database.Database, SqliteAttackStore>();

  /** `folder`: where batches are folded (fold.ts); by default in this thread, with `ctx`. */
  constructor(private readonly settings: AnalyticsSettings = {}, ctx?: AggregateContext, folder?: Folder) {
    this.folder = folder ?? new InThreadFolder(ctx ?? createAggregateContext(settings));
    this.flushMs = Math.max(0, settings.flushMs ?? DEFAULT_FLUSH_MS);
    this.maxEvents = Math.max(1, settings.flushMaxEvents ?? DEFAULT_FLUSH_MAX_EVENTS);
  }

  private store(sqlite: Database.Database): AttackStore {
    let s = this.stores.get(sqlite);
    if (s === undefined) this.stores.set(sqlite, (s = new SqliteAttackStore(sqlite, { bruteforceMinFailures: this.settings.bruteforceMinFailures, topKeysPerDay: this.settings.topKeysPerDay, topKeysPerHour: this.settings.topKeysPerHour })));
    return s;
  }

  /** Events folded (or being folded) but not yet written. */
  get pendingEvents(): number {
    return this.pending + this.folder.outstanding;
  }

  /**
   * Folds one committed batch. When due, asks the folder for what it folded, and writes what an
   * earlier ask returned: with the fold thread, the answer is written by a later batch (or the
   * idle flush), so the writer never waits for the fold. Runs in the batch's transaction.
   */
  onBatch(sqlite: Database.Database, batch: readonly StoredEvent[]): void {
    if (batch.length > 0) {
      this.folder.add(batch);
      this.pending += batch.length;
    }
    if (this.flushMs === 0) return this.flush(sqlite);
    if (this.pending > 0 && (this.pending >= this.maxEvents || performance.now() - this.lastFlush >= this.flushMs)) {
      this.folder.request();
      this.pending = 0;
      this.lastFlush = performance.now();
    }
    this.write(sqlite, this.folder.poll());
  }

  /**
   * Writes everything pending, waiting for the fold, in the caller's transaction. On failure what
   * was pending is dropped (like a failed batch's analytics before buffering), so one bad write does
   * not fail every later one.
   */
  flush(sqlite: Database.Database): void {
    const had = this.pendingEvents;
    this.pending = 0;
    this.lastFlush = performance.now();
    if (had === 0) return;
    this.write(sqlite, this.folder.drain());
  }

  private write(sqlite: Database.Database, aggs: BatchAggregate[]): void {
    for (const agg of aggs) if (agg.events > 0) this.store(sqlite).write(agg);
  }

  /**
   * Where the writer should replay committed events from at start (their ids are above the
   * returned one), or null for none: a first start, or a gap larger than could ever have been
   * pending (analytics were off for a while: those events are not backfilled).
   */
  replayFrom(sqlite: Database.Database, maxEventId: number): number | null {
    const until = this.store(sqlite).ingestedUntil();
    if (until === null || until >= maxEventId || maxEventId - until > this.maxEvents + 1) return null;
    return until;
  }
}
