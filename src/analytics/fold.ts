// Where the analytics ingest folds the writer's batches into counter increments (aggregate.ts):
//   - InThreadFolder: in the events writer thread itself (tests, tools);
//   - WorkerFolder: in a thread of its own (fold-worker.ts), which the writer feeds each committed
//     batch's columns as they are (strings and numbers, no re-encoding) and asks, about once per
//     flush interval, for what was folded. The writer then only writes the increments. On 2 cores
//     this takes the JSON parse, normalisation, geo lookup and fold (about half the analytics
//     cost) off the writer thread, which commits the events.
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { moduleBeside, spawnModuleWorker } from '../db/index.js';
import { aggregateBatch, emptyAggregate, type AggregateContext, type AttackerDelta, type BatchAggregate } from './aggregate.js';
import type { AnalyticsSettings } from './ingest.js';
import type { StoredEvent } from './record.js';

export interface Folder {
  /** Folds a batch in; `key` (a noted batch's first event id) joins the aggregate's `batches` once folded. */
  add(batch: readonly StoredEvent[], key?: number): void;
  /** Asks for everything folded so far; the answer comes out of poll() (or drain()). */
  request(): void;
  /** Answers to earlier requests that are ready, without waiting. Throws if folding failed. */
  poll(): BatchAggregate[];
  /** Everything folded so far, waiting for it: the answers still due, then the rest. */
  drain(): BatchAggregate[];
  /** Requests not answered yet. */
  readonly outstanding: number;
}

export class InThreadFolder implements Folder {
  private pending = emptyAggregate();
  private ready: BatchAggregate[] = [];
  readonly outstanding = 0;
  constructor(private readonly ctx: AggregateContext) {}

  add(batch: readonly StoredEvent[], key?: number): void {
    aggregateBatch(batch, this.ctx, this.pending);
    if (key !== undefined) this.pending.batches.push(key);
  }

  request(): void {
    this.ready.push(this.pending);
    this.pending = emptyAggregate();
  }

  poll(): BatchAggregate[] {
    const r = this.ready;
    this.ready = [];
    return r;
  }

  drain(): BatchAggregate[] {
    this.request();
    return this.poll();
  }
}

export type FoldRequest =
  | { type: 'batch'; key?: number; ids: number[]; node: string[]; potId: string[]; potType: string[]; eventType: string[]; timestamp: number[]; dataJson: string[] }
  | { type: 'take' };

/** A BatchAggregate as sent between threads: without the lookup indexes only the fold uses. */
export function toWire(agg: BatchAggregate): BatchAggregate {
  const attackers = new Map<string, AttackerDelta>();
  for (const [ip, a] of agg.attackers) attackers.set(ip, { ...a, factIndex: [] });
  return { ...agg, scopes: new Map(), attackers };
}

/** How long a take may wait for the fold thread (it starts by loading the geo databases). */
const TAKE_TIMEOUT_MS = 60_000;

export class WorkerFolder implements Folder {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly answered = new Int32Array(new SharedArrayBuffer(4));
  private readonly ready = new Int32Array(new SharedArrayBuffer(4));
  private requested = 0;
  /** Answers read by poll(): an answer sent but not read yet is still outstanding (not written). */
  private received = 0;

  constructor(settings: AnalyticsSettings) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = spawnModuleWorker(moduleBeside(import.meta.url, 'fold-worker'), {
      workerData: { settings, port: port2, signal: this.answered.buffer, ready: this.ready.buffer },
      transferList: [port2],
    });
    // A fold thread that dies is noticed by the next drain() (it times out and the hook fails); its
    // error must not take the writer thread down with it.
    this.worker.on('error', () => undefined);
    // Ends with the writer thread; never keeps it alive.
    this.worker.unref();
    this.port.unref();
    // Started before the writer takes batches, like an in-thread fold: its geo databases are loaded
    // (and their memory taken) at start, not under the first batches.
    if (Atomics.wait(this.ready, 0, 0, TAKE_TIMEOUT_MS) === 'timed-out') throw new Error('analytics fold thread did not start');
    if (Atomics.load(this.ready, 0) !== 1) {
      const m = receiveMessageOnPort(this.port)?.message as { startError?: string } | undefined;
      throw new Error(`analytics fold thread failed to start: ${m?.startError ?? 'unknown error'}`);
    }
  }

  add(batch: readonly StoredEvent[], key?: number): void {
    const n = batch.length;
    const m = { type: 'batch' as const, key, ids: new Array<number>(n), node: new Array<string>(n), potId: new Array<string>(n), potType: new Array<string>(n), eventType: new Array<string>(n), timestamp: new Array<number>(n), dataJson: new Array<string>(n) };
    for (let i = 0; i < n; i++) {
      const e = batch[i]! as StoredEvent & { dataJson?: string };
      m.ids[i] = e.id;
      m.node[i] = e.node;
      m.potId[i] = e.potId;
      m.potType[i] = e.potType;
      m.eventType[i] = e.eventType;
      m.timestamp[i] = e.timestamp;
      // The writer's events carry their stored JSON text: passed on as is, parsed over there.
      m.dataJson[i] = e.dataJson ?? JSON.stringify(e.data);
    }
    this.port.postMessage(m satisfies FoldRequest);
  }

  get outstanding(): number {
    return this.requested - this.received;
  }

  request(): void {
    this.requested++;
    this.port.postMessage({ type: 'take' } satisfies FoldRequest);
  }

  poll(): BatchAggregate[] {
    const out: BatchAggregate[] = [];
    for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
      const msg = m.message as { agg: BatchAggregate; errors: string[] };
      this.received++;
      if (msg.errors.length > 0) throw new Error(`analytics fold failed: ${msg.errors[0]}`);
      out.push(msg.agg);
    }
    return out;
  }

  drain(): BatchAggregate[] {
    this.request();
    const deadline = Date.now() + TAKE_TIMEOUT_MS;
    for (;;) {
      const got = Atomics.load(this.answered, 0);
      if (got >= this.requested) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        // Forget the requests: their answers, if they ever come, are read by the next poll.
        this.requested = got;
        throw new Error('analytics fold thread did not answer');
      }
      Atomics.wait(this.answered, 0, got, left);
    }
    return this.poll();
  }
}
