// SQLite implementation of the EventStore (store.ts). Writes go to one writer worker thread that
// owns its own connection (writer-worker.ts); reads go to the shared read pool (src/db/read-pool.ts),
// whose workers load this domain's query module (read-queries.ts). The main thread writes each
// batch once, as columns, into shared memory the writer reads (batch-slab.ts).
import type { Worker } from 'node:worker_threads';
import { dataBytesBound, SlabPool, type SlabShared } from './batch-slab.js';
import { moduleBeside, spawnModuleWorker } from '../db/worker-spawn.js';
import type { ReadPool } from '../db/read-pool.js';
import type { EventListQuery, EventPage, EventStats, EventStatsQuery } from './queries.js';
import { EVENT_QUERY_MODULE } from './read-queries.js';
import type { SideIndexOptions } from './side-index.js';
import type { EventStore, EventStoreObserver, NewEvent, RetentionStep } from './store.js';
import type { EventJson } from './types.js';

/** @internal worker protocol */
export interface WriterWorkerData {
  dbPath: string;
  batchHooks: { url: string; options?: unknown }[];
  busyTimeoutMs: number;
  /** A WalCheckpointer copies the WAL back: the writer's commits never checkpoint. */
  walCheckpointer: boolean;
  /** Tests only: catch-up thresholds of the side index (side-index.ts). */
  sideIndex?: Omit<SideIndexOptions, 'onFailure'>;
}
/**
 * @internal one batch, in a slab of shared memory (batch-slab.ts): `slab` describes it the first
 * time a writer thread sees it, later only its id is sent. The four name columns (node, pot id, pot
 * type, event type: a handful of distinct values) are numbers into the writer's string table:
 * `names` holds the strings it has not seen yet, appended in order (after clearing the table when
 * `resetNames`). `retired`: slabs the writer may forget.
 */
export interface AppendRequest {
  type: 'append';
  seq: number;
  resetNames: boolean;
  names: string[];
  count: number;
  slabId: number;
  slab?: SlabShared;
  retired: number[];
}
/** @internal */
export type WriterRequest = AppendRequest | ({ type: 'retention'; seq: number } & RetentionStep) | { type: 'close'; seq: number };
/** @internal */
export type WriterReply =
  | { type: 'ready' | 'closed'; seq: number }
  | { type: 'startFailed'; seq: number; error: string }
  | { type: 'appended'; seq: number; ids: Float64Array; seconds: number; hookFailures: { hook: string; error: string }[] }
  | { type: 'retained'; seq: number; age: number; rows: number }
  | { type: 'failed'; seq: number; error: string };

export interface SqliteEventStoreOptions {
  /** The SQLite file, already migrated by the main connection (openDatabase). */
  dbPath: string;
  /** Read workers; they must have loaded the events query module (eventQueryModules()). */
  readPool: ReadPool;
  /** How long a commit waits for another process's write lock before it fails (and is retried). Default 5000. */
  busyTimeoutMs?: number;
  /**
   * Batch hook modules run by the writer inside each batch transaction (see store.ts), each with
   * plain-data options handed to its init().
   */
  batchHooks?: readonly (string | URL | { url: string | URL; options?: unknown })[];
  /** True when a WalCheckpointer (src/db) runs on this file: the writer's commits then never checkpoint. */
  walCheckpointer?: boolean;
  /** @internal tests: catch-up thresholds of the side index tables (side-index.ts). */
  sideIndex?: Omit<SideIndexOptions, 'onFailure'>;
}

/** Read-pool modules the SQLite event store needs: pass them to the ReadPool's `modules`. */
export function eventQueryModules(): Record<string, URL> {
  return { [EVENT_QUERY_MODULE]: moduleBeside(import.meta.url, 'read-queries') };
}

const WRITER_URL = moduleBeside(import.meta.url, 'writer-worker');
/** Names in the writer's string table before it is started over (node-supplied values are unbounded). */
const MAX_NAMES = 50_000;

