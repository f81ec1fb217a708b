// The command queue's Redis side: one BullMQ Queue and Worker on two ioredis clients, whether
// Redis is usable right now, and an orderly close. Delivery rules live in delivery.ts; this file
// only knows that a job is named after its command kind and identified by its command id.
import { Queue, Worker, type Job, type Processor } from 'bullmq';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import { createRedisClient, parseRedisUrl, queuePrefixFor } from '../redis/index.js';
import { sinkLateConnectionErrors } from './bullmq-close.js';

/** What a command's job carries; the command row itself stays in SQLite (job id = command id). */
export interface JobData {
  node: string;
  seq: number;
}

/** The fields of a command row its job is made from. */
export interface JobSource {
  id: string;
  kind: string;
  nodeName: string;
  seq: number;
}

export interface CommandQueueOptions {
  logger: FastifyBaseLogger;
  /** Counts every Redis error seen by the clients, the queue and the worker. */
  onRedisError: () => void;
  /** REDIS_URL: one server, Sentinel (redis+sentinel://) or Cluster (redis+cluster://); see src/redis/target.ts. */
  redisUrl?: string;
  connection?: RedisOptions;
  queueName: string;
  /**
   * Session routing: this instance's id. Its worker then serves `<queueName>@<instanceId>` only,
   * and jobs can be added to another instance's queue (see CommandRouting).
   */
  instanceId?: string;
  /** BullMQ key prefix; on a Redis Cluster it is made a hash tag (`{bull}`) so a queue's keys share a slot. */
  prefix: string;
  /** Command timeout of the API-side client. */
  redisTimeoutMs: number;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
}

