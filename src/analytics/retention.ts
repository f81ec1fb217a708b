// Retention of rollups, attackers and sessions: the same age limit as events (EVENT_RETENTION_DAYS),
// worked off in chunks with the event loop yielded between them, like the events sweeper.
import { ChunkedSweep } from '../db/index.js';
import type { AttackStore, AttackWriteStore } from './store.js';

export interface AnalyticsRetentionOptions {
  /** Delete analytics rows older than this many days. 0 disables. */
  maxAgeDays: number;
  /** Sweep period. Default 300 000 ms. */
  intervalMs?: number;
  /** Rows deleted per step. Default 2000. */
  chunkSize?: number;
  onError?: (err: unknown) => void;
  /** Periodic sweeps only while this says true (the leader lease of several cores). Default: always. */
  runWhen?: () => boolean;
}

export class AnalyticsRetention extends ChunkedSweep {
  constructor(store: Pick<AttackStore | AttackWriteStore, 'deleteOlderThan'>, opts: AnalyticsRetentionOptions) {
    super({ ...opts, intervalMs: opts.intervalMs ?? 300_000, deleteChunk: (cutoff, limit) => store.deleteOlderThan(cutoff, limit) });
  }
}