interface Waiter {
  resolve(v: WriterReply): void;
  reject(e: Error): void;
}

export class SqliteEventStore implements EventStore {
  private worker!: Worker;
  private readonly waiters = new Map<number, Waiter>();
  private seq = 1;
  private closed = false;
  private readonly workerData: WriterWorkerData;
  private observer: EventStoreObserver | undefined;
  private restartDelayMs = 500;
  private workerAlive = false;
  /** The current writer thread's string table (see AppendRequest), as index by string. */
  private names = new Map<string, number>();
  private namesReset = true;
  private readonly slabs = new SlabPool();
  /** Slabs the current writer thread has mapped (a restarted thread has none). */
  private slabsMapped = new Set<number>();

  constructor(private readonly opts: SqliteEventStoreOptions) {
    this.workerData = {
      dbPath: opts.dbPath,
      batchHooks: (opts.batchHooks ?? []).map((h) => {
        const ref = typeof h === 'string' || h instanceof URL ? { url: h } : h;
        return { url: typeof ref.url === 'string' ? ref.url : ref.url.href, options: ref.options };
      }),
      busyTimeoutMs: Math.max(0, opts.busyTimeoutMs ?? 5000),
      walCheckpointer: opts.walCheckpointer === true,
      ...(opts.sideIndex !== undefined ? { sideIndex: opts.sideIndex } : {}),
    };
    this.startWorker();
  }

  observe(observer: EventStoreObserver): void {
    this.observer = observer;
  }

