import type Database from 'better-sqlite3';
import type { FastifyBaseLogger } from 'fastify';
import type { EventMetrics } from './metrics.js';

export interface RetentionOptions {
  /** Delete events received more than this many days ago. Default 30; 0 disables. */
  maxAgeDays?: number;
  /** Keep at most this many events (the newest ids). Default 5 000 000; 0 disables. */
  maxRows?: number;
  /** Sweep period. Default 60 000 ms. */
  intervalMs?: number;
  /** Rows deleted per transaction; the event loop is yielded to between chunks. Default 2000. */
  chunkSize?: number;
}

const DAY_MS = 86_400_000;

/**
 * Periodic retention. Work per step is one DELETE of at most chunkSize rows (a few ms), and the
 * sweep yields to the event loop between steps, so a large backlog (retention just lowered) is
 * worked off without stalling node sessions or the batch writer.
 */
export class RetentionSweeper {
  private readonly maxAgeMs: number;
  private readonly maxRows: number;
  private readonly intervalMs: number;
  private readonly chunkSize: number;
  private readonly deleteByAge: Database.Statement;
  private readonly deleteByRows: Database.Statement;
  private readonly maxId: Database.Statement;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(
    sqlite: Database.Database,
    private readonly metrics: EventMetrics,
    private readonly logger: FastifyBaseLogger,
    opts: RetentionOptions = {},
  ) {
    this.maxAgeMs = Math.max(0, opts.maxAgeDays ?? 30) * DAY_MS;
    this.maxRows = Math.max(0, Math.floor(opts.maxRows ?? 5_000_000));
    this.intervalMs = Math.max(10, opts.intervalMs ?? 60_000);
    this.chunkSize = Math.max(1, opts.chunkSize ?? 2000);
    // received_at, not the node's timestamp: a node with a wrong clock must not get its events
    // deleted on arrival (or kept forever). Uses events_received_idx.
    this.deleteByAge = sqlite.prepare(
      'DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < ? ORDER BY received_at LIMIT ?)',
    );
    // ids are AUTOINCREMENT (never reused) and retention only removes the oldest, so "the newest
    // maxRows ids" bounds the row count without a COUNT(*) scan.
    this.deleteByRows = sqlite.prepare(
      'DELETE FROM events WHERE id <= ? AND id < (SELECT coalesce(min(id), 0) FROM events) + ?',
    );
    this.maxId = sqlite.prepare('SELECT coalesce(max(id), 0) AS maxId FROM events');
  }

  start(): void {
    if (this.stopped || this.timer !== undefined || (this.maxAgeMs === 0 && this.maxRows === 0)) return;
    this.timer = setInterval(() => {
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
    let total = 0;
    try {
      if (this.maxAgeMs > 0) {
        const cutoff = now - this.maxAgeMs;
        total += await this.loop('age', () => this.deleteByAge.run(cutoff, this.chunkSize).changes);
      }
      if (this.maxRows > 0) {
        const maxId = (this.maxId.get() as { maxId: number }).maxId;
        const keepAbove = maxId - this.maxRows;
        if (keepAbove > 0) {
          total += await this.loop('rows', () => this.deleteByRows.run(keepAbove, this.chunkSize).changes);
        }
      }
    } catch (err) {
      this.logger.error({ err }, 'event retention sweep failed; retried at the next interval');
    }
    if (total > 0) this.logger.info({ deleted: total }, 'event retention sweep');
    return total;
  }

  private async loop(reason: 'age' | 'rows', step: () => number): Promise<number> {
    const counter = this.metrics.retentionDeleted.child(reason);
    let total = 0;
    while (!this.stopped) {
      const n = step();
      if (n === 0) break;
      total += n;
      counter.inc(n);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return total;
  }

  /** Stops the timer; an in-progress sweep ends after its current chunk. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.running !== undefined) await this.running.catch(() => undefined);
  }
}
