// Bounds the main-thread time spent framing and handling what node sockets delivered. A socket read
// is up to 64 KiB (a few hundred envelopes); handled in one go, ten busy nodes held the event loop
// for 10-15 ms at a time. Transports queue their reads here instead, and each event-loop turn handles
// a few lines per connection, round robin, until the turn's budget is spent; the rest waits for the
// next turn (setImmediate), so timers, heartbeats, commits and the API run in between. Each
// connection's lines stay in order: only that connection's reader ever handles them.

/** A connection with queued input. */
export interface QueuedReader {
  /** Handles up to `maxLines` queued lines, in order; true when nothing is left queued. */
  drain(maxLines: number): boolean;
}

export interface ReadSchedulerOptions {
  /** Main-thread ms spent on queued input per event-loop turn (checked after each slice). Default 2. */
  budgetMs?: number;
  /** Lines one connection handles before the next connection's turn. Default 32. */
  sliceLines?: number;
}

export class ReadScheduler {
  /** Readers with queued input, in turn order (a Set keeps insertion order; re-adding moves to the end). */
  private readonly ready = new Set<QueuedReader>();
  private immediate: NodeJS.Immediate | undefined;
  private readonly budgetMs: number;
  private readonly sliceLines: number;

  constructor(opts: ReadSchedulerOptions = {}) {
    this.budgetMs = Math.max(0, opts.budgetMs ?? 2);
    this.sliceLines = Math.max(1, Math.floor(opts.sliceLines ?? 32));
  }

  /** The reader has queued input: it gets turns until its drain() reports it empty. */
  schedule(reader: QueuedReader): void {
    this.ready.add(reader);
    if (this.immediate === undefined) this.immediate = setImmediate(this.run);
  }

  /** The reader is gone (its queue was dropped or drained synchronously). */
  cancel(reader: QueuedReader): void {
    this.ready.delete(reader);
  }

  /** Readers waiting for a turn (for tests and diagnostics). */
  get waiting(): number {
    return this.ready.size;
  }

  private readonly run = (): void => {
    this.immediate = undefined;
    const t0 = performance.now();
    try {
      while (this.ready.size > 0) {
        const reader = this.ready.values().next().value as QueuedReader;
        this.ready.delete(reader);
        // Back of the line: every other connection gets a slice before this one's next. A reader
        // whose drain throws is not re-added (its next read schedules it again), so it cannot spin.
        if (!reader.drain(this.sliceLines)) this.ready.add(reader);
        if (performance.now() - t0 >= this.budgetMs) break;
      }
    } finally {
      if (this.ready.size > 0 && this.immediate === undefined) this.immediate = setImmediate(this.run);
    }
  };
}
