// One client connection of the broker: handshake, pre-auth limits, authentication, ACL checks,
// back-pressure on its reads, and closing. The send side is send-queue.ts; routing is broker.ts.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  FrameDecoder,
  HpfeedsProtocolError,
  RAW_PUBLISH,
  type RawPublish,
  OP_AUTH,
  OP_SUBSCRIBE,
  OP_UNSUBSCRIBE,
  encodeError,
  encodeInfo,
  hashSecret,
  type HpfeedsFrame,
} from './codec.js';
import type { Admission } from './admission.js';
import type { LabelFolder } from './labels.js';
import type { PublishStats } from './metrics.js';
import { SendQueue, type PausedPublisher, type SendHost, type SendOwner } from './send-queue.js';
import type { AuthKey, AuthStore, PeerAddress } from './types.js';

/** What a connection needs from its broker. */
export interface ConnectionHost extends SendHost {
  readonly name: string;
  readonly authStore: AuthStore;
  readonly limits: ConnectionLimits;
  readonly admission: Admission;
  readonly identLabel: LabelFolder;
  /** Bumped by every revalidation, so a login whose lookup raced with one looks its key up again. */
  readonly authGeneration: number;
  /** Routes a frame; returns true if `source` must pause reading (a subscriber it feeds is congested). */
  route(channel: string, buf: Buffer, frameStart: number, frameEnd: number, source: Connection | undefined, payloadLength: number, stats: PublishStats): boolean;
  publishStatsFor(ident: string, channel: string): PublishStats;
  /** BrokerOptions.onClientPublish, with errors caught; undefined when not set. */
  readonly clientPublished: ((ident: string, channel: string, payload: Uint8Array) => void) | undefined;
  addSubscription(conn: Connection, channel: string): void;
  removeSubscription(conn: Connection, channel: string): void;
  connectionClosed(conn: Connection): void;
}

export interface ConnectionLimits {
  maxFrameLength: number;
  authTimeoutMs: number;
  closeTimeoutMs: number;
  /** Bytes a peer may send before its AUTH is accepted (AUTH itself is at most 281 bytes). */
  preAuthMaxBytes: number;
}

/**
 * Whether `buf` holds `ref` at `at` (the caller checked the length). Idents and channels are
 * short: a loop beats Buffer#compare's native call, which was ~5% of the broker's CPU per publish.
 */
function sameBytes(buf: Buffer, at: number, ref: Buffer): boolean {
  const n = ref.length;
  if (n > 64) return buf.compare(ref, 0, n, at, at + n) === 0;
  for (let i = 0; i < n; i++) if (buf[at + i] !== ref[i]) return false;
  return true;
}

const AWAIT_AUTH = 0;
const AUTHENTICATING = 1;
const READY = 2;
const CLOSING = 3;
const CLOSED = 4;
type State = typeof AWAIT_AUTH | typeof AUTHENTICATING | typeof READY | typeof CLOSING | typeof CLOSED;


function isThenable<T>(value: unknown): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}

export class Connection implements SendOwner, PausedPublisher {
  readonly peer: string;
  /** Remote address (no port): the key of per-address limits. */
  readonly address: string;
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
  identLabels = { ident: '' };
  private peerEnded = false;
  private preAuthBytes = 0;
  /** Reading stopped because a subscriber this peer publishes to is congested. */
  private backpressured = false;
  /** Set by shutdown() while this turn's frames are still to be written: the close follows the flush. */
  private closeAfterFlush: { message: string | undefined; graceMs: number } | undefined;

  readonly queue: SendQueue;
  private authTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;

  /** The authenticated ident as bytes, to check PUBLISH frames without decoding them. */
  private identBytes: Buffer = Buffer.alloc(0);
  /** Channel of the previous PUBLISH (bytes and string) and its stats: publishers rarely switch. */
  private lastChannelBytes: Buffer = Buffer.alloc(0);
  private lastPublishChannel: string | undefined;
  private lastPublishStats: PublishStats | undefined;

  private resolveClosed!: () => void;

  constructor(
    private readonly host: ConnectionHost,
    readonly socket: Socket,
    /** Where the connection comes from: the socket's peer, or the client a trusted proxy named. */
    from: PeerAddress,
  ) {
    this.address = from.address;
    this.peer = `${from.address}:${from.port}`;
    this.decoder = new FrameDecoder({ maxFrameLength: host.limits.maxFrameLength, authOnly: true });
    this.queue = new SendQueue(host, this);
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
    return this.queue.backlog + this.socket.writableLength;
  }

  get receiveBufferBytes(): number {
    return this.decoder.bufferedBytes;
  }

  // --- send path (see send-queue.ts) -----------------------------------------------------------

  /** Writes this turn's frames (called once per I/O turn by the broker), then a pending close. */
  flush(): void {
    this.queue.flush();
    const close = this.closeAfterFlush;
    if (close !== undefined) {
      this.closeAfterFlush = undefined;
      this.finishClose(close.message, close.graceMs);
    }
  }

