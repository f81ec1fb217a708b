// Gives a burst's memory back once the broker is quiet again.
//
// Where the memory of a burst is held afterwards (measured on a 10x10 burst, bench/hpfeeds.ts,
// /proc/<pid>/smaps of the broker after a forced collection):
// (1) dead Buffers that no garbage collection has visited yet: an idle broker allocates nothing,
//     so V8 has no reason to collect. A full collection once the queues have drained frees them.
// (2) V8's young generation (anonymous mappings), grown to 2 x 16 MiB in the burst: +26 MiB.
//     V8 shrinks it only in a collection that sees a low allocation rate over the last 5 s, so a
//     second collection follows the first after `followUpMs` of quiet.
// (3) glibc's main heap ([heap] in smaps): +14..33 MiB. Socket read buffers (64 KiB, allocated
//     by Node for every read) and the broker's 64 KiB turn pieces are malloc'd; freed in bulk by
//     the collector, they leave holes that glibc keeps resident (only malloc_trim, which Node
//     does not expose, would give holes back). This is an allocator setting, so it is fixed where
//     the process is started: MALLOC_MMAP_THRESHOLD_=65536 (Dockerfile, deploy/apiary.service,
//     `npm start`) makes every block of 64 KiB or more its own mapping, unmapped on free, and
//     turns off glibc's dynamic threshold. Measured: [heap] +3..9 MiB instead of +14..33 MiB
//     after the burst, CPU per delivery unchanged within the noise.
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
  /**
   * A second collection this long after the first, if still quiet. V8 shrinks its young
   * generation (grown to 2 x 16 MiB in a burst) only in a collection that finds the allocation
   * rate of the last 5 s low; the first collection, right after the burst, still sees the burst's
   * rate, so it frees dead buffers but keeps the young generation at its peak size.
   */
  followUpMs: number;
}

/** Checks every period (an unref'd timer: it never holds the process) whether to collect. */
export class IdleGc {
  private routedAtLastGc = 0;
  private routedAtLastCheck = 0;
  /** When the burst collection ran, while its follow-up is still due. */
  private followUpFrom: number | undefined;
  private readonly timer: NodeJS.Timeout;
  runs = 0;

  constructor(
    private readonly gc: GcFunction,
    private readonly opts: IdleGcOptions,
    /** Bytes routed so far (monotonic) and bytes queued now. */
    private readonly routedBytes: () => number,
    private readonly queuedBytes: () => number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.timer = setInterval(() => this.check(), opts.periodMs).unref();
  }

  /** @internal Exposed for tests; the timer calls it every period. */
  check(): void {
    const routed = this.routedBytes();
    const lastPeriod = routed - this.routedAtLastCheck;
    this.routedAtLastCheck = routed;
    const quiet = lastPeriod <= this.opts.quietBytes && this.queuedBytes() <= this.opts.quietBytes;
    if (routed - this.routedAtLastGc >= this.opts.burstBytes) {
      if (!quiet) return;
      this.routedAtLastGc = routed;
      this.followUpFrom = this.now();
      this.collect();
      return;
    }
    if (this.followUpFrom === undefined || !quiet) return;
    if (this.now() - this.followUpFrom < this.opts.followUpMs) return;
    this.followUpFrom = undefined;
    this.collect();
  }

  private collect(): void {
    this.runs++;
    this.gc();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
