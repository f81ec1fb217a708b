// Delivery of queued commands to their nodes: the BullMQ job processor and the waking of parked
// jobs. The command row in the database is the authority on status; the job (job id = command id) is the
// durable obligation to deliver it.
//
// - One in flight per node, strictly in seq order: a job runs its command only when the node is
//   online, nothing of that node is 'sent', and no lower seq of that node is still 'queued'.
//   Otherwise the job parks itself (moveToDelayed) until it is woken or its command expires.
// - Waking: when a node comes online, or its in-flight command ends, the node's lowest queued
//   command's job is promoted. A periodic sweep (reconcile.ts) repeats that for every online idle
//   node as a backstop.
// - Once sent, the job parks until the answer deadline; status tracking (status.ts) settles the row
//   and promotes the job so it completes.
// - Session routing (several instances, CommandRouting): each instance's worker serves its own
//   queue and delivers only to nodes whose session it holds. A command is queued on the holder's
//   queue; a job that finds its node held by another instance completes as 'moved' and tells the
//   holder, whose wake-up recreates the job on its own queue (the row, not the job, is the command).
//   Queue-per-instance rather than re-targeting a job in place: BullMQ cannot move a job between
//   queues, and a duplicate job is harmless because the row's compare-and-set claim (markSent, which
//   also checks one-in-flight and order in SQL) lets exactly one delivery through.
import { DelayedError, type Job } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import type { NodeCommandBody } from '../protocol/index.js';
import type { CommandMetrics } from './metrics.js';
import type { CommandQueue, JobData } from './queue.js';
import type { StatusTracking } from './status.js';
import type { CommandRow, CommandStore } from './store.js';
import { isTerminal, type CommandKind, type CommandResult, type CommandRouting, type CommandTransport, type TerminalStatus } from './types.js';

export interface DeliveryOptions {
  store: CommandStore;
  gateway: CommandTransport;
  commandQueue: CommandQueue;
  tracking: Pick<StatusTracking, 'trackSent' | 'trackRecovered' | 'isTracking' | 'timeoutNow'>;
  logger: FastifyBaseLogger;
  metrics: Pick<CommandMetrics, 'delivered' | 'redisError'>;
  timeouts: Record<CommandKind, number>;
  /** Longest a parked job sleeps before re-checking by itself. */
  recheckMs: number;
  /** True once the service is closing: nothing new goes out. */
  isClosed(): boolean;
  /**
   * Makes a final status stick (compare-and-set on `from`) with its side effects, from inside the
   * row's own running job (so the job is not promoted: it completes by returning).
   */
  settleFromJob(id: string, from: 'queued' | 'sent', to: TerminalStatus, result: CommandResult): Promise<void>;
  /** Session routing; absent with one instance. */
  routing?: CommandRouting;
}

export interface Delivery {
  /** The BullMQ processor of command jobs. */
  processor(job: Job<JobData>, token?: string): Promise<string>;
  /** Makes the node's next command run now if it can; coalesces concurrent calls per node. */
  wake(node: string): void;
}

