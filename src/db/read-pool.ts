// A small pool of read-only SQLite connections, each in its own worker process, so that expensive
// reads (stats over millions of rows, wide list queries) never run on the event loop that serves
// node sockets, the hpfeeds broker and the API.
//
// Seam for other domains ("query modules"): a module that exports
//
//     export function createQueries(db: Database.Database): Record<string, (args: any) => unknown>
//
// is loaded by every read worker at start (pass its URL in `modules`, e.g. moduleBeside(import.meta.url,
// 'read-queries')); createQueries is called once per worker with that worker's read-only connection
// (prepare statements there), and `pool.run('<module name>', '<query>', args)` runs one of the returned
// synchronous functions in a worker. Arguments and results cross the process boundary by structured
// clone ("advanced" IPC serialisation: plain data, no functions, no class instances). An Error thrown by a query rejects run() with
// an Error of the same name and message (e.g. a domain's 'QueryError' for a bad request).
//
// Every call has a time limit. A query past its limit rejects with QueryTimeoutError and its worker is
// killed and replaced. Workers are processes rather than threads for exactly this: better-sqlite3
// cannot interrupt a statement, and a thread stuck in one can neither be stopped nor lets the
// process exit, while a process is gone at once with SIGKILL.
import type Database from 'better-sqlite3';
import type { ChildProcess } from 'node:child_process';
import { forkModule, moduleBeside } from './worker-spawn.js';

export interface QueryModule {
  /** `options` are the plain data given with the module in ReadPoolOptions.modules (settings). */
  createQueries(db: Database.Database, options?: unknown): Record<string, (args: any) => unknown>;
}

/** A query module's URL, with plain-data options handed to its createQueries. */
export type QueryModuleRef = string | URL | { url: string | URL; options?: unknown };

/** @internal worker protocol */
export interface ReadWorkerData {
  dbPath: string;
  modules: Record<string, { url: string; options?: unknown }>;
}
/** @internal */
export interface ReadWorkerRequest {
  id: number;
  module: string;
  query: string;
  args: unknown;
}
/** @internal */
export type ReadWorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string } };

export class QueryTimeoutError extends Error {
  override name = 'QueryTimeoutError';
}

export class PoolBusyError extends Error {
  override name = 'PoolBusyError';
}

export interface ReadPoolOptions {
  /** SQLite file (WAL mode; created and migrated by the main connection beforehand). */
  dbPath: string;
  /** Query modules by name -> module URL (href or file URL). */
  modules: Record<string, QueryModuleRef>;
  /** Worker processes. Default 2. */
  size?: number;
  /** Default time limit of one call, queueing included, in ms. Default 10 000. */
  timeoutMs?: number;
  /** Calls waiting for a free worker; beyond this run() rejects with PoolBusyError. Default 64. */
  maxQueued?: number;
  /** Notified of worker failures and recycling (one line each). */
  onLog?: (level: 'warn' | 'error', msg: string, detail: Record<string, unknown>) => void;
}

interface Job {
  id: number;
  module: string;
  query: string;
  args: unknown;
  deadline: number;
  timeoutMs: number;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
  slot?: Slot;
}

interface Slot {
  worker: ChildProcess;
  ready: boolean;
  job: Job | undefined;
}

const WORKER_URL = moduleBeside(import.meta.url, 'read-worker');

function hold(worker: ChildProcess, busy: boolean): void {
  const channel = worker.channel as { ref?(): void; unref?(): void } | undefined;
  if (busy) {
    worker.ref();
    channel?.ref?.();
  } else {
    worker.unref();
    channel?.unref?.();
  }
}