  private startWorker(): void {
    const worker = spawnModuleWorker(WRITER_URL, { workerData: this.workerData });
    this.worker = worker;
    this.workerAlive = true;
    this.names = new Map();
    this.namesReset = true;
    this.slabsMapped = new Set();
    // The thread keeps the process alive only while a request is in flight.
    worker.unref();
    worker.on('message', (m: WriterReply) => {
      if (m.type === 'ready') {
        this.restartDelayMs = 500;
        return;
      }
      if (m.type === 'startFailed') {
        this.observer?.writerError(`event writer failed to start: ${m.error}`);
        return; // its exit follows
      }
      if (m.type === 'appended') {
        this.observer?.commitSeconds(m.seconds);
        for (const f of m.hookFailures) this.observer?.hookFailed(f.hook, f.error);
      }
      const w = this.waiters.get(m.seq);
      if (w === undefined) return;
      this.waiters.delete(m.seq);
      if (this.waiters.size === 0) worker.unref();
      w.resolve(m);
    });
    worker.on('error', (err) => this.observer?.writerError(err.message));
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.workerAlive = false;
      // Whatever was in flight has an unknown fate only if the thread died mid-commit; it is reported
      // failed and retried by the caller.
      const pending = [...this.waiters.values()];
      this.waiters.clear();
      for (const w of pending) w.reject(new Error('event writer thread exited'));
      if (!this.closed) {
        this.observer?.writerError('event writer thread exited; restarting it');
        // Backs off while it keeps failing (e.g. a batch hook module that does not load).
        setTimeout(() => {
          if (!this.closed) this.startWorker();
        }, this.restartDelayMs).unref();
        this.restartDelayMs = Math.min(30_000, this.restartDelayMs * 2);
      }
    });
  }

  private request(msg: WriterRequest, transfer: ArrayBuffer[] = []): Promise<WriterReply> {
    if (this.closed && msg.type !== 'close') return Promise.reject(new Error('event store closed'));
    // Between a writer's death and its restart requests fail at once (the caller retries later).
    if (!this.workerAlive) return Promise.reject(new Error('event writer thread is restarting'));
    return new Promise<WriterReply>((resolve, reject) => {
      if (this.waiters.size === 0) this.worker.ref();
      this.waiters.set(msg.seq, { resolve, reject });
      this.worker.postMessage(msg, transfer);
    });
  }

  async append(batch: readonly NewEvent[]): Promise<ArrayLike<number>> {
    const n = batch.length;
    if (this.names.size + 4 * n > MAX_NAMES) {
      this.names = new Map();
      this.namesReset = true;
    }
    const names = this.names;
    const reset = this.namesReset;
    const added: string[] = [];
    const nameId = (v: string): number => {
      let id = names.get(v);
      if (id === undefined) {
        id = names.size;
        names.set(v, id);
        added.push(v);
      }
      return id;
    };
    let lengthSum = 0;
    for (let i = 0; i < n; i++) lengthSum += batch[i]!.dataJson.length;
    const slab = this.slabs.take(n, dataBytesBound(lengthSum, () => batch.reduce((t, e) => t + Buffer.byteLength(e.dataJson), 0)));
    this.namesReset = false;
    const ids = slab.nameIds;
    const bytes = slab.bytes;
    let at = 0;
    // A node's events arrive together (a socket read's worth), so each name is mostly the previous
    // event's: compared, not looked up (hashing every freshly parsed string showed in profiles).
    let node: string | undefined, potId: string | undefined, potType: string | undefined, eventType: string | undefined;
    let nodeId = 0, potIdId = 0, potTypeId = 0, eventTypeId = 0;
    for (let i = 0; i < n; i++) {
      const e = batch[i]!;
      if (e.node !== node) nodeId = nameId((node = e.node));
      if (e.potId !== potId) potIdId = nameId((potId = e.potId));
      if (e.potType !== potType) potTypeId = nameId((potType = e.potType));
      if (e.eventType !== eventType) eventTypeId = nameId((eventType = e.eventType));
      ids[4 * i] = nodeId;
      ids[4 * i + 1] = potIdId;
      ids[4 * i + 2] = potTypeId;
      ids[4 * i + 3] = eventTypeId;
      slab.timestamp[i] = e.timestamp;
      slab.receivedAt[i] = e.receivedAt;
      slab.offsets[i] = at;
      at += bytes.write(e.dataJson, at, 'utf8');
      slab.fromStatus[i] = e.fromStatus ? 1 : 0;
    }
    slab.offsets[n] = at;
    const msg: AppendRequest = {
      type: 'append',
      seq: this.seq++,
      resetNames: reset,
      names: added,
      count: n,
      slabId: slab.shared.id,
      retired: this.slabs.takeRetired(),
    };
    if (!this.slabsMapped.has(slab.shared.id)) {
      msg.slab = slab.shared;
      this.slabsMapped.add(slab.shared.id);
    }
    for (const id of msg.retired) this.slabsMapped.delete(id);
    let reply: WriterReply;
    try {
      reply = await this.request(msg);
    } finally {
      this.slabs.give(slab);
    }
    if (reply.type === 'failed') throw new Error(reply.error);
    if (reply.type !== 'appended') throw new Error(`unexpected writer reply ${reply.type}`);
    return reply.ids;
  }

  async retentionStep(step: RetentionStep): Promise<{ age: number; rows: number }> {
    const reply = await this.request({ type: 'retention', seq: this.seq++, ...step });
    if (reply.type === 'failed') throw new Error(reply.error);
    if (reply.type !== 'retained') throw new Error(`unexpected writer reply ${reply.type}`);
    return { age: reply.age, rows: reply.rows };
  }

  list(query: EventListQuery): Promise<EventPage> {
    return this.opts.readPool.run(EVENT_QUERY_MODULE, 'list', query);
  }

  get(id: number): Promise<EventJson | undefined> {
    return this.opts.readPool.run(EVENT_QUERY_MODULE, 'get', { id });
  }

  stats(query: EventStatsQuery & { since: number; until: number }): Promise<EventStats> {
    return this.opts.readPool.run(EVENT_QUERY_MODULE, 'stats', query);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const worker = this.worker;
    // Requests are handled in order: 'closed' arrives after every append sent before it.
    const done = this.request({ type: 'close', seq: this.seq++ }).catch(() => undefined);
    const timeout = new Promise((r) => setTimeout(r, 10_000).unref());
    await Promise.race([done, timeout]);
    await worker.terminate().catch(() => undefined);
  }
}
