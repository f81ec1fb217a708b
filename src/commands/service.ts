// The operator command queue. Each command is a row in SQLite (the authority on its status) and a
// BullMQ job in Redis (the durable obligation to deliver it; job id = command id).
//
// This file is the public surface (send, broadcast, list, get, cancel; accepting a command into
// SQLite and Redis, the settling of rows and its side effects) and composes the parts:
// - intake.ts: what a command body (schema, git policy) and a node selection must satisfy.
// - queue.ts: the BullMQ Queue/Worker and their Redis clients, Redis up/down, close.
// - delivery.ts: the job processor (in order per node, one in flight, parked while it cannot run)
//   and waking parked jobs.
// - status.ts: what nodes answer, fed to the answer tracker (tracker.ts), and answer deadlines.
// - reconcile.ts: re-adding the jobs of queued/sent rows when Redis (re)connects, and the periodic
//   sweep (expiry, idle-node wake-up).
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import type { RedisOptions } from 'ioredis';
import type { DatabaseHandle } from '../db/index.js';
import type { NodeCommandBody } from '../protocol/index.js';
import { compileGitPolicy, type GitUrlRule } from './git-policy.js';
import { createCommandMetrics, type CommandMetrics } from './metrics.js';
import { toView, type CommandRow, type CommandStore, type NewCommand } from './store.js';
import { SqliteCommandStore } from './sqlite-store.js';
import { createDelivery } from './delivery.js';
import { createCommandIntake, type ParsedCommand } from './intake.js';
import { createReconciler } from './reconcile.js';
import { answerTimeouts, createStatusTracking } from './status.js';
import { createCommandQueue, withTimeout } from './queue.js';
import {
  CommandError,
  type CommandKind,
  type CommandResult,
  type CommandRouting,
  type CommandStatus,
  type CommandTransport,
  type CommandView,
  type NodeSelector,
  type TerminalStatus,
} from './types.js';

export interface CommandServiceOptions {
  /** The SQLite database: the commands are kept there unless `store` is given. */
  db?: DatabaseHandle;
  /** Where the commands are kept (e.g. a PgCommandStore); wins over `db`. */
  store?: CommandStore;
  logger: FastifyBaseLogger;
  registry: Registry;
  gateway: CommandTransport;
  /** redis://host:port[/db]; used when `connection` is absent. */
  redisUrl?: string;
  /** ioredis options (host, port, password, tls, db...); wins over redisUrl. */
  connection?: RedisOptions;
  /** How long a command may wait for delivery before it expires. Default 24 h. */
  ttlMs?: number;
  /**
   * How long a sent command waits for its answer: one number for every kind, or per-kind overrides
   * of the defaults (InstallPot and Restart 120 s, everything else 30 s).
   */
  answerTimeoutMs?: number | Partial<Record<CommandKind, number>>;
  /** GetInstalledPots is complete after this long without another pot report. Default 2 s. */
  quietPeriodMs?: number;
  /** UpdateConfig succeeds after this long without a NodeEvent Error. Default 2 s. */
  updateConfigGraceMs?: number;
  /**
   * Queue a GetInstalledPots for a node each time it (re)registers, unless one is already queued
   * for it. It goes through the queue like any command, so it keeps the node's order and the
   * one-in-flight rule. Default false.
   */
  installedPotsOnRegistration?: boolean;
  /** Allowed InstallPot git_url values: URL prefixes or whole-URL regexes. Default [] (refuse all). */
  gitUrlAllowList?: GitUrlRule[];
  /** Called with the honeypot_type of every InstallPot queued (the core gives those types metric labels). */
  onInstallPot?: (honeypotType: string) => void;
  /** Jobs the worker runs at once. Jobs are short (parked while waiting), so this need not be large. Default 64. */
  concurrency?: number;
  /** BullMQ queue name. Default 'apiary-commands'. */
  queueName?: string;
  /** BullMQ key prefix. Default 'bull'. */
  prefix?: string;
  /** How long an API call waits on Redis before answering 503. Default 3 s. */
  redisTimeoutMs?: number;
  /** Longest a parked job sleeps before re-checking by itself (wake-ups normally come first). Default 10 min. */
  recheckMs?: number;
  /** Expiry sweep and idle-node wake-up period. Default 15 s. */
  sweepIntervalMs?: number;
  /** BullMQ lock duration of an active job; a crashed core's jobs are recovered after it. Default 30 s. */
  lockDurationMs?: number;
  /** BullMQ stalled-job check period. Default 15 s. */
  stalledIntervalMs?: number;
  /** start() waits this long for Redis before carrying on without it. Default 5 s. */
  startWaitMs?: number;
  /**
   * Session routing: several instances share the database and Redis; commands are delivered by
   * the instance holding the node's session (see delivery.ts). Absent: one instance.
   */
  routing?: CommandRouting;
}

