// One client connection of the broker: handshake, authentication, ACL checks, and a bounded,
// batched send path. Routing between connections lives in broker.ts.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  FrameDecoder,
  HpfeedsProtocolError,
  OP_AUTH,
  OP_PUBLISH,
  OP_SUBSCRIBE,
  OP_UNSUBSCRIBE,
  encodeError,
  encodeInfo,
  hashSecret,
  type HpfeedsFrame,
} from './codec.js';
import type { BrokerMetrics, PublishStats } from './metrics.js';
import type { AuthKey, AuthStore, HpfeedsLogger } from './types.js';

/** What a connection needs from its broker. */
export interface ConnectionHost {
  readonly name: string;
  readonly logger: HpfeedsLogger;
  readonly metrics: BrokerMetrics;
  readonly authStore: AuthStore;
  readonly limits: ConnectionLimits;
  /** Bumped by every revalidation, so a login whose lookup raced with one looks its key up again. */
  readonly authGeneration: number;
  route(channel: string, frame: Buffer, frameIsShared: boolean, payloadLength: number, stats: PublishStats): void;
  publishStatsFor(ident: string, channel: string): PublishStats;
  addSubscription(conn: Connection, channel: string): void;
  removeSubscription(conn: Connection, channel: string): void;
  scheduleFlush(conn: Connection): void;
  connectionClosed(conn: Connection): void;
}

export interface ConnectionLimits {
  maxFrameLength: number;
  maxSendBufferBytes: number;
  backpressureDeadlineMs: number;
  authTimeoutMs: number;
  closeTimeoutMs: number;
}

const AWAIT_AUTH = 0;
const AUTHENTICATING = 1;
const READY = 2;
const CLOSING = 3;
const CLOSED = 4;
type State = typeof AWAIT_AUTH | typeof AUTHENTICATING | typeof READY | typeof CLOSING | typeof CLOSED;

/** Above this average frame size a batch is written with cork/writev rather than copied into one buffer. */
const CONCAT_MAX_AVERAGE_FRAME = 4096;

function isThenable<T>(value: unknown): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}

export class Connection {
  readonly peer: string;
  /** Authenticated ident; '' before authentication (also the metric label for anonymous peers). */
  ident = '';
  owner = '';
  readonly subscriptions = new Set<string>();
  /** Resolves once the socket is closed and the connection is forgotten by the broker. */
  readonly closed: Promise<void>;

  private state: State = AWAIT_AUTH;
  private readonly nonce = randomBytes(4);
  /** sha1(nonce + secret) the client proved; kept instead of the secret to detect secret changes. */
  private authHash: Buffer | undefined;
  private pubchans = new Set<string>();
  private subchans = new Set<string>();
  private readonly decoder: FrameDecoder;
  private identLabels = { ident: '' };
  private peerEnded = false;

  private pending: Buffer[] = [];
  private pendingBytes = 0;

  private congested = false;
  private droppedWhileCongested = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;

  private lastPublishChannel: string | undefined;
  private lastPublishStats: PublishStats | undefined;

  private resolveClosed!: () => void;

