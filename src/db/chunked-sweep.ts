// A periodic age-based delete worked off in chunks, with the event loop yielded between chunks, so
// deleting a large backlog of old rows never holds up sockets for long. The retention of the audit
// log and of the analytics tables share it; each supplies its store's one-chunk delete.

export interface ChunkedSweepOptions {
  /** Rows older than this many days go. 0 or less disables the timer (sweep() still works). */
  maxAgeDays: number;
  /** Sweep period. */
  intervalMs: number;
  /** Rows deleted per chunk. Default 2000. */
  chunkSize?: number;
  /**
   * Deletes at most `limit` rows older than `cutoff` (epoch ms); says how many went and whether more
   * remain. Synchronous (SQLite) or a Promise (a store that answers over a socket).
   */
  deleteChunk(cutoff: number, limit: number): { deleted: number; done: boolean } | Promise<{ deleted: number; done: boolean }>;
  /** A failed chunk ends that sweep; the next interval tries again. */
  onError?: (err: unknown) => void;
  /**
   * Periodic sweeps are skipped while this says false (several cores share one database: only the
   * one holding the leader lease sweeps). sweep() called directly always runs. Default: always.
   */
  runWhen?: () => boolean;
}

export class ChunkedSweep {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(private readonly opts: ChunkedSweepOptions) {}

  start(): void {
    if (this.opts.maxAgeDays <= 0 || this.timer !== undefined || this.stopped) return;
    this.timer = setInterval(() => {
      if (this.opts.runWhen === undefined || this.opts.runWhen()) void this.sweep();
    }, Math.max(10, this.opts.intervalMs));
    this.timer.unref();
  }

  /** One full sweep; resolves with the rows deleted. Concurrent calls share a sweep. */
  sweep(now = Date.now()): Promise<number> {
    this.running ??= this.run(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops the timer; a sweep in progress ends after its current chunk. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.running !== undefined) await this.running;
  }

  private async run(now: number): Promise<number> {
    const cutoff = now - this.opts.maxAgeDays * 86_400_000;
    const chunk = this.opts.chunkSize ?? 2000;
    let total = 0;
    try {
      while (!this.stopped) {
        const r = await this.opts.deleteChunk(cutoff, chunk);
        total += r.deleted;
        if (r.done) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      this.opts.onError?.(err);
    }
    return total;
  }
}
