// Retention of what peers can grow in the node domain's tables: node_log (by age; its per-node
// row cap is kept by the store as rows are written) and the unknown-name aggregates (by age and
// row count). Runs from the gateway's sweep, at most once per interval.
import type { FastifyBaseLogger } from 'fastify';
import type { NodeStore } from './store.js';

export interface NodeRetentionOptions {
  /** node_log rows older than this are deleted. Default 90 days. */
  logMaxAgeMs?: number;
  /** Unknown-name aggregates not seen for this long are deleted. Default 30 days. */
  unknownMaxAgeMs?: number;
  /** Unknown-name aggregates kept (the most recently seen). Default 10 000. */
  unknownMaxRows?: number;
  /** Default 10 minutes. */
  intervalMs?: number;
  /** Runs only while this says true (several cores share one database: the leader). Default: always. */
  runWhen?: () => boolean;
}

export class NodeRetention {
  private lastRun = 0;
  /** The run in flight: a slow database must not stack runs. */
  private running: Promise<void> | undefined;
  private readonly o: Required<Omit<NodeRetentionOptions, 'runWhen'>>;
  private readonly runWhen: (() => boolean) | undefined;

  constructor(
    private readonly store: NodeStore,
    private readonly logger: FastifyBaseLogger,
    opts: NodeRetentionOptions = {},
  ) {
    this.o = {
      logMaxAgeMs: opts.logMaxAgeMs ?? 90 * 86_400_000,
      unknownMaxAgeMs: opts.unknownMaxAgeMs ?? 30 * 86_400_000,
      unknownMaxRows: opts.unknownMaxRows ?? 10_000,
      intervalMs: opts.intervalMs ?? 600_000,
    };
    this.runWhen = opts.runWhen;
  }

  maybeRun(now: number): void {
    if (now - this.lastRun < this.o.intervalMs || this.running) return;
    if (this.runWhen !== undefined && !this.runWhen()) return;
    this.running = this.run(now).finally(() => {
      this.running = undefined;
    });
  }

  async run(now: number): Promise<void> {
    this.lastRun = now;
    try {
      const log = await this.store.pruneLog(now - this.o.logMaxAgeMs);
      const unknown = await this.store.pruneUnknown(now - this.o.unknownMaxAgeMs, this.o.unknownMaxRows);
      if (log + unknown > 0) this.logger.info({ nodeLogRows: log, unknownRegistrationRows: unknown }, 'node retention deleted old rows');
    } catch (err) {
      this.logger.error({ err }, 'node retention failed');
    }
  }
}
