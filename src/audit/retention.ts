// Audit log retention: entries older than AUDIT_RETENTION_DAYS are deleted in chunks, with the
// event loop yielded between chunks, on a timer.
import type { AuditStore } from './store.js';

export interface AuditRetentionOptions {
  /** Entries older than this many days are deleted. */
  maxAgeDays: number;
  /** Sweep period. Default 3 600 000 ms. */
  intervalMs?: number;
  /** Entries deleted per step. Default 2000. */
  chunkSize?: number;
  onError?: (err: unknown) => void;
}

export class AuditRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly store: AuditStore,
    private readonly opts: AuditRetentionOptions,
  ) {}

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.sweep().catch((err) => this.opts.onError?.(err)), Math.max(10, this.opts.intervalMs ?? 3_600_000));
    this.timer.unref();
  }

  stop(): Promise<unknown> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return this.running ?? Promise.resolve();
  }

  /** One full sweep; resolves with the entries deleted. Concurrent calls share a sweep. */
  sweep(now = Date.now()): Promise<number> {
    this.running ??= this.run(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(now: number): Promise<number> {
    const cutoff = now - this.opts.maxAgeDays * 86_400_000;
    const chunk = this.opts.chunkSize ?? 2000;
    let total = 0;
    for (;;) {
      const n = this.store.deleteOlderThan(cutoff, chunk);
      total += n;
      if (n < chunk) return total;
      await new Promise((r) => setImmediate(r));
    }
  }
}