export interface SendOptions {
  requestedBy?: string | null;
}

export interface ListQuery {
  node?: string;
  status?: CommandStatus;
  batch?: string;
  kind?: CommandKind;
  /** Page size, 1..500. Default 50. */
  limit?: number;
  /** Return commands with seq below this (the `next` of the previous page). */
  before?: number;
}

export interface BroadcastResult {
  batchId: string;
  count: number;
  commands: Array<{ id: string; node: string; seq: number }>;
}

export interface CommandService {
  /** Starts the worker and the gateway subscriptions. Does not wait for Redis. */
  start(): Promise<void>;
  /** Stops the worker and closes the Redis connections; queued commands stay queued. */
  close(): Promise<void>;
  /** Queues a command for one node. Resolves once the command is in Redis. */
  send(node: string, command: unknown, opts?: SendOptions): Promise<CommandView>;
  /**
   * Checks a command body as `send` would (protocol schema, git URL allow-list, branch name)
   * without queueing it; throws the CommandError `send` would throw. Lets a console check an
   * InstallPot git_url against the allow-list without the list leaving the core.
   */
  check(command: unknown): { kind: CommandKind; potId: string | null };
  broadcast(selector: NodeSelector, command: unknown, opts?: SendOptions): Promise<BroadcastResult>;
  /** honeypot_type values of InstallPot commands ever queued (at most `limit`). */
  installedPotTypes(limit?: number): Promise<string[]>;
  list(query?: ListQuery): Promise<{ commands: CommandView[]; next: number | null }>;
  get(id: string): Promise<CommandView | undefined>;
  /** Cancels a queued command; a sent or finished one is a 409 CommandError. */
  cancel(id: string, opts?: SendOptions): Promise<CommandView>;
  /** True while the queue's Redis connection is usable. */
  redisReady(): boolean;
  /** Called once per command that reached a final status. Returns the unsubscribe function. */
  onFinished(listener: (command: FinishedCommand) => void): () => void;
}

/** A command that just reached its final status. */
export interface FinishedCommand {
  id: string;
  node: string;
  kind: CommandKind;
  status: TerminalStatus;
  result: CommandResult | null;
  requestedBy: string | null;
  /** Epoch ms at which the command was accepted. */
  createdAt: number;
}

/** requested_by of the GetInstalledPots the core queues itself when a node registers. */
export const REGISTRATION_REQUESTER = 'core:registration';

function commandStore(opts: CommandServiceOptions): CommandStore {
  if (opts.store) return opts.store;
  if (opts.db) return new SqliteCommandStore(opts.db);
  throw new Error('createCommandService needs a store (or db)');
}

const redisUnavailable = () =>
  new CommandError(503, 'redis_unavailable', 'the command queue (Redis) is unavailable: nothing was queued, retry later');

