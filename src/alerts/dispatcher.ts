// Delivery off the hot path: each channel has its own bounded queue worked by one async loop, so a
// slow or dead receiver delays only its own alerts. Failed attempts are retried a bounded number
// of times with doubling delays; the final failure is counted, logged and kept in the channel's
// stats. A full queue drops the new alert (counted, logged): memory stays bounded whatever the
// receivers do.
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { DeliveryError } from './channels/index.js';
import type { Alert, AlertChannel } from './types.js';

export type DeliverFn = (channel: AlertChannel, alert: Alert, timeoutMs: number) => Promise<void>;

export interface DispatcherOptions {
  logger: FastifyBaseLogger;
  registry: Registry;
  deliver: DeliverFn;
  /** The channel as it is now (secrets may have been rotated, the channel deleted). */
  channel: (id: string) => AlertChannel | undefined;
  timeoutMs: number;
  /** Attempts per alert and channel, the first included. */
  maxAttempts: number;
  /** Delay before the first retry; doubled for each next one. */
  retryDelayMs: number;
  /** Alerts waiting per channel; more are dropped. */
  queueMax: number;
}

export interface ChannelStats {
  delivered: number;
  failed: number;
  retries: number;
  dropped: number;
  queued: number;
  lastDeliveredAt: number | null;
  lastFailedAt: number | null;
  lastError: string | null;
}

interface Lane {
  queue: Alert[];
  running: boolean;
  stats: ChannelStats;
}

/** Every secret value of the channel replaced in a message, in case a library quoted one. */
export function scrub(message: string, channel: AlertChannel | undefined): string {
  let out = message;
  for (const v of Object.values(channel?.secrets ?? {})) if (typeof v === 'string' && v.length >= 4) out = out.split(v).join('[masked]');
  return out.slice(0, 500);
}

export class AlertDispatcher {
  private readonly lanes = new Map<string, Lane>();
  private readonly timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private closed = false;
  private readonly deliveries: Counter<'type' | 'outcome'>;
  private readonly depth: Gauge;

  constructor(private readonly opts: DispatcherOptions) {
    this.deliveries = new Counter({
      name: 'apiary_alert_deliveries_total',
      help: 'Alert deliveries per channel type (outcome: delivered | retried | failed | dropped: queue full or channel gone)',
      labelNames: ['type', 'outcome'],
      registers: [opts.registry],
    });
    this.depth = new Gauge({
      name: 'apiary_alert_queue_depth',
      help: 'Alerts waiting for delivery, all channels together',
      registers: [opts.registry],
      collect: () => {
        let n = 0;
        for (const lane of this.lanes.values()) n += lane.queue.length + (lane.running ? 1 : 0);
        this.depth.set(n);
      },
    });
  }

  private lane(channelId: string): Lane {
    let lane = this.lanes.get(channelId);
    if (!lane) {
      lane = { queue: [], running: false, stats: { delivered: 0, failed: 0, retries: 0, dropped: 0, queued: 0, lastDeliveredAt: null, lastFailedAt: null, lastError: null } };
      this.lanes.set(channelId, lane);
    }
    return lane;
  }

  /** Queues an alert for a channel; false when dropped (queue full, closed). Never waits. */
  enqueue(channel: AlertChannel, alert: Alert): boolean {
    const lane = this.lane(channel.id);
    if (this.closed || lane.queue.length >= this.opts.queueMax) {
      lane.stats.dropped++;
      this.deliveries.inc({ type: channel.type, outcome: 'dropped' });
      const why = this.closed ? 'alert dropped: the core is stopping' : 'alert dropped: the channel queue is full';
      this.opts.logger[this.closed ? 'debug' : 'warn']({ channel: channel.id, channelName: channel.name, alert: alert.id, queueMax: this.opts.queueMax }, why);
      return false;
    }
    lane.queue.push(alert);
    lane.stats.queued = lane.queue.length;
    if (!lane.running) void this.run(channel.id, lane);
    return true;
  }

  stats(channelId: string): ChannelStats {
    const s = this.lane(channelId).stats;
    return { ...s, queued: this.lane(channelId).queue.length };
  }

  forget(channelId: string): void {
    const lane = this.lanes.get(channelId);
    if (lane) lane.queue.length = 0;
    this.lanes.delete(channelId);
  }

  /** One attempt, now, outside the queue (the test endpoint). Resolves with the outcome. */
  async sendNow(channel: AlertChannel, alert: Alert): Promise<{ delivered: boolean; error?: string }> {
    try {
      await this.opts.deliver(channel, alert, this.opts.timeoutMs);
      this.deliveries.inc({ type: channel.type, outcome: 'delivered' });
      return { delivered: true };
    } catch (err) {
      this.deliveries.inc({ type: channel.type, outcome: 'failed' });
      const error = scrub((err as Error).message, channel);
      this.opts.logger.warn({ channel: channel.id, channelName: channel.name, type: channel.type, error }, 'test alert not delivered');
      return { delivered: false, error };
    }
  }

  private async run(channelId: string, lane: Lane): Promise<void> {
    lane.running = true;
    try {
      while (lane.queue.length > 0 && !this.closed) {
        const alert = lane.queue.shift()!;
        lane.stats.queued = lane.queue.length;
        await this.deliverWithRetries(channelId, lane, alert);
      }
    } finally {
      lane.running = false;
    }
  }

  private async deliverWithRetries(channelId: string, lane: Lane, alert: Alert): Promise<void> {
    let lastError = '';
    let type = 'unknown';
    for (let attempt = 1; attempt <= this.opts.maxAttempts; attempt++) {
      const channel = this.opts.channel(channelId);
      if (!channel || !channel.enabled) {
        lane.stats.dropped++;
        this.deliveries.inc({ type, outcome: 'dropped' });
        return;
      }
      type = channel.type;
      try {
        await this.opts.deliver(channel, alert, this.opts.timeoutMs);
        lane.stats.delivered++;
        lane.stats.lastDeliveredAt = Date.now();
        this.deliveries.inc({ type, outcome: 'delivered' });
        return;
      } catch (err) {
        lastError = scrub((err as Error).message, channel);
        const retryable = !(err instanceof DeliveryError) || err.retryable;
        if (!retryable || attempt === this.opts.maxAttempts || this.closed) {
          lane.stats.failed++;
          lane.stats.lastFailedAt = Date.now();
          lane.stats.lastError = lastError;
          this.deliveries.inc({ type, outcome: 'failed' });
          this.opts.logger.warn(
            { channel: channelId, channelName: channel.name, type, alert: alert.id, rule: alert.rule.name, attempts: attempt, error: lastError },
            'alert not delivered; giving up on it',
          );
          return;
        }
        lane.stats.retries++;
        this.deliveries.inc({ type, outcome: 'retried' });
        this.opts.logger.info({ channel: channelId, type, alert: alert.id, attempt, error: lastError }, 'alert delivery failed; retrying');
        await this.sleep(this.opts.retryDelayMs * 2 ** (attempt - 1));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.timers.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      entry.timer.unref();
      this.timers.add(entry);
    });
  }

  /** Stops retrying and drops what waits (counted); an attempt under way ends by its timeout. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) {
      clearTimeout(t.timer);
      t.resolve();
    }
    this.timers.clear();
    for (const lane of this.lanes.values()) {
      lane.stats.dropped += lane.queue.length;
      lane.queue.length = 0;
    }
  }
}
