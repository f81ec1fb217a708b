// Prometheus metrics under the reference broker's names (existing dashboards use them), plus
// ours for drops, backpressure disconnects and deliveries.
//
// prom-client hashes the label set on every inc()/observe(), even on a cached child, so counts
// touched per message (publishes, deliveries) are kept in plain numbers and handed to the
// registry only when it is scraped. Per-connection events (connect, auth, errors) and
// per-batch byte counts use prom-client directly.
import { Counter, Gauge, type Metric, type Registry } from 'prom-client';

/** Upper bounds (bytes) of the reference broker's publish size histogram. */
export const PUBLISH_SIZE_BUCKETS: readonly number[] = [
  1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304,
];

/** Publishes received for one (ident, channel): updated per message, exported on scrape. */
export class PublishStats {
  count = 0;
  bytes = 0;
  /** Non-cumulative counts per bucket of PUBLISH_SIZE_BUCKETS; sizes above the last one only count in +Inf. */
  readonly buckets = new Array<number>(PUBLISH_SIZE_BUCKETS.length).fill(0);
  /** `count` already handed to the prom-client counter. */
  reportedCount = 0;
  readonly labels: { ident: string; chan: string };

  constructor(ident: string, channel: string) {
    this.labels = { ident, chan: channel };
  }

  record(size: number): void {
    this.count++;
    this.bytes += size;
    let i = 0;
    while (i < PUBLISH_SIZE_BUCKETS.length && size > PUBLISH_SIZE_BUCKETS[i]) i++;
    if (i < PUBLISH_SIZE_BUCKETS.length) this.buckets[i]++;
  }
}

/** What the metrics read from the broker at scrape time. */
export interface BrokerMetricsSource {
  deliveries(): number;
  publishStats(): Iterable<PublishStats>;
  /** Bytes waiting to be sent / received but not yet parsed, per authenticated connection. */
  connectionBuffers(): Iterable<{ ident: string; send: number; receive: number }>;
  /** Hands bytes written since the last scrape to the send_buffer_fill counter. */
  reportSentBytes(): void;
  /** Bytes held by all subscriber queues now, and the peak since the last scrape. */
  queuedBytes(): { now: number; peak: number };
  /** How many label values were folded into `other` so far, per label. */
  foldedLabels(): { ident: number; chan: number };
  /** Sockets open on the listeners (TLS handshakes included). */
  connectionsOpen(): number;
}

type MetricValue = { labels: Record<string, string | number>; value: number; metricName?: string };

/**
 * A histogram whose data lives in PublishStats. Registered directly on the Registry (which only
 * needs name/help/type/get), so the exposition is the standard `_bucket`/`_sum`/`_count` triple.
 */
class PublishSizeHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames = ['ident', 'chan'];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly source: BrokerMetricsSource,
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    const values: MetricValue[] = [];
    for (const stats of this.source.publishStats()) {
      let cumulative = 0;
      PUBLISH_SIZE_BUCKETS.forEach((le, i) => {
        cumulative += stats.buckets[i];
        values.push({ labels: { ...stats.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...stats.labels, le: '+Inf' }, value: stats.count, metricName: `${this.name}_bucket` });
      values.push({ labels: stats.labels, value: stats.bytes, metricName: `${this.name}_sum` });
      values.push({ labels: stats.labels, value: stats.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {}
}

export class BrokerMetrics {
  readonly clientConnections: Gauge;
  readonly connectionMade: Counter;
  readonly connectionReady: Counter<'ident'>;
  readonly connectionError: Counter<'ident' | 'category'>;
  readonly connectionLost: Counter<'ident'>;
  readonly subscriptions: Gauge<'ident' | 'chan'>;
  readonly sendBufferFill: Counter<'ident'>;
  readonly receiveBufferFill: Counter<'ident'>;
  readonly deadlineStart: Counter<'ident'>;
  readonly deadlineRecover: Counter<'ident'>;
  readonly publishDropped: Counter<'ident'>;
  readonly backpressureDisconnects: Counter;
  readonly publisherPaused: Counter;
  readonly authRateLimited: Counter<'scope'>;
  readonly connectionsRefused: Counter<'reason'>;

  constructor(registry: Registry, source: BrokerMetricsSource) {
    const registers = [registry];
    this.clientConnections = new Gauge({
      name: 'hpfeeds_broker_client_connections',
      help: 'Number of clients connected to broker',
      registers,
    });
    this.connectionMade = new Counter({
      name: 'hpfeeds_broker_connection_made',
      help: 'Number of connections established',
      registers,
    });
    this.connectionReady = new Counter({
      name: 'hpfeeds_broker_connection_ready',
      help: 'Number of connections established + authenticated',
      labelNames: ['ident'],
      registers,
    });
    this.connectionError = new Counter({
      name: 'hpfeeds_broker_connection_error',
      help: 'Number of connections that experienced a protocol error',
      labelNames: ['ident', 'category'],
      registers,
    });
    this.connectionLost = new Counter({
      name: 'hpfeeds_broker_connection_lost',
      help: 'Number of connections lost',
      labelNames: ['ident'],
      registers,
    });
    this.subscriptions = new Gauge({
      name: 'hpfeeds_broker_subscriptions',
      help: 'Number of subscriptions to a channel',
      labelNames: ['ident', 'chan'],
      registers,
    });
    const sendBufferFill: Counter<'ident'> = new Counter({
      name: 'hpfeeds_broker_connection_send_buffer_fill',
      help: 'Number of bytes queued in the send buffer',
      labelNames: ['ident'],
      registers,
      collect() {
        source.reportSentBytes();
      },
    });
    this.sendBufferFill = sendBufferFill;
    this.receiveBufferFill = new Counter({
      name: 'hpfeeds_broker_connection_receive_buffer_fill',
      help: 'Number of bytes queued in the parsing buffer',
      labelNames: ['ident'],
      registers,
    });
    this.deadlineStart = new Counter({
      name: 'hpfeeds_broker_connection_send_buffer_deadline_start',
      help: 'High watermark was exceeded and this connection was put on a deadline timer',
      labelNames: ['ident'],
      registers,
    });
    this.deadlineRecover = new Counter({
      name: 'hpfeeds_broker_connection_send_buffer_deadline_recover',
      help: 'Buffer recovered to low watermark or better and deadline timer was cancelled',
      labelNames: ['ident'],
      registers,
    });
    this.publishDropped = new Counter({
      name: 'hpfeeds_broker_publish_dropped_total',
      help: 'Messages not delivered to a subscriber because its queue was at its hard cap or the global budget was spent (ident = subscriber)',
      labelNames: ['ident'],
      registers,
    });
    this.backpressureDisconnects = new Counter({
      name: 'hpfeeds_broker_backpressure_disconnects_total',
      help: 'Subscribers disconnected because their queue stayed past the high-water mark beyond the deadline',
      registers,
    });
    this.publisherPaused = new Counter({
      name: 'hpfeeds_broker_publisher_paused_total',
      help: 'Times a publishing connection stopped being read because a subscriber it feeds (or all queues together) was past the high-water mark',
      registers,
    });
    this.authRateLimited = new Counter({
      name: 'hpfeeds_broker_auth_rate_limited_total',
      help: 'AUTH attempts refused unchecked because of too many recent failures (scope: address or ident)',
      labelNames: ['scope'],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'hpfeeds_broker_connections_refused_total',
      help: 'Connections closed on accept because a connection cap was reached (reason: global or per-address)',
      labelNames: ['reason'],
      registers,
    });
    const openSockets: Gauge = new Gauge({
      name: 'hpfeeds_broker_open_sockets',
      help: 'Sockets open on the hpfeeds listeners, unauthenticated and mid-handshake included',
      registers,
      collect() {
        openSockets.set(source.connectionsOpen());
      },
    });
    const queued: Gauge<'stat'> = new Gauge({
      name: 'hpfeeds_broker_queued_bytes',
      help: 'Bytes held by all subscriber queues (stat=now, or peak since the previous scrape)',
      labelNames: ['stat'],
      registers,
      collect() {
        const { now, peak } = source.queuedBytes();
        queued.set({ stat: 'now' }, now);
        queued.set({ stat: 'peak' }, peak);
      },
    });
    const folded: Gauge<'label'> = new Gauge({
      name: 'hpfeeds_broker_metric_labels_folded',
      help: 'Label values exported as "other" because the label had reached its bound',
      labelNames: ['label'],
      registers,
      collect() {
        const f = source.foldedLabels();
        folded.set({ label: 'ident' }, f.ident);
        folded.set({ label: 'chan' }, f.chan);
      },
    });

    const sendBufferSize: Gauge<'ident'> = new Gauge({
      name: 'hpfeeds_broker_connection_send_buffer_size',
      help: 'Number of bytes queued for transmission',
      labelNames: ['ident'],
      registers,
      collect() {
        sendBufferSize.reset();
        for (const { ident, send } of source.connectionBuffers()) sendBufferSize.inc({ ident }, send);
      },
    });
    const receiveBufferSize: Gauge<'ident'> = new Gauge({
      name: 'hpfeeds_broker_connection_receive_buffer_size',
      help: 'Number of bytes received but not yet parsed',
      labelNames: ['ident'],
      registers,
      collect() {
        receiveBufferSize.reset();
        for (const { ident, receive } of source.connectionBuffers()) receiveBufferSize.inc({ ident }, receive);
      },
    });

    let reportedDeliveries = 0;
    const deliveries: Counter = new Counter({
      name: 'hpfeeds_broker_deliveries_total',
      help: 'Messages written to subscribers (one publish to N subscribers counts N)',
      registers,
      collect() {
        const total = source.deliveries();
        if (total > reportedDeliveries) deliveries.inc(total - reportedDeliveries);
        reportedDeliveries = total;
      },
    });

    const receivePublishCount: Counter<'ident' | 'chan'> = new Counter({
      name: 'hpfeeds_broker_receive_publish_count',
      help: 'Number of events received by broker for a channel',
      labelNames: ['ident', 'chan'],
      registers,
      collect() {
        for (const stats of source.publishStats()) {
          if (stats.count > stats.reportedCount) receivePublishCount.inc(stats.labels, stats.count - stats.reportedCount);
          stats.reportedCount = stats.count;
        }
      },
    });

    registry.registerMetric(
      new PublishSizeHistogram(
        'hpfeeds_broker_receive_publish_size',
        'Sizes of messages received by broker for a channel',
        source,
      ) as unknown as Metric<string>,
    );
  }
}
