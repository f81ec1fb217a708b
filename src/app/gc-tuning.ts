// How this process collects garbage: young-generation scavenges (serial on 2 cores or fewer, below)
// and no allocation-site pretenuring (stopPretenuring). V8 runs scavenges in parallel on its helper
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

/**
 * Turns off V8's allocation-site pretenuring, on any number of cores. V8 watches how many objects
 * from each allocation site survive a young collection, and once a site's objects mostly survive
 * it allocates that site's objects straight into the old generation, for good. The first seconds
 * after start (code not yet optimised) and any backlog (a fleet reconnecting after a restart, a
 * slow disk) make short-lived per-event and per-batch objects survive for a while; after that,
 * their sites still allocate old. Old objects are only freed by a full collection, and until
 * then every young object they point to survives each scavenge: in the bench about a third of
 * what the core allocated survived, scavenges took 12 to 20 ms instead of 1 to 2 and the heap grew
 * by 10 MiB/s. Measured on the 2-core VM (bench/events.ts, alternating pairs): with V8's default,
 * 7 of 58 runs at 10k events/s fell into that mode from their start, and at 40k/s the p99 was
 * worse in 6 of 7 pairs (median 184 ms against 59, the worst 2 s); none of 36 runs without
 * pretenuring did. The core keeps few long-lived objects of its own, so it loses nothing by
 * allocating them young first.
 */
export function stopPretenuring(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}
