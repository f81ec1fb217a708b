import type { FastifyBaseLogger } from 'fastify';
import type { EventMetrics } from './metrics.js';
import type { EventStore } from './store.js';

export interface RetentionOptions {
  /** Delete events received more than this many days ago. Default 30; 0 disables. */
  maxAgeDays?: number;
  /** Keep at most this many events (the newest ids). Default 5 000 000; 0 disables. */
  maxRows?: number;
  /** Sweep period. Default 60 000 ms. */
  intervalMs?: number;
  /** Rows deleted per transaction; the event loop is yielded to between chunks. Default 2000. */
  chunkSize?: number;
  /**
   * Periodic sweeps are skipped while this says false (several cores share one database: only the
   * one holding the leader lease sweeps). sweep() called directly always runs. Default: always.
   */
  runWhen?: () => boolean;
}

const DAY_MS = 86_400_000;

/**
 * Periodic retention. The deletes run in the store's writer (for SQLite: the writer thread), one
 * step of at most chunkSize rows at a time, so event batches interleave with a long sweep (retention
 * just lowered) instead of waiting behind it, and the main event loop never runs a DELETE.
 */
export class RetentionSweeper {
  private readonly maxAgeMs: number;
  private readonly maxRows: number;
  private readonly intervalMs: number;
  private readonly chunkSize: number;
  private readonly runWhen: (() => boolean) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly store: EventStore,
    private readonly metrics: EventMetrics,
    private readonly logger: FastifyBaseLogger,
    opts: RetentionOptions = {},
  ) {
    this.maxAgeMs = Math.max(0, opts.maxAgeDays ?? 30) * DAY_MS;
    this.maxRows = Math.max(0, Math.floor(opts.maxRows ?? 5_000_000));
    this.intervalMs = Math.max(10, opts.intervalMs ?? 60_000);
    this.chunkSize = Math.max(1, opts.chunkSize ?? 2000);
    this.runWhen = opts.runWhen;
  }

  start(): void {
    if (this.stopped || this.timer !== undefined || (this.maxAgeMs === 0 && this.maxRows === 0)) return;
    this.timer = setInterval(() => {
      if (this.runWhen !== undefined && !this.runWhen()) return;
      void this.sweep();
    }, this.intervalMs);
    this.timer.unref();
  }

  /** One full sweep (age, then size); resolves with the rows deleted. Concurrent calls share a sweep. */
  sweep(now = Date.now()): Promise<number> {
    if (this.running === undefined) {
      this.running = this.run(now).finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async run(now: number): Promise<number> {
    if (this.maxAgeMs === 0 && this.maxRows === 0) return 0;
    let total = 0;
    const byAge = this.metrics.retentionDeleted.child('age');
    const byRows = this.metrics.retentionDeleted.child('rows');
    try {
      while (!this.stopped) {
        const step = await this.store.retentionStep({
          receivedBefore: this.maxAgeMs > 0 ? now - this.maxAgeMs : 0,
          maxRows: this.maxRows,
          limit: this.chunkSize,
        });
        if (step.age > 0) byAge.inc(step.age);
        if (step.rows > 0) byRows.inc(step.rows);
        total += step.age + step.rows;
        if (step.age + step.rows === 0) break;
      }
    } catch (err) {
      if (!this.stopped) this.logger.error({ err }, 'event retention sweep failed; retried at the next interval');
    }
    if (total > 0) this.logger.info({ deleted: total }, 'event retention sweep');
    return total;
  }

  /** Stops the timer; an in-progress sweep ends after its current step. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.running !== undefined) await this.running.catch(() => undefined);
  }
}
