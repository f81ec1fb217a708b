// Committed events out to their audiences on this core: the in-process hpfeeds broker (the pot
// type's channels, apiary.events, the classic dionaea channels) and the live stream clients. Used
// for the events this core commits and, with several cores, for those another core committed.
import type { FastifyBaseLogger } from 'fastify';
import { dionaeaChannelFor, type ResolvedChannels } from './channels.js';
import type { CowrieSessionSummary } from './cowrie.js';
import { EventPayloadWriter } from './event-payload.js';
import type { EventLabels } from './labels.js';
import type { LogThrottle } from './log-throttle.js';
import type { EventMetrics } from './metrics.js';
import type { StoredRow } from './store.js';
import type { EventStreamHub, StreamEvent } from './stream.js';
import type { EventPublisher } from './types.js';

/** hpfeeds payloads are capped at 1 MiB by brokers (ours and the reference). */
const MAX_PAYLOAD_BYTES = 1024 * 1024;

/** What republishing reads of a committed event: its row (data as stored, not parsed). */
export type RepublishableEvent = StoredRow;

export interface RepublisherOptions {
  publisher: EventPublisher | undefined;
  hub: EventStreamHub;
  channels: ResolvedChannels;
  channelsFor: (potType: string) => readonly string[];
  metrics: EventMetrics;
  labels: EventLabels;
  throttle: LogThrottle;
  logger: FastifyBaseLogger;
}

export class Republisher {
  private readonly payloads = new EventPayloadWriter();

  constructor(private readonly o: RepublisherOptions) {}

  /** One committed slice to hpfeeds and the live streams. */
  events(batch: readonly RepublishableEvent[], now: number): void {
    const streaming = this.o.hub.size > 0;
    const publisher = this.o.publisher;
    if (publisher === undefined && !streaming) return;
    const streamEvents: StreamEvent[] | undefined = streaming ? [] : undefined;
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      const payload = this.payloads.write(e);
      if (streamEvents !== undefined) {
        const json = payload.toString('utf8');
        streamEvents.push({ node: e.node, potId: e.potId, potType: e.potType, eventType: e.eventType, timestamp: e.timestamp, json });
      }
      if (publisher !== undefined) {
        if (payload.length > MAX_PAYLOAD_BYTES) {
          this.o.metrics.dropped.child('payload_too_large').inc();
        } else {
          const channels = this.o.channelsFor(e.potType);
          for (let c = 0; c < channels.length; c++) this.publish(e.node, channels[c]!, payload);
        }
        if (!e.fromStatus) {
          const classic = dionaeaChannelFor(this.o.channels, e.potType, e.eventType);
          if (classic !== undefined && !this.tooLarge(e.dataJson)) this.publish(e.node, classic, e.dataJson);
        }
      }
    }
    if (streamEvents !== undefined) this.o.hub.dispatch(streamEvents, now);
  }

  /** A cowrie.sessions summary; returns the JSON published, undefined when nothing was. */
  session(node: string, channel: string, summary: CowrieSessionSummary): string | undefined {
    if (this.o.publisher === undefined) return undefined;
    const json = JSON.stringify(summary);
    if (this.tooLarge(json)) {
      this.o.metrics.dropped.child('payload_too_large').inc();
      return undefined;
    }
    this.publish(node, channel, json);
    return json;
  }

  private publish(ident: string, channel: string, payload: Uint8Array | string): void {
    try {
      this.o.publisher!.publish(ident, channel, payload);
      this.o.metrics.published.inc(this.o.labels.channel(channel));
    } catch (err) {
      this.o.metrics.dropped.child('publish_error').inc();
      const suppressed = this.o.throttle.allow('publish:' + channel, Date.now());
      if (suppressed !== false) this.o.logger.error({ err, channel, ident, suppressed }, 'hpfeeds republish failed');
    }
  }

  private tooLarge(payload: string): boolean {
    // A UTF-16 code unit encodes to at most 3 UTF-8 bytes: only long strings need measuring.
    return payload.length * 3 > MAX_PAYLOAD_BYTES && Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES;
  }
}
