// The send side of one connection: what is queued for the peer, back-pressure marks and the
// deadline of a subscriber that does not keep up.
//
// Accounting. A subscriber's backlog is what was offered to it in this turn plus what was handed
// to its socket and not yet confirmed written (write callbacks). Past the high-water mark it is
// "congested": external publishers feeding it are paused (TCP back-pressure) and a deadline
// timer runs; back at or under the low-water mark they resume. Only what exceeds the hard cap
// (in-process publishes never wait) or the global budget is dropped, and every drop is counted.
import type { Socket } from 'node:net';
import type { BrokerMetrics } from './metrics.js';
import { chunkCopy, type ChannelRoute, type TickBuffer } from './route.js';
import type { HpfeedsLogger } from './types.js';

export interface SendLimits {
  /** Backlog past which a subscriber is congested (publishers feeding it pause; deadline starts). */
  highWaterBytes: number;
  /** Backlog at or under which a congested subscriber has recovered. */
  lowWaterBytes: number;
  /** Hard per-subscriber cap: beyond it messages for that subscriber are dropped. */
  maxSendBufferBytes: number;
  /** Global budget of queued bytes; past it congested subscribers lose messages. */
  maxQueuedBytes: number;
  backpressureDeadlineMs: number;
}

/** What a queue needs from its broker. */
export interface SendHost {
  readonly logger: HpfeedsLogger;
  readonly metrics: BrokerMetrics;
  readonly sendLimits: SendLimits;
  /** Bytes held by all queues (tick buffers counted once). */
  readonly queuedBytes: number;
  reserveQueued(bytes: number): void;
  releaseQueued(bytes: number): void;
  /** Every write of `tick` has completed: its bytes leave the budget, its pieces may be reused. */
  releaseTick(tick: TickBuffer): void;
}

/** A connection paused because of a congested subscriber. */
export interface PausedPublisher {
  releaseBackpressure(): void;
}

/** What a queue needs from its connection. */
export interface SendOwner {
  readonly socket: Socket;
  readonly ident: string;
  readonly peer: string;
  readonly identLabels: { ident: string };
  /** The subscriber stayed congested past the deadline. */
  deadlineExpired(dropped: number): void;
}

export const OFFER_OK = 0;
export const OFFER_CONGESTED = 1;
export const OFFER_DROPPED = 2;
export type OfferResult = typeof OFFER_OK | typeof OFFER_CONGESTED | typeof OFFER_DROPPED;

type AnyRoute = ChannelRoute<unknown>;

/** Pushes views of bytes [start, start + length) of a chunk list onto `out` (no copy). */
function sliceChunks(out: Buffer[], chunks: readonly Buffer[], start: number, length: number): void {
  let i = 0;
  while (start >= chunks[i].length) start -= chunks[i++].length;
  while (length > 0) {
    const c = chunks[i++];
    const take = Math.min(c.length - start, length);
    out.push(start === 0 && take === c.length ? c : c.subarray(start, start + take));
    length -= take;
    start = 0;
  }
}

const LOG_INTERVAL_MS = 30_000;

export class SendQueue {
  /** Segments offered in this turn: consecutive frames of one route's turn form one segment. */
  private readonly segRoutes: AnyRoute[] = [];
  private readonly segStarts: number[] = [];
  private readonly segLengths: number[] = [];
  pendingBytes = 0;
  /** Scratch lists of the flush (reused, so a flush allocates nothing of its own). */
  private readonly parts: Buffer[] = [];
  private readonly sources: Buffer[] = [];

  /** Writes handed to the socket, oldest first, until their callback. */
  private readonly flightBytes: number[] = [];
  private readonly flightTicks: Array<TickBuffer | null> = [];
  private flightHead = 0;
  inflightBytes = 0;
  /** Bytes handed to the socket since the connection opened (exported on scrape). */
  sentBytes = 0;
  reportedSentBytes = 0;

  congested = false;
  private droppedWhileCongested = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<PausedPublisher>();
  private discarded = false;
  /** Congestion episodes are normal in bursts: one warning per LOG_INTERVAL_MS per connection. */
  private lastWarnAt = -Infinity;
  private episodesSinceWarn = 0;

  constructor(
    private readonly host: SendHost,
    private readonly owner: SendOwner,
  ) {}

  get backlog(): number {
    return this.pendingBytes + this.inflightBytes;
  }

  get hasPending(): boolean {
    return this.segLengths.length > 0;
  }

  /**
   * Offers `length` bytes at `start` of `route`'s current turn. Hot path: no allocation unless a
   * new segment starts. Returns whether it was queued, queued past the high-water mark, or dropped.
   * `isFirst` tells the caller to schedule a flush.
   */
  offer(route: AnyRoute, start: number, length: number): OfferResult {
    const limits = this.host.sendLimits;
    const backlog = this.pendingBytes + this.inflightBytes;
    if (
      backlog > 0 &&
      (backlog + length > limits.maxSendBufferBytes || (this.congested && this.host.queuedBytes + length > limits.maxQueuedBytes))
    ) {
      this.drop();
      return OFFER_DROPPED;
    }
    const n = this.segLengths.length;
    if (n > 0 && this.segRoutes[n - 1] === route && this.segStarts[n - 1] + this.segLengths[n - 1] === start) {
      this.segLengths[n - 1] += length;
    } else {
      this.segRoutes.push(route);
      this.segStarts.push(start);
      this.segLengths.push(length);
    }
    this.pendingBytes += length;
    if (this.congested) return OFFER_CONGESTED;
    if (backlog + length > limits.highWaterBytes) {
      this.becomeCongested();
      return OFFER_CONGESTED;
    }
    return OFFER_OK;
  }

