// Delivery of one network output: a single loop per output takes the oldest batch from its durable
// backlog, hands it to the sender, and acknowledges it once the receiver has it, so order per output
// holds and nothing is lost while the receiver is down (retries with capped exponential back-off and
// full jitter). The loop only awaits I/O: the event loop is never held.
import type { FastifyBaseLogger } from 'fastify';
import type { OutputBacklog } from './backlog.js';
import type { OutputMetrics } from './metrics.js';

export interface Sender {
  /**
   * Delivers entries in order. Resolves with how many leading entries are done (delivered, or
   * refused for good and reported through `rejected`); fewer than all, or a throw, means the rest is
   * retried after a back-off.
   */
  send(entries: readonly Buffer[]): Promise<{ done: number; rejected: number }>;
  close(): Promise<void>;
}

export interface DeliveryOptions {
  name: string;
  backlog: OutputBacklog;
  sender: Sender;
  metrics: OutputMetrics;
  logger: FastifyBaseLogger;
  retry: { initialMs: number; maxMs: number };
  batch: { maxEntries: number; maxBytes: number };
}

/** Capped exponential back-off with jitter: between half and all of min(max, initial·2^attempt). */
export function backoffMs(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + random() * (base / 2));
}

export class DeliveryWorker {
  private wakeUp: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private stopping = false;
  private attempt = 0;
  private lastErrorLog = 0;
  private suppressed = 0;

  constructor(private readonly o: DeliveryOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** New entries were appended. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** Waits for wake() (new entries) or stop(). */
  private idle(): Promise<void> {
    return new Promise((resolve) => {
      this.wakeUp = resolve;
      this.stopWake = resolve;
    });
  }

  /** A back-off: new entries do not cut it short, stop() does. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.stopWake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private stopWake: (() => void) | null = null;

  private async loop(): Promise<void> {
    const { backlog, metrics, name, logger } = this.o;
    while (!this.stopping) {
      const batch = backlog.peek(this.o.batch.maxEntries, this.o.batch.maxBytes);
      if (batch === null) {
        await this.idle();
        continue;
      }
      let done = 0;
      let rejected = 0;
      let error: unknown;
      try {
        ({ done, rejected } = await this.o.sender.send(batch.entries));
      } catch (err) {
        error = err;
      }
      if (done > 0) {
        const next = done === batch.entries.length ? batch.next : this.positionAfter(done);
        backlog.ack(next, done);
        metrics.sent.inc({ output: name }, done - rejected);
        if (rejected > 0) metrics.rejected.inc({ output: name }, rejected);
      }
      if (done === batch.entries.length) {
        if (this.attempt > 0) logger.info({ output: name, after: this.attempt }, 'output delivering again');
        this.attempt = 0;
        continue;
      }
      metrics.failed.inc({ output: name }, batch.entries.length - done);
      const delay = backoffMs(this.attempt++, this.o.retry.initialMs, this.o.retry.maxMs);
      this.logFailure(error ?? new Error(`receiver took ${done} of ${batch.entries.length}`), delay);
      if (this.stopping) break;
      await this.pause(delay);
    }
  }

  /** The backlog position after the first `n` entries of a batch (partial delivery). */
  private positionAfter(n: number) {
    // Entries after n in the batch, with their frame headers, are before batch.next in the same
    // segment or spill over segments; re-reading is simpler and exact: peek n entries again.
    const again = this.o.backlog.peek(n, Number.MAX_SAFE_INTEGER);
    return again!.next;
  }

  private logFailure(err: unknown, delayMs: number): void {
    const now = Date.now();
    // One line per 10 s at most while a receiver is down, saying how many were folded into it.
    if (now - this.lastErrorLog < 10_000) {
      this.suppressed++;
      return;
    }
    this.o.logger.warn(
      { output: this.o.name, err: { message: (err as Error).message, code: (err as NodeJS.ErrnoException).code }, retryInMs: delayMs, backlog: this.o.backlog.pendingEntries, similarSince: this.suppressed },
      'output delivery failed; kept in its backlog and retried',
    );
    this.lastErrorLog = now;
    this.suppressed = 0;
  }

  /** Stops after the batch in flight (waiting for it at most `graceMs`); the backlog keeps the rest for the next start. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    this.stopWake?.();
    this.wakeUp = null;
    if (this.running) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([this.running, new Promise<void>((r) => (t = setTimeout(r, graceMs)))]);
      clearTimeout(t);
    }
    await this.o.sender.close().catch(() => undefined);
  }
}
