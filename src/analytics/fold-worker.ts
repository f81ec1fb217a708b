// Entry point of the analytics fold thread (fold.ts, WorkerFolder): it turns the events writer's
// committed batches into counter increments (JSON parse of the data, normalised record, geo/ASN
// lookup, in-memory fold), so the writer thread keeps only the INSERT of the events and, about once
// a second, the write of what was folded. Batches arrive in commit order on the port given in
// workerData; a 'take' request is answered with everything folded since the last one, and the
// shared counter is bumped so the writer, blocked in Atomics.wait, picks the answer up at once.
import { workerData, type MessagePort } from 'node:worker_threads';
import { aggregateBatch, emptyAggregate } from './aggregate.js';
import { createAggregateContext, type AnalyticsSettings } from './ingest.js';
import { parseEventData, type StoredEvent } from './record.js';
import { toWire, type FoldRequest } from './fold.js';

const { settings, port, signal, ready } = workerData as { settings: AnalyticsSettings; port: MessagePort; signal: SharedArrayBuffer; ready: SharedArrayBuffer };
let ctx: ReturnType<typeof createAggregateContext>;
try {
  ctx = createAggregateContext(settings);
} catch (err) {
  // The writer, waiting in its hook's init, fails the hook with this.
  port.postMessage({ startError: err instanceof Error ? err.message : String(err) });
  Atomics.store(new Int32Array(ready), 0, 2);
  Atomics.notify(new Int32Array(ready), 0);
  process.exit(1);
}
// The geo databases are loaded: the writer, waiting in its hook's init, goes on.
Atomics.store(new Int32Array(ready), 0, 1);
Atomics.notify(new Int32Array(ready), 0);
const answered = new Int32Array(signal);
let pending = emptyAggregate();
/** Folding errors since the last take, reported with it (the writer counts them as hook failures). */
let errors: string[] = [];

/** A batch event whose data is parsed on first use, as in the writer. */
class BatchEvent implements StoredEvent {
  private parsed: Record<string, unknown> | undefined;
  constructor(
    readonly id: number,
    readonly node: string,
    readonly potId: string,
    readonly potType: string,
    readonly eventType: string,
    readonly timestamp: number,
    private readonly json: string,
  ) {}
  get data(): Record<string, unknown> {
    return (this.parsed ??= parseEventData(this.json));
  }
}

port.on('message', (m: FoldRequest) => {
  if (m.type === 'batch') {
    const n = m.ids.length;
    const events: StoredEvent[] = new Array(n);
    for (let i = 0; i < n; i++) events[i] = new BatchEvent(m.ids[i]!, m.node[i]!, m.potId[i]!, m.potType[i]!, m.eventType[i]!, m.timestamp[i]!, m.dataJson[i]!);
    try {
      aggregateBatch(events, ctx, pending);
      if (m.key !== undefined) pending.batches.push(m.key);
    } catch (err) {
      // Like a failed in-thread fold: what was pending is dropped, later batches are folded again.
      errors.push(err instanceof Error ? err.message : String(err));
      pending = emptyAggregate();
    }
    return;
  }
  const agg = pending;
  pending = emptyAggregate();
  port.postMessage({ agg: toWire(agg), errors });
  errors = [];
  Atomics.add(answered, 0, 1);
  Atomics.notify(answered, 0);
});