  addWaiter(publisher: PausedPublisher): void {
    this.waiters.add(publisher);
  }

  /** Writes this turn's segments in one socket write (routes are sealed by now). */
  flush(): void {
    const n = this.segLengths.length;
    if (n === 0) return;
    const bytes = this.pendingBytes;
    const socket = this.owner.socket;
    if (this.discarded || socket.writableEnded || socket.destroyed) {
      this.clearSegments();
      return;
    }
    let tick: TickBuffer | null = null;
    const parts = this.parts;
    if (n === 1) {
      tick = this.segRoutes[0].tick!;
      const start = this.segStarts[0];
      if (start === 0 && bytes === tick.size) {
        for (let i = 0; i < tick.chunks.length; i++) parts.push(tick.chunks[i]);
      } else {
        sliceChunks(parts, tick.chunks, start, bytes);
      }
      tick.refs++;
    } else {
      // Frames of several channels interleaved: this subscriber gets its own copy, in order.
      for (let i = 0; i < n; i++) {
        const t = this.segRoutes[i].tick!;
        sliceChunks(this.sources, t.chunks, this.segStarts[i], this.segLengths[i]);
      }
      chunkCopy(parts, this.sources, 0, bytes);
      this.sources.length = 0;
      this.host.reserveQueued(bytes);
    }
    this.clearSegments();
    this.flightBytes.push(bytes);
    this.flightTicks.push(tick);
    this.inflightBytes += bytes;
    this.sentBytes += bytes;
    // One callback per flush, on the last piece: callbacks come in order.
    if (parts.length === 1) {
      socket.write(parts[0], this.onWritten);
    } else {
      socket.cork();
      const last = parts.length - 1;
      for (let i = 0; i < last; i++) socket.write(parts[i]);
      socket.write(parts[last], this.onWritten);
      socket.uncork();
    }
    parts.length = 0;
  }

  private clearSegments(): void {
    this.segRoutes.length = 0;
    this.segStarts.length = 0;
    this.segLengths.length = 0;
    this.pendingBytes = 0;
  }

  /** Write callbacks come in order; each confirms the oldest write in flight. */
  private readonly onWritten = (): void => {
    if (this.discarded || this.flightHead >= this.flightBytes.length) return;
    this.completeOne();
    if (this.flightHead > 1024 && this.flightHead * 2 > this.flightBytes.length) {
      this.flightBytes.splice(0, this.flightHead);
      this.flightTicks.splice(0, this.flightHead);
      this.flightHead = 0;
    }
    if (this.congested && this.pendingBytes + this.inflightBytes <= this.host.sendLimits.lowWaterBytes) this.recovered();
  };

  private completeOne(): void {
    const i = this.flightHead++;
    const bytes = this.flightBytes[i];
    const tick = this.flightTicks[i];
    this.flightTicks[i] = null;
    this.inflightBytes -= bytes;
    if (tick === null) this.host.releaseQueued(bytes);
    else if (--tick.refs === 0 && !tick.open) this.host.releaseTick(tick);
  }

  private drop(): void {
    this.host.metrics.publishDropped.inc(this.owner.identLabels);
    this.droppedWhileCongested++;
  }

  private becomeCongested(): void {
    this.congested = true;
    this.droppedWhileCongested = 0;
    this.host.metrics.deadlineStart.inc(this.owner.identLabels);
    this.episodesSinceWarn++;
    const now = Date.now();
    if (now - this.lastWarnAt >= LOG_INTERVAL_MS) {
      this.host.logger.warn(
        {
          ident: this.owner.ident,
          peer: this.owner.peer,
          backlogBytes: this.backlog,
          deadlineMs: this.host.sendLimits.backpressureDeadlineMs,
          episodesSinceLastLine: this.episodesSinceWarn,
        },
        'hpfeeds subscriber is not keeping up; pausing the publishers that feed it',
      );
      this.lastWarnAt = now;
      this.episodesSinceWarn = 0;
    }
    this.deadlineTimer = setTimeout(this.onDeadline, this.host.sendLimits.backpressureDeadlineMs).unref();
  }

  private recovered(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.congested = false;
    this.host.metrics.deadlineRecover.inc(this.owner.identLabels);
    this.host.logger.debug(
      { ident: this.owner.ident, peer: this.owner.peer, dropped: this.droppedWhileCongested },
      'hpfeeds subscriber caught up',
    );
    this.droppedWhileCongested = 0;
    this.releaseWaiters();
  }

  private releaseWaiters(): void {
    if (this.waiters.size === 0) return;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w.releaseBackpressure();
  }

  private readonly onDeadline = (): void => {
    this.deadlineTimer = undefined;
    if (!this.congested) return;
    if (this.backlog <= this.host.sendLimits.lowWaterBytes) {
      this.recovered();
      return;
    }
    this.owner.deadlineExpired(this.droppedWhileCongested);
  };

  /** The connection is closing: no new data will come; publishers waiting on it go on. */
  stop(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.congested = false;
    this.releaseWaiters();
  }

  /** The socket is gone: what was in flight is released (late callbacks are ignored). */
  discard(): void {
    this.stop();
    this.clearSegments();
    while (this.flightHead < this.flightBytes.length) this.completeOne();
    this.flightBytes.length = 0;
    this.flightTicks.length = 0;
    this.flightHead = 0;
    this.discarded = true;
  }
}