export class ReadPool {
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  private readonly size: number;
  private readonly timeoutMs: number;
  private readonly maxQueued: number;
  private readonly workerData: ReadWorkerData;
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: ReadPoolOptions) {
    this.size = Math.max(1, opts.size ?? 2);
    this.timeoutMs = Math.max(1, opts.timeoutMs ?? 10_000);
    this.maxQueued = Math.max(0, opts.maxQueued ?? 64);
    const modules: Record<string, { url: string; options?: unknown }> = {};
    for (const [k, v] of Object.entries(opts.modules)) {
      const ref = typeof v === 'string' || v instanceof URL ? { url: v } : v;
      modules[k] = { url: typeof ref.url === 'string' ? ref.url : ref.url.href, options: ref.options };
    }
    this.workerData = { dbPath: opts.dbPath, modules };
    for (let i = 0; i < this.size; i++) this.spawn();
  }

  /** Workers started and ready (for tests and readiness). */
  get readyWorkers(): number {
    let n = 0;
    for (const s of this.slots) if (s.ready) n++;
    return n;
  }

  /** Resolves when every worker has opened its connection and loaded its modules. */
  async started(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.readyWorkers < this.size) {
      if (this.closed) throw new Error('read pool closed');
      if (Date.now() > until) throw new Error('read pool workers did not start in time');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Runs `module.query(args)` in a worker. */
  run<T>(module: string, query: string, args: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new Error('read pool closed'));
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(new PoolBusyError(`too many queries waiting (${this.queue.length}); try again shortly`));
    }
    const timeoutMs = Math.max(1, opts.timeoutMs ?? this.timeoutMs);
    return new Promise<T>((resolve, reject) => {
      const job: Job = { id: this.nextId++, module, query, args, deadline: Date.now() + timeoutMs, timeoutMs, resolve: resolve as (v: unknown) => void, reject };
      job.timer = setTimeout(() => this.expire(job), timeoutMs);
      job.timer.unref();
      this.queue.push(job);
      this.dispatch();
      this.updateHold();
    });
  }

  private spawn(): void {
    if (this.closed) return;
    const worker = forkModule(WORKER_URL, [JSON.stringify(this.workerData)]);
    const slot: Slot = { worker, ready: false, job: undefined };
    this.slots.add(slot);
    // An idle pool does not keep the process alive; queued and running calls do (updateHold).
    hold(worker, this.queue.length > 0);
    worker.on('message', (m: ReadWorkerReply | { ready: boolean; error?: { message: string } }) => {
      if ('ready' in m) {
        if (m.ready) {
          slot.ready = true;
          this.dispatch();
        } else {
          this.opts.onLog?.('error', 'read worker failed to start', { error: m.error?.message });
          this.retire(slot, false);
        }
        return;
      }
      const job = slot.job;
      if (job === undefined || job.id !== m.id) return;
      slot.job = undefined;
      clearTimeout(job.timer);
      if (m.ok) job.resolve(m.result);
      else job.reject(Object.assign(new Error(m.error.message), { name: m.error.name }));
      this.dispatch();
      this.updateHold();
    });
    worker.on('error', (err) => {
      this.opts.onLog?.('error', 'read worker failed', { error: err.message });
    });
    worker.on('exit', (code, signal) => {
      if (!this.slots.has(slot)) return; // retired on purpose
      this.slots.delete(slot);
      this.opts.onLog?.('error', 'read worker exited; starting another', { code, signal });
      if (slot.job !== undefined) {
        clearTimeout(slot.job.timer);
        slot.job.reject(new Error('read worker exited during the query'));
      }
      if (!this.closed) setTimeout(() => this.spawn(), 100).unref();
    });
  }

  /** Kills a slot's worker and (unless told not to) starts a replacement. */
  private retire(slot: Slot, replace = true): void {
    if (!this.slots.delete(slot)) return;
    slot.worker.kill('SIGKILL');
    if (replace) this.spawn();
  }

  /** Workers keep the process alive only while calls are queued or running. */
  private updateHold(): void {
    const waiting = this.queue.length > 0;
    for (const slot of this.slots) hold(slot.worker, waiting || slot.job !== undefined);
  }

  private expire(job: Job): void {
    const slot = job.slot;
    if (slot === undefined) {
      const i = this.queue.indexOf(job);
      if (i >= 0) this.queue.splice(i, 1);
      job.reject(new QueryTimeoutError(`query ${job.module}.${job.query} waited ${job.timeoutMs} ms for a free read worker`));
      this.updateHold();
      return;
    }
    if (slot.job !== job) return;
    slot.job = undefined;
    job.reject(new QueryTimeoutError(`query ${job.module}.${job.query} exceeded its time limit of ${job.timeoutMs} ms`));
    this.opts.onLog?.('warn', 'query exceeded its time limit; its read worker is recycled', { query: `${job.module}.${job.query}`, timeoutMs: job.timeoutMs });
    this.retire(slot);
    this.updateHold();
  }

  private dispatch(): void {
    if (this.queue.length === 0) return;
    for (const slot of this.slots) {
      if (!slot.ready || slot.job !== undefined) continue;
      const job = this.queue.shift();
      if (job === undefined) return;
      job.slot = slot;
      slot.job = job;
      const req: ReadWorkerRequest = { id: job.id, module: job.module, query: job.query, args: job.args };
      slot.worker.send(req);
    }
  }

  /** Rejects queued calls and terminates the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) {
      clearTimeout(job.timer);
      job.reject(new Error('read pool closed'));
    }
    const workers = [...this.slots];
    this.slots.clear();
    for (const s of workers) {
      if (s.job !== undefined) {
        clearTimeout(s.job.timer);
        s.job.reject(new Error('read pool closed'));
      }
    }
    await Promise.all(
      workers.map((s) => {
        if (s.worker.exitCode !== null || s.worker.signalCode !== null) return undefined;
        const exited = new Promise((r) => s.worker.once('exit', r));
        s.worker.ref(); // so that waiting for its exit keeps the process alive
        s.worker.kill('SIGKILL');
        return exited;
      }),
    );
  }
}