  constructor(
    private readonly host: ConnectionHost,
    readonly socket: Socket,
  ) {
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.decoder = new FrameDecoder({ maxFrameLength: host.limits.maxFrameLength });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));

    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    // Old blocking clients expect the whole OP_INFO in their first recv(): one write.
    socket.write(encodeInfo(host.name, this.nonce));
    this.authTimer = setTimeout(this.onAuthTimeout, host.limits.authTimeoutMs).unref();
  }

  get isReady(): boolean {
    return this.state === READY;
  }

  /** Bytes queued for this peer (ours + the socket's). */
  get sendBufferBytes(): number {
    return this.pendingBytes + this.socket.writableLength;
  }

  get receiveBufferBytes(): number {
    return this.decoder.bufferedBytes;
  }

  // --- send path ------------------------------------------------------------------------------

  /**
   * Queues a frame shared with other subscribers; written at the end of this I/O turn. Returns
   * false if the frame was dropped because the peer is not keeping up (never blocks the caller).
   */
  enqueue(frame: Buffer): boolean {
    if (this.state !== READY) return false;
    const backlog = this.pendingBytes + this.socket.writableLength;
    const limit = this.host.limits.maxSendBufferBytes;
    if (backlog > 0 && backlog + frame.length > limit) {
      this.dropOne();
      return false;
    }
    if (this.congested && backlog <= limit >>> 1) this.recovered();
    if (this.pending.length === 0) this.host.scheduleFlush(this);
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    return true;
  }

  /** Writes everything queued in one go (called once per I/O turn by the broker). */
  flush(): void {
    const pending = this.pending;
    const count = pending.length;
    if (count === 0) return;
    const bytes = this.pendingBytes;
    if (this.socket.writableEnded) {
      // Our side already ended (TLS peer half-closed): nothing can be sent any more.
      pending.length = 0;
      this.pendingBytes = 0;
      return;
    }
    if (count === 1) {
      this.socket.write(pending[0]);
    } else if (bytes <= count * CONCAT_MAX_AVERAGE_FRAME) {
      // One copy of small frames beats one stream write per frame by far.
      this.socket.write(Buffer.concat(pending, bytes));
    } else {
      this.socket.cork();
      for (let i = 0; i < count; i++) this.socket.write(pending[i]);
      this.socket.uncork();
    }
    pending.length = 0;
    this.pendingBytes = 0;
    this.host.metrics.sendBufferFill.inc(this.identLabels, bytes);
  }

  private dropOne(): void {
    this.host.metrics.publishDropped.inc(this.identLabels);
    this.droppedWhileCongested++;
    if (this.congested) return;
    this.congested = true;
    this.host.metrics.deadlineStart.inc(this.identLabels);
    this.host.logger.warn(
      { ident: this.ident, peer: this.peer, sendBufferBytes: this.sendBufferBytes, deadlineMs: this.host.limits.backpressureDeadlineMs },
      'hpfeeds subscriber is not keeping up; dropping its messages until it catches up',
    );
    this.deadlineTimer = setTimeout(this.onDeadline, this.host.limits.backpressureDeadlineMs).unref();
    this.socket.once('drain', this.onDrain);
  }

  private recovered(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.congested = false;
    this.socket.off('drain', this.onDrain);
    this.host.metrics.deadlineRecover.inc(this.identLabels);
    this.host.logger.info(
      { ident: this.ident, peer: this.peer, dropped: this.droppedWhileCongested },
      'hpfeeds subscriber caught up',
    );
    this.droppedWhileCongested = 0;
  }

  private readonly onDrain = (): void => {
    if (this.congested) this.recovered();
  };

  private readonly onDeadline = (): void => {
    if (!this.congested || this.state !== READY) return;
    // Without new messages nothing re-checks the backlog, so look once more before giving up.
    if (this.sendBufferBytes <= this.host.limits.maxSendBufferBytes >>> 1) {
      this.recovered();
      return;
    }
    this.host.metrics.backpressureDisconnects.inc();
    this.fail('deadline-timer-expired', 'Backpressure deadline timer expired', { dropped: this.droppedWhileCongested });
  };

  // --- receive path ---------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    if (this.state >= CLOSING) return;
    if (this.state === READY) this.host.metrics.receiveBufferFill.inc(this.identLabels, chunk.length);
    this.decoder.push(chunk);
    this.processFrames();
  };

  /** Handles every complete frame, in order, unless authentication is in flight (then they wait). */
  private processFrames(): void {
    try {
      while (this.state === READY || this.state === AWAIT_AUTH) {
        const frame = this.decoder.next();
        if (frame === null) break;
        this.handleFrame(frame);
      }
    } catch (err) {
      if (err instanceof HpfeedsProtocolError) {
        this.fail(err.code, err.message);
      } else {
        this.host.logger.error({ ident: this.ident, peer: this.peer, err: String(err) }, 'hpfeeds internal error while handling a frame');
        this.fail('internal-error', 'Internal error');
      }
      return;
    }
    if (this.peerEnded && (this.state === READY || this.state === AWAIT_AUTH)) this.shutdown();
  }

  private handleFrame(frame: HpfeedsFrame): void {
    if (this.state === AWAIT_AUTH) {
      if (frame.op === OP_AUTH) this.beginAuth(frame.ident, frame.hash);
      else this.fail('invalid-first-message', 'First message was not AUTH');
      return;
    }
    switch (frame.op) {
      case OP_PUBLISH:
        this.onPublish(frame.ident, frame.channel, frame.raw, frame.payload.length);
        return;
      case OP_SUBSCRIBE:
        if (!this.subchans.has(frame.channel)) {
          this.fail('no-sub-permission', `Authkey not allowed to sub here. ident=${this.ident}, chan=${frame.channel}`);
          return;
        }
        this.host.addSubscription(this, frame.channel);
        return;
      case OP_UNSUBSCRIBE:
        this.host.removeSubscription(this, frame.channel);
        return;
      default:
        // ERROR/INFO only flow broker -> client, and a connection authenticates once.
        this.fail('unexpected-opcode', `Unexpected opcode ${frame.op} from client`);
    }
  }

  private onPublish(ident: string, channel: string, raw: Buffer, payloadLength: number): void {
    if (ident !== this.ident) {
      this.fail('ident-mismatch-pub', `Invalid authkey in message, ident=${ident}`);
      return;
    }
    if (!this.pubchans.has(channel)) {
      this.fail('no-pub-permission', `Authkey not allowed to pub here. ident=${ident}, chan=${channel}`);
      return;
    }
    let stats = this.lastPublishStats;
    if (channel !== this.lastPublishChannel || stats === undefined) {
      stats = this.host.publishStatsFor(ident, channel);
      this.lastPublishChannel = channel;
      this.lastPublishStats = stats;
    }
    // The ident is the sender's, so the received frame is byte for byte what subscribers get.
    this.host.route(channel, raw, false, payloadLength, stats);
  }

  // --- authentication -------------------------------------------------------------------------

  private beginAuth(ident: string, hash: Buffer): void {
    this.state = AUTHENTICATING;
    // Frames after AUTH stay in the decoder, and TCP flow control holds the rest, until we know.
    this.socket.pause();
    const generation = this.host.authGeneration;
    let lookup: ReturnType<AuthStore['get']>;
    try {
      lookup = this.host.authStore.get(ident);
    } catch (err) {
      this.authLookupFailed(ident, err);
      return;
    }
    if (isThenable<AuthKey | undefined | null>(lookup)) {
      lookup.then(
        (key) => this.completeAuth(ident, hash, key ?? undefined, generation, true),
        (err: unknown) => this.authLookupFailed(ident, err),
      );
    } else {
      this.completeAuth(ident, hash, lookup ?? undefined, generation, false);
    }
  }

  private completeAuth(ident: string, hash: Buffer, key: AuthKey | undefined, generation: number, async: boolean): void {
    if (this.state !== AUTHENTICATING) return;
    if (generation !== this.host.authGeneration) {
      this.beginAuth(ident, hash);
      return;
    }
    if (!key) {
      // Unknown idents are attacker-chosen: keep them out of metric labels.
      this.fail('invalid-ident', `Authentication failed for ${ident}`, { attemptedIdent: ident }, '');
      return;
    }
    const expected = hashSecret(this.nonce, key.secret);
    if (hash.length !== expected.length || !timingSafeEqual(hash, expected)) {
      this.fail('invalid-secret', `Authentication failed for ${ident}`, { attemptedIdent: ident }, ident);
      return;
    }
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
    this.ident = ident;
    this.identLabels = { ident };
    this.owner = key.owner;
    this.authHash = expected;
    this.pubchans = new Set(key.pubchans);
    this.subchans = new Set(key.subchans);
    this.state = READY;
    this.host.metrics.connectionReady.inc(this.identLabels);
    this.host.logger.info({ ident, owner: key.owner, peer: this.peer }, 'hpfeeds client authenticated');
    this.socket.resume();
    if (async) this.processFrames();
  }

  private authLookupFailed(ident: string, err: unknown): void {
    if (this.state !== AUTHENTICATING) return;
    this.host.logger.error({ attemptedIdent: ident, peer: this.peer, err: String(err) }, 'hpfeeds auth store lookup failed');
    this.fail('auth-store-error', `Authentication failed for ${ident}`, undefined, '');
  }

  private readonly onAuthTimeout = (): void => {
    if (this.state === AWAIT_AUTH || this.state === AUTHENTICATING) {
      this.fail('auth-timeout', 'Authentication timed out');
    }
  };

  /**
   * Re-checks a live connection against its current authkey (revoked or edited). A removed key or
   * a new secret closes the connection; new channel lists replace the ACL and drop subscriptions
   * that are no longer allowed.
   */
  applyKey(key: AuthKey | undefined): void {
    if (this.state !== READY) return;
    let reason: string | undefined;
    if (!key) {
      reason = 'authkey removed';
    } else {
      const expected = hashSecret(this.nonce, key.secret);
      if (!timingSafeEqual(expected, this.authHash!)) reason = 'secret changed';
    }
    if (reason || !key) {
      this.fail('authkey-revoked', `Authentication failed for ${this.ident}`, { reason });
      return;
    }
    this.owner = key.owner;
    this.pubchans = new Set(key.pubchans);
    this.subchans = new Set(key.subchans);
    for (const channel of [...this.subscriptions]) {
      if (this.subchans.has(channel)) continue;
      this.host.removeSubscription(this, channel);
      this.host.logger.info({ ident: this.ident, peer: this.peer, chan: channel }, 'hpfeeds subscription dropped: authkey no longer allows it');
    }
  }

  // --- closing --------------------------------------------------------------------------------

  /** Counts, logs and sends an error (reference wording), then closes. */
  private fail(category: string, message: string, extra?: Record<string, unknown>, labelIdent = this.ident): void {
    if (this.state >= CLOSING) return;
    this.host.metrics.connectionError.inc({ ident: labelIdent, category });
    this.host.logger.warn({ ident: this.ident, peer: this.peer, category, error: message, ...extra }, 'hpfeeds connection error');
    this.shutdown(message);
  }

  /** Graceful close: flush what is queued (plus an optional ERROR), then end; destroy if the peer stalls. */
  shutdown(errorMessage?: string): void {
    if (this.state >= CLOSING) return;
    this.state = CLOSING;
    this.clearTimers();
    for (const channel of [...this.subscriptions]) this.host.removeSubscription(this, channel);
    this.flush();
    if (errorMessage !== undefined && !this.socket.writableEnded) this.socket.write(encodeError(errorMessage));
    this.socket.end();
    // Keep reading (and discarding) so the peer's FIN is seen; it may have been paused for auth.
    this.socket.resume();
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.host.limits.closeTimeoutMs).unref();
  }

  private clearTimers(): void {
    clearTimeout(this.authTimer);
    clearTimeout(this.deadlineTimer);
    this.authTimer = this.deadlineTimer = undefined;
  }

  private readonly onEnd = (): void => {
    this.peerEnded = true;
    // Frames that arrived before the FIN are already handled, unless auth is still in flight:
    // then processFrames() finishes them and closes afterwards.
    if (this.state === READY || this.state === AWAIT_AUTH) this.shutdown();
  };

  private readonly onError = (err: Error): void => {
    this.host.logger.debug({ ident: this.ident, peer: this.peer, err: err.message }, 'hpfeeds socket error');
  };

  private readonly onClose = (): void => {
    if (this.state !== CLOSING) {
      for (const channel of [...this.subscriptions]) this.host.removeSubscription(this, channel);
    }
    this.state = CLOSED;
    this.clearTimers();
    clearTimeout(this.closeTimer);
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.host.metrics.connectionLost.inc(this.identLabels);
    this.host.logger.debug({ ident: this.ident, peer: this.peer }, 'hpfeeds connection closed');
    this.host.connectionClosed(this);
    this.resolveClosed();
  };
}
