import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { EventMetrics } from './metrics.js';
import type { PendingEvent } from './normalize.js';
import type { EventStore } from './store.js';

export interface BatchOptions {
  /** Most events per transaction. Default 2000. */
  maxSize?: number;
  /**
   * How long the first event of an idle writer waits for company before its batch is sent, in ms.
   * 0 = at the end of the current I/O turn (setImmediate). Default 2. While a batch is being
   * committed, arriving events simply queue and go out together as soon as it is done (group commit).
   */
  maxDelayMs?: number;
  /**
   * Events queued or being committed at which the writer reports itself saturated (the gateway then
   * stops reading node sockets until the queue is back under half of it). Default 4000: two full
   * batches, one being committed while the next fills. Every queued event is live heap that each
   * young-generation collection copies, so a long queue makes the core slower exactly when it is
   * behind; a backlog costs nothing while it waits in the nodes' sockets. With analytics on and
   * 35k events/s offered (bench/events.ts, 4 alternating pairs), 4000 stored 23 000 to 27 800
   * events/s at 44 to 55 µs each, the former 30 000 16 400 to 24 000 at 55 to 79 µs.
   */
  highWaterMark?: number;
  /** Hard cap of queued events (commits failing for long); beyond it new events are dropped. Default 100 000. */
  maxPending?: number;
  /**
   * Committed events are handed to onCommitted (republishing, outputs, alerts) in slices of at most
   * this many. Default 128. See postCommitBudgetMs.
   */
  postCommitSlice?: number;
  /**
   * Main-thread time, in ms, spent on post-commit slices in one event-loop turn; what is left waits
   * for the next turn (setImmediate), so socket reads and timers run in between. A whole 2000-event
   * batch handled in one go held the event loop for many ms. Default 2.
   */
  postCommitBudgetMs?: number;
}

type Committed = (batch: readonly PendingEvent[]) => void;

export interface FlowEvents {
  saturated: [];
  drained: [];
  /** A whole batch just committed (ids set), before any of it is handed to onCommitted. */
  batchCommitted: [batch: readonly PendingEvent[]];
}

/**
 * Main-thread side of event persistence: queues normalised events and hands them to the store in
 * batches, one batch in flight at a time, so batches commit in arrival order and the per-node order
 * of events holds. An event is *accepted* once the store reports its batch committed; only then is
 * onCommitted called (republishing). When the queue passes its high-water mark the writer emits
 * 'saturated', and 'drained' once it is back under half of it: back-pressure for the node sockets.
 */