export interface CommandQueue {
  /** True while the queue's Redis connection is usable (and the queue is not closed). */
  redisReady(): boolean;
  /** Resolves once Redis is ready or after `ms`, whichever comes first; never rejects. */
  waitForRedis(ms: number): Promise<void>;
  /** Called each time the queue's connection becomes ready (again); not after close. */
  onReady(listener: () => void): void;
  /** `target`: the instance whose queue gets the job (session routing); default this one's. */
  add(row: JobSource, target?: string): Promise<unknown>;
  addBulk(rows: JobSource[], targetOf?: (row: JobSource) => string | undefined): Promise<unknown>;
  /** The job in this instance's queue. */
  getJob(id: string): Promise<Job<JobData> | undefined>;
  /** Makes a delayed job due now; a job that is not delayed runs anyway, so failures are ignored. */
  promote(id: string): void;
  startWorker(processor: Processor<JobData, string>): void;
  /**
   * Stops the worker, calls `afterWorkerClosed` (no job runs any more), then closes the queue and
   * both clients. Queued jobs stay in Redis.
   */
  close(afterWorkerClosed: () => void): Promise<void>;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const jobOf = (r: JobSource) => ({ name: r.kind, data: { node: r.nodeName, seq: r.seq }, opts: { jobId: r.id } });

export function createCommandQueue(opts: CommandQueueOptions): CommandQueue {
  const log = opts.logger;
  if (!opts.connection && !opts.redisUrl) throw new Error('createCommandService needs redisUrl or connection');
  // Reconnect quickly and forever: the queue must recover by itself when Redis comes back.
  const retryStrategy = (times: number) => Math.min(100 * times, 1000);
  const target = opts.connection ? undefined : parseRedisUrl(opts.redisUrl as string);
  const prefix = target ? queuePrefixFor(target, opts.prefix) : opts.prefix;
  const makeClient = (extra: RedisOptions): Redis | Cluster => {
    const o: RedisOptions = { ...opts.connection, ...extra, retryStrategy, lazyConnect: false };
    return target ? createRedisClient(target, o) : new Redis(o);
  };
  // API-side client: no offline queue and a command timeout, so a dead Redis fails a request in
  // milliseconds instead of parking it behind ioredis reconnect attempts.
  const queueClient = makeClient({
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: opts.redisTimeoutMs,
    connectionName: 'apiary-commands-queue',
  });
  // Worker-side client: BullMQ requires maxRetriesPerRequest null; its operations wait for Redis.
  const workerClient = makeClient({ maxRetriesPerRequest: null, connectionName: 'apiary-commands-worker' });

  let redisDown = false;
  let closed = false;
  const onRedisError = (which: string) => (err: Error) => {
    opts.onRedisError();
    if (!redisDown) {
      redisDown = true;
      log.warn({ err: err.message, client: which }, 'command queue lost Redis; sends answer 503 until it is back');
    } else {
      log.debug({ err: err.message, client: which }, 'command queue redis error');
    }
  };
  queueClient.on('error', onRedisError('queue'));
  workerClient.on('error', onRedisError('worker'));
  // A Redis shutting down cleanly closes the connection without an error event.
  queueClient.on('close', () => {
    if (closed || redisDown) return;
    redisDown = true;
    log.warn('command queue lost its Redis connection; sends answer 503 until it is back');
  });

  const nameOf = (instance: string | undefined) => (instance === undefined ? opts.queueName : `${opts.queueName}@${instance}`);
  const newQueue = (name: string) => {
    const q = new Queue<JobData>(name, {
      connection: queueClient,
      prefix,
      defaultJobOptions: { removeOnComplete: true, removeOnFail: true, attempts: 1 },
    });
    q.on('error', onRedisError('queue'));
    return q;
  };
  const ownName = nameOf(opts.instanceId);
  const queue = newQueue(ownName);
  /** Other instances' queues this one added jobs to (session routing), by instance id. */
  const others = new Map<string, Queue<JobData>>();
  const queueOf = (target: string | undefined): Queue<JobData> => {
    if (target === undefined || opts.instanceId === undefined || target === opts.instanceId) return queue;
    let q = others.get(target);
    if (!q) others.set(target, (q = newQueue(nameOf(target))));
    return q;
  };

  let worker: Worker<JobData> | undefined;
  const readyListeners: Array<() => void> = [];
  const onReady = () => {
    if (redisDown) log.info('command queue reconnected to Redis');
    redisDown = false;
    for (const l of readyListeners) l();
  };
  queueClient.on('ready', onReady);

  const redisReady = () => queueClient.status === 'ready' && !closed;

  return {
    redisReady,

    async waitForRedis(ms) {
      if (redisReady()) return;
      let onReadyOnce: (() => void) | undefined;
      await withTimeout(
        new Promise<void>((res) => {
          onReadyOnce = res;
          queueClient.once('ready', res);
        }),
        ms,
        'redis',
      ).catch(() => undefined);
      if (onReadyOnce) queueClient.off('ready', onReadyOnce);
      await withTimeout(queue.waitUntilReady(), ms, 'queue').catch(() => undefined);
    },

    onReady(listener) {
      readyListeners.push(listener);
    },

    add(row, target) {
      const j = jobOf(row);
      return queueOf(target).add(j.name, j.data, j.opts);
    },

    async addBulk(rows, targetOf) {
      if (!targetOf) return queue.addBulk(rows.map(jobOf));
      const byTarget = new Map<Queue<JobData>, JobSource[]>();
      for (const r of rows) {
        const q = queueOf(targetOf(r));
        const list = byTarget.get(q);
        if (list) list.push(r);
        else byTarget.set(q, [r]);
      }
      return Promise.all([...byTarget].map(([q, list]) => q.addBulk(list.map(jobOf))));
    },

    getJob(id) {
      return queue.getJob(id);
    },

    promote(id) {
      if (!redisReady()) return;
      void (async () => {
        const job = await queue.getJob(id);
        if (job) await job.promote();
      })().catch(() => {
        // Not delayed (waiting or running): it runs anyway.
      });
    },

    startWorker(processor) {
      worker = new Worker<JobData>(ownName, processor, {
        connection: workerClient,
        prefix,
        concurrency: opts.concurrency,
        lockDuration: opts.lockDurationMs,
        stalledInterval: opts.stalledIntervalMs,
        // Restarts and Redis outages stall jobs legitimately; a stalled job is simply re-run.
        maxStalledCount: 1000,
        // After a Redis outage the worker retries after this long (BullMQ's default is 15 s).
        runRetryDelay: 1000,
        drainDelay: 5,
      });
      worker.on('error', onRedisError('worker'));
    },

    async close(afterWorkerClosed) {
      closed = true;
      queueClient.off('ready', onReady);
      const up = queueClient.status === 'ready';
      const quietly = (p: Promise<unknown> | undefined, ms: number) =>
        p ? withTimeout(p, ms, 'close').catch((err: Error) => log.debug({ err: err.message }, 'command queue close step')) : undefined;
      // A graceful worker close waits for running jobs; with Redis gone they could wait forever.
      await quietly(worker?.close(!up), 10_000);
      // BullMQ 5 can arm its stalled-check timer (stalledInterval, not unref'd) after close() when
      // close lands during a check; stop it again (here and once the connections are gone) so a
      // closed service holds no timers.
      const stopStalledCheck = () =>
        (worker as unknown as { stalledCheckStopper?: () => void } | undefined)?.stalledCheckStopper?.();
      stopStalledCheck();
      afterWorkerClosed();
      await quietly(queue.close(), 3000);
      for (const q of others.values()) await quietly(q.close(), 3000);
      sinkLateConnectionErrors(worker, log);
      sinkLateConnectionErrors(queue, log);
      for (const q of others.values()) sinkLateConnectionErrors(q, log);
      for (const c of [queueClient, workerClient]) {
        if (c.status === 'ready') await quietly(c.quit(), 2000);
        c.disconnect();
      }
      stopStalledCheck();
      await new Promise((r) => setImmediate(r));
      stopStalledCheck();
    },
  };
}
