// The analytics ingest for events stored in PostgreSQL. The SQLite ingest runs inside the events
// writer's transaction (writer-hook.ts); on PostgreSQL the events store commits its batches over a
// socket, so this one is fed each batch after it committed (onCommitted) and writes on its own:
// batches are folded in memory (fold.ts, in this thread or a fold thread) and written to the
// AttackWriteStore about once per flush interval, one transaction per aggregate with the watermark
// (the highest event id written) in it. After a crash the events committed above the watermark
// are the ones to feed again: replayFrom() says from where, as the SQLite ingest does.
//
// Several cores (or one that restarts) on one database: their event ids interleave, so a watermark
// cannot say which events a killed core had folded but not written. With a backlog, the events
// store notes every committed batch in analytics_backlog in the batch's own statement; each write
// deletes the notes of the batches it folded in its transaction (PgAttackStore.write), and the
// sweep (on one core: the leader) folds again what stayed noted past `staleMs`: a batch is in the
// rollups exactly once, whoever folds it (a write that finds a note gone rolls back).
import type { PgDatabaseHandle } from '../db/index.js';
import type { AggregateContext, BatchAggregate } from './aggregate.js';
import { InThreadFolder, WorkerFolder, type Folder } from './fold.js';
import { createAggregateContext, DEFAULT_FLUSH_MAX_EVENTS, DEFAULT_FLUSH_MS, type AnalyticsSettings } from './ingest.js';
import { BatchClaimLost, PgAttackStore } from './pg-store.js';
import { parseEventData, type StoredEvent } from './record.js';
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
  /** The backlog of noted batches (see the top of this file); batches fed with a key are claimed. */
  backlog?: AnalyticsBacklog;
}

/** What the ingest reads of the backlog (the events domain's BatchNotes on analytics_backlog). */
export interface AnalyticsBacklog {
  unsent(before: number, limit: number): Promise<{ key: number; notedAt: number; events: (Omit<StoredEvent, 'data'> & { dataJson: string })[] }[]>;
}

export interface BacklogSweepOptions {
  /** Only while this is true (the leader among several cores). */
  leading: () => boolean;
  /** How often. Default 15 000 ms. */
  everyMs?: number;
  /** Batches noted longer ago than this are folded again. Default 60 000 ms: longer than a live core keeps an aggregate (flush interval x maxQueued). */
  staleMs?: number;
  /** Logged and counted by the caller. */
  onRecovered?: (batches: number, events: number) => void;
}

/** Batches folded again per sweep at most. */
const SWEEP_BATCHES = 100;
/** A batch folded again is not tried again before this (its write may still be under way). */
const RETRY_AFTER_MS = 5 * 60_000;

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
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Backlog batches folded again recently, by key: when. */
  private readonly recovering = new Map<number, number>();
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
  onCommitted(batch: readonly StoredEvent[], key?: number): void {
    if (batch.length === 0 || this.closed) return;
    // A noted batch (whole, as committed) is claimed by its first id when its aggregate is written.
    this.folder.add(batch, this.opts.backlog ? (key ?? batch[0]!.id) : undefined);
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
          if (agg.events > 0 || agg.batches.length > 0) await this.store.write(agg);
          this.queue.shift();
        } catch (err) {
          this.report(err);
          if (err instanceof BatchClaimLost) {
            // Written elsewhere in part: nothing of it was written here; what stays noted is folded again later.
            this.queue.shift();
            continue;
          }
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

  /** Folds again, every `everyMs` while leading, what stayed in the backlog (see the top of this file). */
  startBacklogSweep(opts: BacklogSweepOptions): void {
    if (!this.opts.backlog || this.sweepTimer !== undefined || this.closed) return;
    let sweeping = false;
    this.sweepTimer = setInterval(() => {
      if (sweeping || !opts.leading()) return;
      sweeping = true;
      this.sweepBacklog(Date.now() - (opts.staleMs ?? 60_000))
        .then(({ batches, events }) => batches > 0 && opts.onRecovered?.(batches, events))
        .catch((err: unknown) => this.report(err))
        .finally(() => (sweeping = false));
    }, opts.everyMs ?? 15_000);
    this.sweepTimer.unref();
  }

  /**
   * One sweep: folds the batches noted before `before` again (written with the next interval's
   * aggregate, their notes claimed in its transaction). Resolves with how many were fed.
   */
  async sweepBacklog(before: number, now = Date.now()): Promise<{ batches: number; events: number }> {
    if (!this.opts.backlog || this.closed) return { batches: 0, events: 0 };
    for (const [key, at] of this.recovering) if (now - at > RETRY_AFTER_MS) this.recovering.delete(key);
    const noted = await this.opts.backlog.unsent(before, SWEEP_BATCHES);
    let [batches, events] = [0, 0];
    for (const b of noted) {
      if (this.recovering.has(b.key) || this.closed) continue;
      this.recovering.set(b.key, now);
      // An empty batch (its day dropped by retention) is still claimed, with an empty fold.
      this.folder.add(b.events.map(withData), b.key);
      this.unrequested += b.events.length;
      batches++;
      events += b.events.length;
    }
    if (batches > 0) await this.tick();
    return { batches, events };
  }

  /** Stops the timers and writes what is pending. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
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

/** A backlog event as the fold takes it: its data parsed (the fold thread parses dataJson itself). */
function withData(e: Omit<StoredEvent, 'data'> & { dataJson: string }): StoredEvent & { dataJson: string } {
  return { ...e, data: parseEventData(e.dataJson) };
}
