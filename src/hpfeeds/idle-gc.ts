// Gives a burst's memory back once the broker is quiet again.
//
// Where the memory of a burst is held afterwards (measured on a 10x10 burst, bench/hpfeeds.ts):
// (1) dead Buffers that no garbage collection has visited yet: an idle broker allocates nothing,
// so V8 has no reason to collect; (2) V8's young generation, grown to its maximum during the
// burst and only shrunk by a full collection; (3) glibc's heap, which had its mmap threshold
// raised by freed large buffers (route.ts copies turns into 64 KiB pieces to avoid that). One
// full collection when the queues have drained after a burst returns (1) and (2).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type GcFunction = () => void;

let cached: GcFunction | null | undefined;

/** The engine's gc(), enabled at run time if the process was not started with --expose-gc. */
export function obtainGc(): GcFunction | null {
  if (cached !== undefined) return cached;
  const exposed = (globalThis as { gc?: GcFunction }).gc;
  if (typeof exposed === 'function') return (cached = exposed);
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    cached = typeof fn === 'function' ? (fn as GcFunction) : null;
  } catch {
    cached = null;
  }
  return cached;
}

export interface IdleGcOptions {
  /** Bytes routed since the last collection that make the past a burst worth collecting after. */
  burstBytes: number;
  /** The broker counts as quiet when less than this was routed in the last check period. */
  quietBytes: number;
  /** Check period; a collection happens only after one full quiet period. */
  periodMs: number;
}

/** Checks every period (an unref'd timer: it never holds the process) whether to collect. */
export class IdleGc {
  private routedAtLastGc = 0;
  private routedAtLastCheck = 0;
  private readonly timer: NodeJS.Timeout;
  runs = 0;

  constructor(
    private readonly gc: GcFunction,
    private readonly opts: IdleGcOptions,
    /** Bytes routed so far (monotonic) and bytes queued now. */
    private readonly routedBytes: () => number,
    private readonly queuedBytes: () => number,
  ) {
    this.timer = setInterval(() => this.check(), opts.periodMs).unref();
  }

  private check(): void {
    const routed = this.routedBytes();
    const lastPeriod = routed - this.routedAtLastCheck;
    this.routedAtLastCheck = routed;
    if (routed - this.routedAtLastGc < this.opts.burstBytes) return;
    if (lastPeriod > this.opts.quietBytes || this.queuedBytes() > this.opts.quietBytes) return;
    this.routedAtLastGc = routed;
    this.runs++;
    this.gc();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