export function createDelivery(opts: DeliveryOptions): Delivery {
  const { store, gateway, commandQueue, tracking, metrics, timeouts, recheckMs, isClosed, settleFromJob, routing } = opts;
  const log = opts.logger;

  const waking = new Map<string, boolean>();

  function wake(node: string): void {
    if (waking.has(node)) {
      waking.set(node, true);
      return;
    }
    waking.set(node, false);
    void (async () => {
      do {
        waking.set(node, false);
        await wakeOnce(node).catch((err: Error) => {
          metrics.redisError();
          log.debug({ err: err.message, node }, 'could not wake the node lane; the sweep will retry');
        });
      } while (waking.get(node) === true && !isClosed());
      waking.delete(node);
    })();
  }

  async function wakeOnce(node: string): Promise<void> {
    if (isClosed() || !commandQueue.redisReady() || !gateway.isOnline(node) || (await store.inFlight(node))) return;
    const next = await store.nextQueued(node);
    if (!next) return;
    const job = await commandQueue.getJob(next.id);
    if (!job) {
      // Its job is gone (Redis lost data, or the job failed and was removed): recreate it.
      await commandQueue.add(next);
      return;
    }
    if (await job.isDelayed()) await job.promote().catch(() => undefined);
  }

  /** Whether a row's job should run now rather than stay parked. */
  async function runnable(id: string): Promise<boolean> {
    const row = await store.get(id);
    if (!row) return true;
    if (isTerminal(row.status)) return true;
    if (row.status === 'sent') return Date.now() >= (row.sentAt ?? 0) + timeouts[row.kind as CommandKind];
    if (Date.now() >= row.expiresAt) return true;
    return (await blockedBy(row)) === null;
  }

  async function blockedBy(row: CommandRow): Promise<'offline' | 'busy' | 'behind' | null> {
    if (!gateway.isOnline(row.nodeName)) return 'offline';
    if (await store.inFlight(row.nodeName)) return 'busy';
    if (await store.hasEarlierQueued(row.nodeName, row.seq)) return 'behind';
    return null;
  }

  async function park(job: Job<JobData>, token: string | undefined, until: number, recheck = true): Promise<never> {
    await job.moveToDelayed(until, token);
    if (!recheck) throw new DelayedError();
    // Something may have made the job runnable while it was active (wake() cannot promote an
    // active job); re-check once it is in the delayed set.
    const id = job.id as string;
    setImmediate(() => {
      void (async () => {
        if (!isClosed() && (await runnable(id))) commandQueue.promote(id);
      })().catch((err: unknown) => log.error({ err, job: id }, 'could not re-check a parked command job; the sweep will'));
    });
    throw new DelayedError();
  }

  async function processJob(job: Job<JobData>, token?: string): Promise<string> {
    const id = job.id as string;
    // Shutting down: nothing new goes out (its answer could not be tracked); the job is due at
    // once for whichever worker runs next.
    if (isClosed()) return park(job, token, Date.now());
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await store.get(id);
      if (!row) {
        log.warn({ job: id }, 'command job without a command row (never accepted); dropped');
        return 'orphan';
      }
      const now = Date.now();
      if (isTerminal(row.status)) return row.status;
      const kind = row.kind as CommandKind;
      if (row.status === 'sent') {
        const deadline = (row.sentAt ?? now) + timeouts[kind];
        if (now >= deadline) {
          if (!(await tracking.timeoutNow(id, row.nodeName))) {
            await settleFromJob(id, 'sent', 'failed', { reason: 'timeout', message: `no answer from the node within ${Math.round(timeouts[kind] / 1000)} s` });
          }
          continue;
        }
        // With routing, the node's holder tracks the answers; this job only keeps the deadline.
        if (!tracking.isTracking(row.nodeName) && (!routing || gateway.isOnline(row.nodeName))) tracking.trackRecovered(row);
        return park(job, token, deadline);
      }
      if (now >= row.expiresAt) {
        await settleFromJob(id, 'queued', 'expired', { reason: 'ttl', message: 'not delivered before its TTL: the node was offline or busy' });
        continue;
      }
      if (routing) {
        if (!gateway.isOnline(row.nodeName)) {
          const owner = routing.ownerOf(row.nodeName);
          if (owner !== undefined && owner !== routing.instanceId) {
            routing.notifyOwner(row.nodeName);
            return 'moved';
          }
        } else if (!(await routing.isCurrentLocal(row.nodeName))) {
          // Our session is stale (the node registered elsewhere; the takeover notice closes it)
          // or not claimed yet (the claim wakes this lane): look again shortly, not in a loop.
          return park(job, token, Math.min(row.expiresAt, Date.now() + 1000), false);
        }
        if (isClosed()) return park(job, token, Date.now());
      }
      if (await blockedBy(row)) return park(job, token, Math.min(row.expiresAt, now + recheckMs));
      // The claim re-checks what blockedBy checked, atomically in the database: a command another
      // job (or instance) sent in between makes it fail, and the next attempt parks.
      if (!(await store.markSent(id, now))) continue;
      const body = JSON.parse(row.command) as NodeCommandBody;
      if (!gateway.sendCommand(row.nodeName, body)) {
        await store.unmarkSent(id);
        log.debug({ command: id, node: row.nodeName }, 'node went away before the command could be written; parked');
        return park(job, token, Math.min(row.expiresAt, now + recheckMs));
      }
      tracking.trackSent({ ...row, status: 'sent', sentAt: now });
      metrics.delivered((now - row.createdAt) / 1000);
      log.info({ command: id, node: row.nodeName, kind, seq: row.seq }, 'command sent');
      return park(job, token, now + timeouts[kind]);
    }
    // Three attempts each lost a race (a settle, or a claim of another of the node's commands):
    // a command still open is re-checked shortly rather than left without a running job.
    const last = await store.get(id);
    if (last && !isTerminal(last.status)) return park(job, token, Date.now() + 1000);
    return 'settled';
  }

  async function processor(job: Job<JobData>, token?: string): Promise<string> {
    try {
      return await processJob(job, token);
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      // The job must not fail: a failed job is removed and its command would depend on the
      // sweep to be re-queued. Retry shortly instead.
      log.error({ err, job: job.id }, 'command job failed; retrying in 5 s');
      await job.moveToDelayed(Date.now() + 5000, token);
      throw new DelayedError();
    }
  }

  return { processor, wake };
}
