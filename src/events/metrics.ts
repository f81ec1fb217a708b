import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Label children are cached per value: prom-client hashes label sets on every `labels()` call. */
class LabelledCounter {
  private readonly children = new Map<string, Counter.Internal>();
  constructor(private readonly counter: Counter<string>) {}
  child(value: string): Counter.Internal {
    let c = this.children.get(value);
    if (c === undefined) {
      c = this.counter.labels(value);
      // Label values come from nodes; cap the cache so a node inventing pot types cannot grow it forever.
      if (this.children.size < 10_000) this.children.set(value, c);
    }
    return c;
  }
}

/**
 * Per-event counter on the ingest hot path: counts accumulate in a plain Map and reach the
 * prom-client counter when the registry is scraped (collect), not one label lookup per event.
 */
class DeferredLabelledCounter {
  private readonly counts = new Map<string, number>();
  private readonly target: LabelledCounter;
  constructor(counter: Counter<string>) {
    this.target = new LabelledCounter(counter);
  }
  inc(value: string): void {
    this.counts.set(value, (this.counts.get(value) ?? 0) + 1);
  }
  apply(): void {
    for (const [value, n] of this.counts) this.target.child(value).inc(n);
    this.counts.clear();
  }
}

export interface EventMetrics {
  received: DeferredLabelledCounter;
  stored: Counter<string>;
  published: DeferredLabelledCounter;
  batchSize: Histogram<string>;
  commitSeconds: Histogram<string>;
  commitFailures: Counter<string>;
  retentionDeleted: LabelledCounter;
  cowrieEmitted: LabelledCounter;
  cowrieOpen: Gauge<string>;
  streamClients: Gauge<string>;
  streamDropped: Counter<string>;
  streamDisconnected: LabelledCounter;
  dropped: LabelledCounter;
  invalidTimestamp: LabelledCounter;
  cowrieText: LabelledCounter;
  pending: Gauge<string>;
  saturated: Gauge<string>;
  hookFailures: Counter<string>;
}

export function createEventMetrics(registry: Registry): EventMetrics {
  const registers = [registry];
  const received: DeferredLabelledCounter = new DeferredLabelledCounter(
    new Counter({
      name: 'apiary_events_received_total',
      help: 'Attack events received from nodes (PotEvent and event-shaped PotStatusUpdate), by pot type (types not configured or installed count as other)',
      labelNames: ['pot_type'],
      registers,
      collect() {
        received.apply();
      },
    }),
  );
  const published: DeferredLabelledCounter = new DeferredLabelledCounter(
    new Counter({
      name: 'apiary_events_published_total',
      help: 'Messages republished on the in-process hpfeeds broker, by channel (channels of unknown pot types count as other)',
      labelNames: ['channel'],
      registers,
      collect() {
        published.apply();
      },
    }),
  );
  return {
    received,
    stored: new Counter({
      name: 'apiary_events_stored_total',
      help: 'Attack events committed to SQLite (accepted)',
      registers,
    }),
    published,
    batchSize: new Histogram({
      name: 'apiary_event_batch_size',
      help: 'Events per SQLite write transaction',
      buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000],
      registers,
    }),
    commitSeconds: new Histogram({
      name: 'apiary_event_commit_seconds',
      help: 'Duration of one event batch transaction (insert + commit)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    commitFailures: new Counter({
      name: 'apiary_event_commit_failures_total',
      help: 'Event batch transactions that failed and will be retried',
      registers,
    }),
    retentionDeleted: new LabelledCounter(
      new Counter({
        name: 'apiary_events_retention_deleted_total',
        help: 'Events deleted by retention, by reason (age, rows)',
        labelNames: ['reason'],
        registers,
      }),
    ),
    cowrieEmitted: new LabelledCounter(
      new Counter({
        name: 'apiary_cowrie_sessions_emitted_total',
        help: 'cowrie.sessions summaries published, by trigger (closed, idle, evicted, shutdown)',
        labelNames: ['reason'],
        registers,
      }),
    ),
    cowrieOpen: new Gauge({
      name: 'apiary_cowrie_sessions_open',
      help: 'cowrie sessions being aggregated',
      registers,
    }),
    streamClients: new Gauge({
      name: 'apiary_event_stream_clients',
      help: 'Connected live event stream (WebSocket) clients',
      registers,
    }),
    streamDropped: new Counter({
      name: 'apiary_event_stream_dropped_total',
      help: 'Events not sent to a live stream client because its send buffer was full',
      registers,
    }),
    streamDisconnected: new LabelledCounter(
      new Counter({
        name: 'apiary_event_stream_disconnected_total',
        help: 'Live stream clients closed by the core, by reason (slow, full, shutdown)',
        labelNames: ['reason'],
        registers,
      }),
    ),
    dropped: new LabelledCounter(
      new Counter({
        name: 'apiary_events_dropped_total',
        help: 'Attack events or messages dropped, by reason (invalid, backlog, publish_error, payload_too_large, channel_name; cowrie_state_error: a slice of cowrie events the shared session state did not take)',
        labelNames: ['reason'],
        registers,
      }),
    ),
    invalidTimestamp: new LabelledCounter(
      new Counter({
        name: 'apiary_events_invalid_timestamp_total',
        help: 'PotEvents whose timestamp was not ISO 8601; stored with the receive time instead (by pot type, unknown ones as other)',
        labelNames: ['pot_type'],
        registers,
      }),
    ),
    cowrieText: new LabelledCounter(
      new Counter({
        name: 'apiary_events_cowrie_text_total',
        help: "The real node's cowrie text lines, by outcome: parsed, unparsed (no cowrie format matched) or no_message; all are stored",
        labelNames: ['outcome'],
        registers,
      }),
    ),
    pending: new Gauge({
      name: 'apiary_events_pending',
      help: 'Events received but not yet committed',
      registers,
    }),
    saturated: new Gauge({
      name: 'apiary_events_ingest_saturated',
      help: '1 while the event queue is above its high-water mark and node sockets are not read (back-pressure)',
      registers,
    }),
    hookFailures: new Counter({
      name: 'apiary_event_hook_failures_total',
      help: 'Batch hook runs that threw (their writes were rolled back; the events were committed)',
      registers,
    }),
  };
}
