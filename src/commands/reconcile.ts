// Keeps Redis in step with SQLite, the authority on every command's status.
// - Redis is re-synchronised from SQLite at start and whenever the connection comes back: every
//   queued/sent row gets its job re-added (adding an existing job id is a no-op). That is what
//   makes an accepted command survive a Redis that lost its last second of AOF.
// - A periodic sweep wakes every online idle node as a backstop to the wake-ups of delivery.ts,
//   and expires overdue commands in SQLite even while Redis is down.
// - Session routing: an instance re-adds the jobs of the nodes it holds only (the others are their
//   holders' business), and the sweep also fails sent commands long past their answer deadline,
//   whose sender may have died with the only job and flight that watched them.
import type { FastifyBaseLogger } from 'fastify';
import type { CommandMetrics } from './metrics.js';
import type { CommandQueue } from './queue.js';
import type { CommandRow, CommandStore } from './store.js';
import type { CommandKind, CommandResult, CommandTransport, TerminalStatus } from './types.js';

export interface ReconcileOptions {
  store: CommandStore;
  gateway: Pick<CommandTransport, 'isOnline'>;
  commandQueue: Pick<CommandQueue, 'redisReady' | 'addBulk' | 'onReady'>;
  logger: FastifyBaseLogger;
  metrics: Pick<CommandMetrics, 'redisError'>;
  sweepIntervalMs: number;
  /** Makes the node's next command run now if it can. */
  wake(node: string): void;
  /** Side effects of a row the sweep just finished (outside its job). */
  finished(row: CommandRow, status: TerminalStatus, result: CommandResult): void;
  /** Session routing: answer deadlines per kind, for the overdue backstop. Absent with one instance. */
  routedTimeouts?: Record<CommandKind, number>;
}

export interface Reconciler {
  /** Starts the sweep; from now on every Redis (re)connection re-synchronises at once. */
  start(): void;
  /** The first re-synchronisation: now if Redis is up, else at the first sweep that finds it up. */
  syncIfReady(): void;
  stop(): void;
}

export function createReconciler(opts: ReconcileOptions): Reconciler {
  const { store, gateway, commandQueue, metrics, wake, finished } = opts;
  const log = opts.logger;
  let running = false;
  let sweepTimer: NodeJS.Timeout | undefined;
  let reconciling: Promise<void> | undefined;

  /** Re-adds the job of every queued/sent row (existing ids are left alone) and wakes idle lanes. */
  async function reconcile(): Promise<void> {
    if (reconciling) return reconciling;
    reconciling = (async () => {
      const pending = await store.pending();
      const rows = opts.routedTimeouts ? pending.filter((r) => gateway.isOnline(r.nodeName)) : pending;
      for (let i = 0; i < rows.length && commandQueue.redisReady(); i += 500) {
        const chunk = rows.slice(i, i + 500);
        await commandQueue.addBulk(chunk);
      }
      for (const node of new Set(rows.map((r) => r.nodeName))) wake(node);
      if (rows.length) log.info({ pending: rows.length }, 'command queue re-synchronised with Redis');
    })()
      .catch((err: Error) => {
        metrics.redisError();
        log.warn({ err: err.message }, 'command queue re-synchronisation failed; retried on the next reconnect or sweep');
      })
      .finally(() => {
        reconciling = undefined;
      });
    return reconciling;
  }

  /** Sent rows whose deadline passed a while ago: the job and flight that watched them are gone. */
  async function failOverdue(timeouts: Record<CommandKind, number>, now: number): Promise<void> {
    const grace = 2 * opts.sweepIntervalMs + 5000;
    for (const row of await store.pending()) {
      if (row.status !== 'sent' || row.sentAt === null) continue;
      const limit = timeouts[row.kind as CommandKind];
      if (now < row.sentAt + limit + grace) continue;
      const result: CommandResult = { reason: 'timeout', message: `no answer from the node within ${Math.round(limit / 1000)} s` };
      if (await store.finish(row.id, 'sent', 'failed', result, now)) finished(row, 'failed', result);
    }
  }

  let needsReconcile = true;
  let sweeping = false;
  async function sweep(): Promise<void> {
    const now = Date.now();
    const result: CommandResult = { reason: 'ttl', message: 'not delivered before its TTL: the node was offline or busy' };
    for (const row of await store.dueForExpiry(now)) {
      if (await store.finish(row.id, 'queued', 'expired', result, now)) finished(row, 'expired', result);
    }
    if (opts.routedTimeouts) await failOverdue(opts.routedTimeouts, now);
    if (!commandQueue.redisReady()) return;
    if (needsReconcile) {
      needsReconcile = false;
      void reconcile();
      return;
    }
    for (const node of await store.nodesWithQueued()) if (gateway.isOnline(node) && !(await store.inFlight(node))) wake(node);
  }

  /** One sweep at a time (a slow database must not stack them up). */
  function sweepOnce(): void {
    if (sweeping) return;
    sweeping = true;
    sweep()
      .catch((err: unknown) => log.warn({ err }, 'command sweep failed; retried at the next one'))
      .finally(() => {
        sweeping = false;
      });
  }

  commandQueue.onReady(() => {
    if (running) void reconcile();
    else needsReconcile = true;
  });

  return {
    start() {
      running = true;
      sweepTimer = setInterval(sweepOnce, opts.sweepIntervalMs);
      sweepTimer.unref();
    },
    syncIfReady() {
      needsReconcile = !commandQueue.redisReady();
      if (!needsReconcile) void reconcile();
    },
    stop() {
      running = false;
      if (sweepTimer) clearInterval(sweepTimer);
    },
  };
}