  deadlineExpired(dropped: number): void {
    if (this.state !== READY) return;
    this.host.metrics.backpressureDisconnects.inc();
    // The peer may be slow rather than gone: it gets what is queued, then the ERROR, for as long
    // as the deadline again before the socket is destroyed.
    this.fail('deadline-timer-expired', 'Backpressure deadline timer expired', { dropped, backlogBytes: this.sendBufferBytes }, this.identLabels.ident, this.host.sendLimits.backpressureDeadlineMs);
  }

  /** Called by a congested subscriber's queue once it drained (or closed). */
  releaseBackpressure(): void {
    if (!this.backpressured) return;
    this.backpressured = false;
    if (this.state !== READY) return;
    this.socket.resume();
    // Deferred: the caller may be in the middle of another connection's write callback.
    setImmediate(() => this.processFrames());
  }

  // --- receive path ---------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    if (this.state >= CLOSING) return;
    if (this.state === READY) this.host.metrics.receiveBufferFill.inc(this.identLabels, chunk.length);
    else if (this.state === AWAIT_AUTH) this.preAuthBytes += chunk.length;
    this.decoder.push(chunk);
    this.processFrames();
    // Defence in depth: the decoder already refuses anything but a (small) AUTH before auth.
    // Frames sent in the same write right after AUTH are legitimate and not counted here.
    if (this.state === AWAIT_AUTH && this.preAuthBytes > this.host.limits.preAuthMaxBytes) {
      this.fail('pre-auth-limit', `More than ${this.host.limits.preAuthMaxBytes} bytes sent before authentication`);
    }
  };

  /** Handles every complete frame, in order, unless authentication is in flight (then they wait). */
  private processFrames(): void {
    try {
      const decoder = this.decoder;
      while ((this.state === READY && !this.backpressured) || this.state === AWAIT_AUTH) {
        const frame = this.state === READY ? decoder.nextOrRawPublish() : decoder.next();
        if (frame === null) break;
        if (frame === RAW_PUBLISH) this.onRawPublish(decoder.raw);
        else this.handleFrame(frame);
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
    if (this.peerEnded && !this.backpressured && (this.state === READY || this.state === AWAIT_AUTH)) this.shutdown();
  }

  private handleFrame(frame: HpfeedsFrame): void {
    if (this.state === AWAIT_AUTH) {
      if (frame.op === OP_AUTH) this.beginAuth(frame.ident, frame.hash);
      else this.fail('invalid-first-message', 'First message was not AUTH');
      return;
    }
    switch (frame.op) {
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

  /** Hot path: checks and routes a PUBLISH left in the read chunk; allocates nothing in the usual case. */
  private onRawPublish(raw: RawPublish): void {
    const buf = raw.buf;
    const identBytes = this.identBytes;
    const identLength = raw.identEnd - raw.identStart;
    if (identLength !== identBytes.length || !sameBytes(buf, raw.identStart, identBytes)) {
      this.fail('ident-mismatch-pub', `Invalid authkey in message, ident=${buf.toString('utf8', raw.identStart, raw.identEnd)}`);
      return;
    }
    let channel = this.lastPublishChannel;
    let stats = this.lastPublishStats;
    const last = this.lastChannelBytes;
    const channelLength = raw.channelEnd - raw.channelStart;
    if (
      channel === undefined ||
      stats === undefined ||
      last.length !== channelLength ||
      !sameBytes(buf, raw.channelStart, last)
    ) {
      channel = buf.toString('utf8', raw.channelStart, raw.channelEnd);
      if (!this.pubchans.has(channel)) {
        this.fail('no-pub-permission', `Authkey not allowed to pub here. ident=${this.ident}, chan=${channel}`);
        return;
      }
      stats = this.host.publishStatsFor(this.ident, channel);
      this.lastPublishChannel = channel;
      this.lastPublishStats = stats;
      this.lastChannelBytes = Buffer.from(buf.subarray(raw.channelStart, raw.channelEnd));
    }
    // The ident is the sender's, so the received frame is byte for byte what subscribers get.
    const pause = this.host.route(channel, buf, raw.start, raw.end, this, raw.end - raw.channelEnd, stats);
    const mirror = this.host.clientPublished;
    if (mirror !== undefined) mirror(this.ident, channel, buf.subarray(raw.channelEnd, raw.end));
    if (pause && !this.backpressured) {
      // A subscriber this frame went to is past its high-water mark: stop reading (the rest stays
      // in the decoder and in TCP) until it drains. The publisher is slowed, nobody loses data.
      this.backpressured = true;
      this.socket.pause();
      this.host.metrics.publisherPaused.inc();
    }
  }

  // --- authentication -------------------------------------------------------------------------

  private beginAuth(ident: string, hash: Buffer): void {
    if (this.host.admission.addressBlocked(this.address)) {
      this.authRefused('address', ident);
      return;
    }
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
    const admission = this.host.admission;
    if (!key) {
      admission.authFailed(this.address, ident, false);
      // Unknown idents are attacker-chosen: keep them out of metric labels.
      this.fail('invalid-ident', `Authentication failed for ${ident}`, { attemptedIdent: ident }, '');
      return;
    }
    if (admission.identBlocked(ident, this.address)) {
      this.authRefused('ident', ident);
      return;
    }
    const expected = hashSecret(this.nonce, key.secret);
    if (hash.length !== expected.length || !timingSafeEqual(hash, expected)) {
      admission.authFailed(this.address, ident, true);
      this.fail('invalid-secret', `Authentication failed for ${ident}`, { attemptedIdent: ident }, this.host.identLabel.fold(ident));
      return;
    }
    admission.authSucceeded(this.address, ident);
    this.decoder.authOnly = false;
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
    this.ident = ident;
    this.identLabels = { ident: this.host.identLabel.fold(ident) };
    this.identBytes = Buffer.from(ident, 'utf8');
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

  /** Too many failed AUTHs from this address or against this ident: refused without a lookup. */
  private authRefused(scope: 'address' | 'ident', ident: string): void {
    this.host.metrics.authRateLimited.inc({ scope });
    this.host.admission.log.warn(
      `auth-${scope}`,
      this.address,
      { scope, attemptedIdent: ident, limitPerWindow: scope === 'address' ? this.host.admission.limits.authFailuresPerAddress : this.host.admission.limits.authFailuresPerIdent },
      'hpfeeds AUTH refused: too many failed attempts',
    );
    // Same text as a wrong secret: the peer learns nothing about which limit or key it hit.
    this.fail('auth-rate-limited', `Authentication failed for ${ident}`, undefined, '', undefined, false);
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
    this.lastPublishChannel = undefined; // the cached channel's permission is re-checked
    for (const channel of [...this.subscriptions]) {
      if (this.subchans.has(channel)) continue;
      this.host.removeSubscription(this, channel);
      this.host.logger.info({ ident: this.ident, peer: this.peer, chan: channel }, 'hpfeeds subscription dropped: authkey no longer allows it');
    }
  }

  // --- closing --------------------------------------------------------------------------------

  /** Counts, logs and sends an error (reference wording), then closes. */
  private fail(
    category: string,
    message: string,
    extra?: Record<string, unknown>,
    labelIdent = this.identLabels.ident,
    graceMs = this.host.limits.closeTimeoutMs,
    log = true,
  ): void {
    if (this.state >= CLOSING) return;
    this.host.metrics.connectionError.inc({ ident: labelIdent, category });
    if (log) this.host.logger.warn({ ident: this.ident, peer: this.peer, category, error: message, ...extra }, 'hpfeeds connection error');
    this.shutdown(message, graceMs);
  }

  /**
   * Graceful close: what is queued is written, then the optional ERROR, then the end; the socket
   * is destroyed if the peer has not taken it all within `graceMs`.
   */
  shutdown(errorMessage?: string, graceMs = this.host.limits.closeTimeoutMs): void {
    if (this.state >= CLOSING) return;
    this.state = CLOSING;
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
    for (const channel of [...this.subscriptions]) this.host.removeSubscription(this, channel);
    this.queue.stop();
    // Frames offered in this turn go out with the broker's flush, then the ERROR after them.
    if (this.queue.hasPending) this.closeAfterFlush = { message: errorMessage, graceMs };
    else this.finishClose(errorMessage, graceMs);
  }

  private finishClose(errorMessage: string | undefined, graceMs: number): void {
    if (errorMessage !== undefined && !this.socket.writableEnded && !this.socket.destroyed) this.socket.write(encodeError(errorMessage));
    this.socket.end();
    // Keep reading (and discarding) so the peer's FIN is seen; it may have been paused.
    this.socket.resume();
    this.closeTimer = setTimeout(() => this.socket.destroy(), graceMs).unref();
  }

  private readonly onEnd = (): void => {
    this.peerEnded = true;
    // Frames that arrived before the FIN are already handled, unless auth is still in flight:
    // then processFrames() finishes them and closes afterwards.
    if ((this.state === READY && !this.backpressured) || this.state === AWAIT_AUTH) this.shutdown();
  };

  private readonly onError = (err: Error): void => {
    this.host.logger.debug({ ident: this.ident, peer: this.peer, err: err.message }, 'hpfeeds socket error');
  };

  private readonly onClose = (): void => {
    if (this.state !== CLOSING) {
      for (const channel of [...this.subscriptions]) this.host.removeSubscription(this, channel);
    }
    this.state = CLOSED;
    clearTimeout(this.authTimer);
    clearTimeout(this.closeTimer);
    this.queue.discard();
    this.host.metrics.connectionLost.inc(this.identLabels);
    this.host.logger.debug({ ident: this.ident, peer: this.peer }, 'hpfeeds connection closed');
    this.host.connectionClosed(this);
    this.resolveClosed();
  };
}