export function createCommandService(opts: CommandServiceOptions): CommandService {
  const log = opts.logger;
  const gateway = opts.gateway;
  const routing = opts.routing;
  const store = commandStore(opts);
  const ttlMs = opts.ttlMs ?? 24 * 3600_000;
  const timeouts = answerTimeouts(opts.answerTimeoutMs);
  const gitAllowed = opts.gitUrlAllowList && opts.gitUrlAllowList.length > 0 ? compileGitPolicy(opts.gitUrlAllowList) : null;
  const redisTimeoutMs = opts.redisTimeoutMs ?? 3000;
  const recheckMs = opts.recheckMs ?? 600_000;
  const startWaitMs = opts.startWaitMs ?? 5000;
  const metrics: CommandMetrics = createCommandMetrics(opts.registry, {
    queued: () => store.count('queued'),
    inFlight: () => store.count('sent'),
  });

  const commandQueue = createCommandQueue({
    logger: log,
    onRedisError: () => metrics.redisError(),
    redisUrl: opts.redisUrl,
    connection: opts.connection,
    queueName: opts.queueName ?? 'apiary-commands',
    instanceId: routing?.instanceId,
    prefix: opts.prefix ?? 'bull',
    redisTimeoutMs,
    concurrency: opts.concurrency ?? 64,
    lockDurationMs: opts.lockDurationMs ?? 30_000,
    stalledIntervalMs: opts.stalledIntervalMs ?? 15_000,
  });
  const redisReady = commandQueue.redisReady;

  const intake = createCommandIntake({ store, gateway: routing ?? gateway, metrics, gitAllowed });

  let started = false;
  let closed = false;

  // ------------------------------------------------------------------ settling

  /** Side effects of a row that just reached a final status. */
  function finished(row: CommandRow, to: TerminalStatus, result: CommandResult | null, inWorker: boolean): void {
    const now = Date.now();
    tracking.forget(row.id, row.nodeName);
    metrics.finished(row.kind as CommandKind, to);
    if (row.sentAt !== null && (to === 'succeeded' || to === 'failed')) metrics.answered(row.kind as CommandKind, (now - row.sentAt) / 1000);
    log.info(
      { command: row.id, node: row.nodeName, kind: row.kind, status: to, reason: result?.reason, message: result?.message },
      'command finished',
    );
    // A job parked until its deadline or expiry completes now instead of lingering in Redis.
    if (!inWorker) commandQueue.promote(row.id);
    wake(row.nodeName);
    routing?.notifyOwner(row.nodeName);
    const done: FinishedCommand = { id: row.id, node: row.nodeName, kind: row.kind as CommandKind, status: to, result, requestedBy: row.requestedBy, createdAt: row.createdAt };
    for (const l of finishedListeners) {
      try {
        l(done);
      } catch (err) {
        log.error({ err, command: row.id }, 'command finished listener failed');
      }
    }
  }
  const finishedListeners = new Set<(command: FinishedCommand) => void>();

  async function settle(id: string, from: 'queued' | 'sent', to: TerminalStatus, result: CommandResult | null, inWorker = false): Promise<boolean> {
    const row = await store.get(id);
    if (!row || !(await store.finish(id, from, to, result, Date.now()))) return false;
    finished(row, to, result, inWorker);
    return true;
  }

  // The parts need each other in a cycle (an answer settles a row, which wakes the node's lane in
  // delivery, which tracks the next sent command), so they are joined here through closures that
  // are only called once start() has run, when every part exists.
  const tracking = createStatusTracking({
    store,
    gateway,
    logger: log,
    timeouts,
    quietPeriodMs: opts.quietPeriodMs ?? 2000,
    updateConfigGraceMs: opts.updateConfigGraceMs ?? 2000,
    isClosed: () => closed,
    routed: routing !== undefined,
    settleSent: async (id, status, result) => {
      await settle(id, 'sent', status, result);
    },
    onNodeOnline: (node) => {
      wake(node);
      if (opts.installedPotsOnRegistration) requestInstalledPots(node);
    },
  });

  const delivery = createDelivery({
    store,
    gateway,
    commandQueue,
    tracking,
    logger: log,
    metrics,
    timeouts,
    recheckMs,
    isClosed: () => closed,
    settleFromJob: async (id, from, to, result) => {
      await settle(id, from, to, result, true);
    },
    routing,
  });
  const wake = delivery.wake;

  const reconciler = createReconciler({
    store,
    gateway,
    commandQueue,
    logger: log,
    metrics,
    sweepIntervalMs: opts.sweepIntervalMs ?? 15_000,
    wake,
    finished: (row, to, result) => finished(row, to, result, false),
    routedTimeouts: routing ? timeouts : undefined,
  });

  // ------------------------------------------------------------------ registrations

  /** Queues the GetInstalledPots of a (re)registration, unless one is already waiting. */
  function requestInstalledPots(node: string): void {
    if (closed || !redisReady()) {
      log.debug({ node }, 'Redis unavailable: no GetInstalledPots queued for this registration');
      return;
    }
    const row = newRow(node, intake.parse({ GetInstalledPots: {} }), Date.now(), null, REGISTRATION_REQUESTER);
    void (async () => {
      if ((await store.list({ node, status: 'queued', kind: 'GetInstalledPots', limit: 1 })).length > 0) return;
      await enqueue([row]);
      log.debug({ command: row.id, node }, 'GetInstalledPots queued for the registration');
    })().catch((err: Error) => log.warn({ err: err.message, node }, 'could not queue GetInstalledPots for the registration'));
  }

  // ------------------------------------------------------------------ accepting commands

  function noteInstall(body: NodeCommandBody): void {
    if ('InstallPot' in body) opts.onInstallPot?.(body.InstallPot.honeypot_type);
  }

  /** Stores the rows, then hands their jobs to Redis; only then are they accepted. */
  async function enqueue(rows: NewCommand[]): Promise<CommandRow[]> {
    if (!redisReady()) {
      metrics.rejected('redis_unavailable');
      throw redisUnavailable();
    }
    const inserted = await store.insert(rows);
    try {
      // Routed: each job goes to the queue of the instance holding its node (this one when offline).
      const target = (r: CommandRow) => routing?.ownerOf(r.nodeName);
      const adding =
        inserted.length === 1 ? commandQueue.add(inserted[0], target(inserted[0])) : commandQueue.addBulk(inserted, routing ? (r) => target(r as CommandRow) : undefined);
      await withTimeout(adding, redisTimeoutMs * 2, 'queueing');
    } catch (err) {
      metrics.redisError();
      // Only rows still untouched are withdrawn; one the worker already picked up was in Redis
      // after all (the reply was what got lost), so the command stands.
      const withdrawn: CommandRow[] = [];
      for (const r of inserted) if (await store.withdraw(r.id).catch(() => false)) withdrawn.push(r);
      if (withdrawn.length === inserted.length) {
        metrics.rejected('redis_unavailable');
        log.warn({ err: (err as Error).message, count: inserted.length }, 'command not accepted: Redis unavailable');
        throw redisUnavailable();
      }
      log.warn({ err: (err as Error).message }, 'queueing reply lost but commands were picked up; accepted');
      const gone = new Set(withdrawn.map((r) => r.id));
      return inserted.filter((r) => !gone.has(r.id));
    }
    return inserted;
  }

  function newRow(node: string, parsed: ParsedCommand, now: number, batchId: string | null, by: string | null): NewCommand {
    return {
      id: randomUUID(),
      nodeName: node,
      kind: parsed.kind,
      potId: parsed.potId,
      command: parsed.body,
      batchId,
      requestedBy: by,
      createdAt: now,
      expiresAt: now + ttlMs,
    };
  }

  // ------------------------------------------------------------------ public surface

  return {
    async start() {
      if (started || closed) return;
      started = true;
      await tracking.start();
      routing?.onWake((node) => {
        if (!closed) wake(node);
      });
      commandQueue.startWorker(delivery.processor);
      reconciler.start();
      // Give a Redis that is starting alongside us a moment, so the first requests are not 503s;
      // a Redis that stays away is not waited for (the queue recovers when it comes).
      await commandQueue.waitForRedis(startWaitMs);
      reconciler.syncIfReady();
    },

    async close() {
      if (closed) return;
      closed = true;
      reconciler.stop();
      tracking.stopListening();
      await commandQueue.close(() => tracking.clearAll());
    },

    check(command) {
      const { kind, potId } = intake.parse(command, { dryRun: true });
      return { kind, potId };
    },

    async send(node, command, o = {}) {
      const parsed = intake.parse(command);
      await intake.checkNodes([node]);
      const [row] = await enqueue([newRow(node, parsed, Date.now(), null, o.requestedBy ?? null)]);
      log.info({ command: row.id, node, kind: row.kind, seq: row.seq, by: row.requestedBy }, 'command queued');
      noteInstall(parsed.body);
      return toView((await store.get(row.id)) ?? row);
    },

    async broadcast(selector, command, o = {}) {
      const parsed = intake.parse(command);
      const names = await intake.resolveSelector(selector);
      if (names.length === 0) {
        metrics.rejected('empty_selection');
        throw new CommandError(422, 'no_nodes_selected', 'the node selection matched no nodes; nothing was queued');
      }
      const batchId = randomUUID();
      const now = Date.now();
      const rows = await enqueue(names.map((n) => newRow(n, parsed, now, batchId, o.requestedBy ?? null)));
      log.info({ batch: batchId, kind: parsed.kind, count: rows.length, by: o.requestedBy ?? null }, 'broadcast queued');
      noteInstall(parsed.body);
      return { batchId, count: rows.length, commands: rows.map((r) => ({ id: r.id, node: r.nodeName, seq: r.seq })) };
    },

    installedPotTypes(limit = 1000) {
      return store.installedPotTypes(limit);
    },

    async list(q = {}) {
      const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
      const rows = await store.list({
        node: q.node,
        status: q.status,
        batchId: q.batch,
        kind: q.kind,
        beforeSeq: q.before,
        limit,
      });
      return { commands: rows.map(toView), next: rows.length === limit ? rows[rows.length - 1].seq : null };
    },

    async get(id) {
      const row = await store.get(id);
      return row ? toView(row) : undefined;
    },

    async cancel(id, o = {}) {
      const row = await store.get(id);
      if (!row) throw new CommandError(404, 'not_found', `no command ${id}`);
      const result: CommandResult = { reason: 'cancelled', message: o.requestedBy ? `cancelled by ${o.requestedBy}` : 'cancelled by an operator' };
      if (row.status === 'queued' && (await store.finish(id, 'queued', 'cancelled', result, Date.now()))) {
        finished(row, 'cancelled', result, false);
        return toView((await store.get(id)) as CommandRow);
      }
      const now = (await store.get(id)) as CommandRow;
      if (now.status === 'sent') {
        throw new CommandError(
          409,
          'already_sent',
          `command ${id} was already sent to ${now.nodeName} at ${new Date(now.sentAt ?? 0).toISOString()}; HoneyBee nodes cannot recall a command, so it can no longer be cancelled`,
        );
      }
      throw new CommandError(409, 'already_finished', `command ${id} already ${now.status}; only queued commands can be cancelled`);
    },

    redisReady,

    onFinished(listener) {
      finishedListeners.add(listener);
      return () => {
        finishedListeners.delete(listener);
      };
    },
  };
}