export class EventWriter extends EventEmitter<FlowEvents> {
  private pending: PendingEvent[] = [];
  private inFlight: PendingEvent[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 0;
  private closed = false;
  private droppedSinceLog = 0;
  private _saturated = false;
  private failures = 0;
  private idleWaiters: (() => void)[] = [];
  /** Committed slices not yet handed to onCommitted, in commit order (per-node order holds). */
  private committedSlices: PendingEvent[][] = [];
  private committedWaiting = 0;
  private postCommitImmediate: NodeJS.Immediate | undefined;
  private readonly postCommitSlice: number;
  private readonly postCommitBudgetMs: number;
  private readonly maxSize: number;
  private readonly maxDelayMs: number;
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly maxPending: number;

  constructor(
    private readonly store: EventStore,
    private readonly metrics: EventMetrics,
    private readonly logger: FastifyBaseLogger,
    private readonly onCommitted: Committed,
    opts: BatchOptions = {},
  ) {
    super();
    this.maxSize = Math.max(1, opts.maxSize ?? 2000);
    this.maxDelayMs = Math.max(0, opts.maxDelayMs ?? 2);
    this.maxPending = Math.max(this.maxSize, opts.maxPending ?? 100_000);
    this.highWater = Math.min(this.maxPending, Math.max(1, opts.highWaterMark ?? 4000));
    this.lowWater = Math.floor(this.highWater / 2);
    this.postCommitSlice = Math.max(1, opts.postCommitSlice ?? 128);
    this.postCommitBudgetMs = Math.max(0, opts.postCommitBudgetMs ?? 2);
  }

  /** Events received and not yet committed (queued + in flight). */
  get pendingCount(): number {
    return this.pending.length + (this.inFlight?.length ?? 0);
  }

  get saturated(): boolean {
    return this._saturated;
  }

  /** Queues an event; false if it was dropped (commits failing and the queue is full, or closed). */
  add(e: PendingEvent): boolean {
    if (this.pendingCount >= this.maxPending) {
      this.metrics.dropped.child('backlog').inc();
      if (this.droppedSinceLog++ === 0) {
        this.logger.error({ pending: this.pendingCount }, 'event backlog full (commits failing): dropping new events');
      }
      return false;
    }
    this.pending.push(e);
    if (!this._saturated && this.pendingCount + this.committedWaiting >= this.highWater) {
      this._saturated = true;
      this.metrics.saturated.set(1);
      this.emit('saturated');
    }
    if (this.inFlight !== undefined || this.retryTimer !== undefined) return true; // sent when the current batch is done
    if (this.pending.length >= this.maxSize) this.send();
    else if (this.timer === undefined && this.immediate === undefined) {
      if (this.maxDelayMs === 0) this.immediate = setImmediate(this.onTimer);
      else this.timer = setTimeout(this.onTimer, this.maxDelayMs);
    }
    return true;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.send();
  };

  private cancelTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  /** Hands the next batch to the store unless one is in flight. */
  private send(): void {
    if (this.inFlight !== undefined || this.pending.length === 0) return;
    this.cancelTimers();
    let batch: PendingEvent[];
    if (this.pending.length <= this.maxSize) {
      batch = this.pending;
      this.pending = [];
    } else {
      batch = this.pending.slice(0, this.maxSize);
      this.pending = this.pending.slice(this.maxSize);
    }
    this.inFlight = batch;
    this.metrics.pending.set(this.pendingCount);
    this.store.append(batch).then(
      (ids) => this.committed(batch, ids),
      (err: unknown) => this.failed(batch, err),
    );
  }

  private committed(batch: PendingEvent[], ids: ArrayLike<number>): void {
    this.inFlight = undefined;
    for (let i = 0; i < batch.length; i++) batch[i]!.id = ids[i]!;
    this.retryDelayMs = 0;
    if (this.droppedSinceLog > 0) {
      this.logger.warn({ dropped: this.droppedSinceLog }, 'event commits recovered');
      this.droppedSinceLog = 0;
    }
    this.metrics.batchSize.observe(batch.length);
    this.metrics.stored.inc(batch.length);
    try {
      this.emit('batchCommitted', batch);
    } catch (err) {
      this.logger.error({ err }, 'batchCommitted listener failed');
    }
    // The next batch goes out before this one is republished, so the writer thread works meanwhile.
    this.send();
    const slice = this.postCommitSlice;
    if (batch.length <= slice) this.committedSlices.push(batch);
    else for (let i = 0; i < batch.length; i += slice) this.committedSlices.push(batch.slice(i, i + slice));
    this.committedWaiting += batch.length;
    if (this.postCommitImmediate === undefined) this.runPostCommit();
    else this.afterProgress();
  }

  /** Hands committed slices to onCommitted until the turn's budget is used; the rest waits a turn. */
  private readonly runPostCommit = (): void => {
    this.postCommitImmediate = undefined;
    const t0 = performance.now();
    do {
      const slice = this.committedSlices.shift()!;
      this.committedWaiting -= slice.length;
      try {
        this.onCommitted(slice);
      } catch (err) {
        this.logger.error({ err }, 'event post-commit processing failed');
      }
    } while (this.committedSlices.length > 0 && performance.now() - t0 < this.postCommitBudgetMs);
    if (this.committedSlices.length > 0) this.postCommitImmediate = setImmediate(this.runPostCommit);
    this.afterProgress();
  };

  private failed(batch: PendingEvent[], err: unknown): void {
    this.inFlight = undefined;
    this.pending = batch.concat(this.pending);
    this.metrics.commitFailures.inc();
    this.failures++;
    this.retryDelayMs = Math.min(5_000, this.retryDelayMs === 0 ? 100 : this.retryDelayMs * 2);
    this.logger.error(
      { err, pending: this.pending.length, retryInMs: this.retryDelayMs },
      'event batch commit failed; events kept in memory and retried',
    );
    this.metrics.pending.set(this.pendingCount);
    if (this.closed) {
      this.afterProgress();
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.send();
    }, this.retryDelayMs);
    this.afterProgress();
  }

  private afterProgress(): void {
    const count = this.pendingCount;
    this.metrics.pending.set(count);
    if (this._saturated && count + this.committedWaiting <= this.lowWater) {
      this._saturated = false;
      this.metrics.saturated.set(0);
      this.emit('drained');
    }
    if (
      this.inFlight === undefined &&
      this.committedSlices.length === 0 &&
      (this.pending.length === 0 || this.retryTimer !== undefined || this.closed)
    ) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Sends everything queued now and resolves once it is committed (true), or once a commit failed
   * (false: the events stay queued and are retried, unless the writer is closed).
   */
  async flush(): Promise<boolean> {
    for (;;) {
      if (this.inFlight === undefined) {
        // Done once everything is committed and handed to onCommitted.
        if (this.pending.length === 0 && this.committedSlices.length === 0) return true;
        if (this.pending.length > 0) {
          if (this.retryTimer !== undefined) {
            clearTimeout(this.retryTimer);
            this.retryTimer = undefined;
          }
          this.send();
        }
      }
      const before = this.failures;
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      if (this.failures !== before) return false;
    }
  }

  /** Final flush (one attempt per queued batch); later add() calls queue but nothing sends them. */
  async close(): Promise<boolean> {
    const ok = await this.flush();
    this.closed = true;
    this.cancelTimers();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    return ok;
  }
}
