import type Database from 'better-sqlite3';
import type { FastifyBaseLogger } from 'fastify';
import type { EventMetrics } from './metrics.js';
import type { PendingEvent } from './normalize.js';

export interface BatchOptions {
  /** A batch is committed at once when it reaches this many events. Default 1000. */
  maxSize?: number;
  /**
   * Longest an event waits for its batch commit, in ms. 0 = commit at the end of the current I/O
   * turn (setImmediate). Default 10.
   */
  maxDelayMs?: number;
  /** Events held while commits fail (disk full, locked); beyond this new events are dropped. Default 100 000. */
  maxPending?: number;
  /**
   * Runs inside each batch's transaction after the inserts (ids set), e.g. the attack analytics
   * ingest. A throw is logged and the batch still commits: the hook must roll back its own writes
   * (a nested transaction does).
   */
  inTransaction?: (sqlite: Database.Database, batch: readonly PendingEvent[]) => void;
}

type Committed = (batch: readonly PendingEvent[]) => void;

/**
 * Micro-batching event writer: one prepared INSERT per event, one transaction per batch, on the
 * raw better-sqlite3 connection. An event is *accepted* once the transaction holding it committed.
 */
export class EventWriter {
  private pending: PendingEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 0;
  private closed = false;
  private droppedSinceLog = 0;
  private readonly maxSize: number;
  private readonly maxDelayMs: number;
  private readonly maxPending: number;
  private readonly insert: Database.Statement;
  private readonly insertBatch: (batch: PendingEvent[]) => void;

  constructor(
    sqlite: Database.Database,
    private readonly metrics: EventMetrics,
    private readonly logger: FastifyBaseLogger,
    private readonly onCommitted: Committed,
    opts: BatchOptions = {},
  ) {
    this.maxSize = Math.max(1, opts.maxSize ?? 1000);
    this.maxDelayMs = Math.max(0, opts.maxDelayMs ?? 10);
    this.maxPending = Math.max(this.maxSize, opts.maxPending ?? 100_000);
    this.insert = sqlite.prepare(
      'INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const insert = this.insert;
    const hook = opts.inTransaction;
    this.insertBatch = sqlite.transaction((batch: PendingEvent[]) => {
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i]!;
        e.id = Number(insert.run(e.node, e.potId, e.potType, e.eventType, e.timestamp, e.dataJson, e.receivedAt).lastInsertRowid);
      }
      if (hook !== undefined) {
        try {
          hook(sqlite, batch);
        } catch (err) {
          this.logger.error({ err, batch: batch.length }, 'in-transaction batch hook failed; events committed without it');
        }
      }
    });
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  /** Queues an event; false if it was dropped because commits are failing and the backlog is full. */
  add(e: PendingEvent): boolean {
    if (this.pending.length >= this.maxPending) {
      this.metrics.dropped.child('backlog').inc();
      if (this.droppedSinceLog++ === 0) {
        this.logger.error({ pending: this.pending.length }, 'event backlog full (commits failing): dropping new events');
      }
      return false;
    }
    this.pending.push(e);
    if (this.retryTimer !== undefined) return true; // a failing database: the retry timer flushes
    if (this.pending.length >= this.maxSize) this.flush();
    else if (this.timer === undefined && this.immediate === undefined) {
      if (this.maxDelayMs === 0) this.immediate = setImmediate(this.onTimer);
      else this.timer = setTimeout(this.onTimer, this.maxDelayMs);
    }
    return true;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.flush();
  };

  /**
   * Commits everything pending, synchronously, in transactions of at most maxSize events. Returns
   * false when a commit failed (events stay pending and a retry is scheduled).
   */
  flush(): boolean {
    this.cancelTimers();
    while (this.pending.length > 0) {
      const batch = this.pending.length <= this.maxSize ? this.pending : this.pending.slice(0, this.maxSize);
      const started = process.hrtime.bigint();
      try {
        this.insertBatch(batch);
      } catch (err) {
        this.metrics.commitFailures.inc();
        this.scheduleRetry(err);
        return false;
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (batch === this.pending) this.pending = [];
      else this.pending.splice(0, batch.length);
      this.retryDelayMs = 0;
      if (this.droppedSinceLog > 0) {
        this.logger.warn({ dropped: this.droppedSinceLog }, 'event commits recovered');
        this.droppedSinceLog = 0;
      }
      this.metrics.batchSize.observe(batch.length);
      this.metrics.commitSeconds.observe(seconds);
      this.metrics.stored.inc(batch.length);
      try {
        this.onCommitted(batch);
      } catch (err) {
        this.logger.error({ err }, 'event post-commit processing failed');
      }
    }
    this.metrics.pending.set(0);
    return true;
  }

  private scheduleRetry(err: unknown): void {
    this.retryDelayMs = Math.min(5_000, this.retryDelayMs === 0 ? 100 : this.retryDelayMs * 2);
    this.logger.error(
      { err, pending: this.pending.length, retryInMs: this.retryDelayMs },
      'event batch commit failed; events kept in memory and retried',
    );
    this.metrics.pending.set(this.pending.length);
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, this.retryDelayMs);
  }

  private cancelTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.immediate = undefined;
    this.retryTimer = undefined;
  }

  /** Final flush; later add() calls still queue but nothing schedules them. */
  close(): boolean {
    this.closed = true;
    const ok = this.flush();
    this.cancelTimers();
    return ok;
  }
}
