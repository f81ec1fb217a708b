// The analytics ingest for events stored in PostgreSQL. The SQLite ingest runs inside the events
// writer's transaction (writer-hook.ts); on PostgreSQL the events store commits its batches over a
// socket, so this one is fed each batch after it committed (onCommitted) and writes on its own:
// batches are folded in memory (fold.ts, in this thread or a fold thread) and written to the
// AttackWriteStore about once per flush interval, one transaction per aggregate with the watermark
// (the highest event id written) in it. After a crash the events committed above the watermark
// are the ones to feed again: replayFrom() says from where, as the SQLite ingest does.
import type { PgDatabaseHandle } from '../db/index.js';
import type { AggregateContext, BatchAggregate } from './aggregate.js';
import { InThreadFolder, WorkerFolder, type Folder } from './fold.js';
import { createAggregateContext, DEFAULT_FLUSH_MAX_EVENTS, DEFAULT_FLUSH_MS, type AnalyticsSettings } from './ingest.js';
import { PgAttackStore } from './pg-store.js';
import type { StoredEvent } from './record.js';
import type { AttackWriteStore } from './store.js';

export interface PgAnalyticsIngestOptions {
  /**
   * Fold in a thread of its own (fold-worker.ts) instead of on the event loop. Default false. Its
   * start (geo databases loading) and flush()/close() wait for that thread synchronously.
   */
  foldThread?: boolean;
  /** The fold's context when folding in this thread (built from the settings otherwise). */
  ctx?: AggregateContext;
  /** Failed writes and dropped aggregates are reported here; the ingest itself never throws them. */
  onError?: (err: unknown) => void;
  /**
   * Folded aggregates kept for another try while writes fail (the database restarts, fails over);
   * past this the oldest is dropped and reported. Default 30 (half a minute at the default interval).
   */
  maxQueued?: number;
}

export class PgAnalyticsIngest {
  private readonly folder: Folder;
  private readonly flushMs: number;
  private readonly maxEvents: number;
  private readonly maxQueued: number;
  /** Events added since the last request to the folder. */
  private unrequested = 0;
  /** Folded aggregates not written yet, oldest first. */
  private readonly queue: BatchAggregate[] = [];
  /** The write loop: one write at a time, in fold order. */
  private writing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly store: AttackWriteStore,
    settings: AnalyticsSettings = {},
    private readonly opts: PgAnalyticsIngestOptions = {},
  ) {
    this.folder = opts.foldThread ? new WorkerFolder(settings) : new InThreadFolder(opts.ctx ?? createAggregateContext(settings));
    this.flushMs = Math.max(0, settings.flushMs ?? DEFAULT_FLUSH_MS);
    this.maxEvents = Math.max(1, settings.flushMaxEvents ?? DEFAULT_FLUSH_MAX_EVENTS);
    this.maxQueued = Math.max(1, opts.maxQueued ?? 30);
  }

  /** An ingest writing to a PgAttackStore on `database`. */
  static forDatabase(database: PgDatabaseHandle, settings: AnalyticsSettings = {}, opts: PgAnalyticsIngestOptions & { watermarkName?: string } = {}): PgAnalyticsIngest {
    return new PgAnalyticsIngest(new PgAttackStore(database, { bruteforceMinFailures: settings.bruteforceMinFailures, watermarkName: opts.watermarkName }), settings, opts);
  }

  /** Writes about once per flush interval from now on (the timer never keeps the process alive). */
  start(): void {
    if (this.timer !== undefined || this.closed || this.flushMs === 0) return;
    this.timer = setInterval(() => void this.tick(), this.flushMs);
    this.timer.unref();
  }

  /** Events folded (or being folded) or waiting to be written. */
  get pendingEvents(): number {
    let n = this.unrequested + this.folder.outstanding;
    for (const a of this.queue) n += a.events;
    return n;
  }

  /**
   * Call with each batch of events once the events store has committed it, in commit order. Folds
   * it (on this thread, or posts it to the fold thread); the write happens at the next interval,
   * or now when `flushMaxEvents` are pending or the interval is 0.
   */
  onCommitted(batch: readonly StoredEvent[]): void {
    if (batch.length === 0 || this.closed) return;
    this.folder.add(batch);
    this.unrequested += batch.length;
    if (this.flushMs === 0 || this.unrequested >= this.maxEvents) void this.tick();
  }

  /** Reports to onError; an onError that throws must not break the write loop. */
  private report(err: unknown): void {
    try {
      this.opts.onError?.(err);
    } catch {
      // nothing more to do with it
    }
  }

  /** Asks the folder for what it folded and writes every answer that is ready. */
  private tick(): Promise<void> {
    if (this.unrequested > 0) {
      this.folder.request();
      this.unrequested = 0;
    }
    try {
      this.queue.push(...this.folder.poll());
    } catch (err) {
      this.report(err);
    }
    return this.writeQueued();
  }

  private writeQueued(): Promise<void> {
    this.writing = this.writing.then(async () => {
      while (this.queue.length > 0) {
        const agg = this.queue[0]!;
        try {
          if (agg.events > 0) await this.store.write(agg);
          this.queue.shift();
        } catch (err) {
          this.report(err);
          // Kept for the next interval; a queue that keeps growing loses its oldest.
          while (this.queue.length > this.maxQueued) {
            const dropped = this.queue.shift()!;
            this.report(new Error(`analytics of ${dropped.events} events dropped after failed writes`));
          }
          return;
        }
      }
    });
    return this.writing;
  }

  /**
   * Writes everything folded so far (waiting for the fold thread) and resolves when it is written,
   * or has failed (reported to onError, kept for the next try).
   */
  flush(): Promise<void> {
    this.unrequested = 0;
    try {
      this.queue.push(...this.folder.drain());
    } catch (err) {
      this.report(err);
    }
    return this.writeQueued();
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.closed) return this.writing;
    this.closed = true;
    await this.flush();
  }

  /**
   * Where the events store should feed committed events again from at start (ids above the
   * returned one), or null for none: a first start, or a gap larger than could ever have been
   * pending (analytics were off for a while: those events are not backfilled).
   */
  async replayFrom(maxEventId: number): Promise<number | null> {
    const until = await this.store.ingestedUntil();
    if (until === null || until >= maxEventId || maxEventId - until > this.maxEvents + 1) return null;
    return until;
  }
}
