// How this process collects its young generation. V8 runs scavenges in parallel on its helper
// threads by default. On two cores or fewer those helpers compete for the same cores with the
// SQLite writer thread, the WAL checkpointer and the kernel's socket work, and the event loop waits
// at the end of every scavenge for a helper that is not running. Measured on the 2-core VM
// (bench/events.ts, 13 alternating pairs, 6 at 40k and 7 at 10k events/s): serial scavenges paused
// the event loop less in every pair (at 10k, 24 to 75 ms of pauses in 10 s against 53 to 82 ms, and
// a longest pause of 2.5 to 10.3 ms against 5.2 to 19.8 ms), with CPU per event and latency the
// same within the noise. With more cores the helpers have cores of their own, and V8's default stays.
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';

export type ScavengeMode = 'serial' | 'parallel';

/**
 * Chooses the scavenge mode for `cpus` cores and applies it. V8 flags are process-wide (worker
 * threads included) and read at each collection, so calling this first thing at startup is enough.
 */
export function tuneScavenges(cpus = availableParallelism()): ScavengeMode {
  if (cpus > 2) return 'parallel';
  setFlagsFromString('--no-parallel-scavenge');
  return 'serial';
}
