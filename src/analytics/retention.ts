// Retention of rollups, attackers and sessions: the same age limit as events (EVENT_RETENTION_DAYS),
// worked off in chunks with the event loop yielded between them, like the events sweeper.
import type { AttackStore } from './store.js';

export interface AnalyticsRetentionOptions {
  /** Delete analytics rows older than this many days. 0 disables. */
  maxAgeDays: number;
  /** Sweep period. Default 300 000 ms. */
  intervalMs?: number;
  /** Rows deleted per step. Default 2000. */
  chunkSize?: number;
  onError?: (err: unknown) => void;
}

export class AnalyticsRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly store: AttackStore,
    private readonly opts: AnalyticsRetentionOptions,
  ) {}

  start(): void {
    if (this.opts.maxAgeDays <= 0 || this.timer !== undefined || this.stopped) return;
    this.timer = setInterval(() => void this.sweep(), Math.max(10, this.opts.intervalMs ?? 300_000));
    this.timer.unref();
  }

  /** One full sweep; resolves with the rows deleted. Concurrent calls share a sweep. */
  sweep(now = Date.now()): Promise<number> {
    this.running ??= this.run(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(now: number): Promise<number> {
    const cutoff = now - this.opts.maxAgeDays * 86_400_000;
    let total = 0;
    try {
      while (!this.stopped) {
        const r = this.store.deleteOlderThan(cutoff, this.opts.chunkSize ?? 2000);
        total += r.deleted;
        if (r.done) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      this.opts.onError?.(err);
    }
    return total;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.running !== undefined) await this.running;
  }
}
