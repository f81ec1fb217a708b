// Audit log retention: entries older than AUDIT_RETENTION_DAYS are deleted in chunks, with the
// event loop yielded between chunks, on a timer.
import { ChunkedSweep } from '../db/index.js';
import type { AuditStore } from './store.js';

export interface AuditRetentionOptions {
  /** Entries older than this many days are deleted. */
  maxAgeDays: number;
  /** Sweep period. Default 3 600 000 ms. */
  intervalMs?: number;
  /** Entries deleted per step. Default 2000. */
  chunkSize?: number;
  onError?: (err: unknown) => void;
  /** Periodic sweeps only while this says true (the leader lease of several cores). Default: always. */
  runWhen?: () => boolean;
}

export class AuditRetention extends ChunkedSweep {
  constructor(store: AuditStore, opts: AuditRetentionOptions) {
    super({
      ...opts,
      intervalMs: opts.intervalMs ?? 3_600_000,
      deleteChunk: async (cutoff, limit) => {
        const deleted = await store.deleteOlderThan(cutoff, limit);
        return { deleted, done: deleted < limit };
      },
    });
  }
}
