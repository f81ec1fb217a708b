// hpfeeds client: TCP or TLS, authentication, publish/subscribe, automatic reconnect with
// backoff that restores every subscription.
import { EventEmitter } from 'node:events';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import {
  FrameDecoder,
  OP_ERROR,
  OP_INFO,
  OP_PUBLISH,
  encodeAuthFromSecret,
  encodePublish,
  encodeSubscribe,
  encodeUnsubscribe,
  type HpfeedsFrame,
} from './codec.js';
import { silentLogger, type HpfeedsLogger } from './types.js';

export interface HpfeedsClientTlsOptions {
  /** CA certificate(s) to trust instead of the system store (PEM). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Name checked against the certificate; default: host, unless host is an IP address. */
  servername?: string;
  /** Default true. */
  rejectUnauthorized?: boolean;
}

export interface HpfeedsClientOptions {
  host: string;
  port: number;
  ident: string;
  secret: string;
  /** true (system CAs) or TLS options; default plain TCP. */
  tls?: boolean | HpfeedsClientTlsOptions;
  /** Reconnect (and re-subscribe) after the connection drops. Default true. */
  reconnect?: boolean;
  /** First reconnect delay, doubled on each failure up to reconnectMaxDelayMs, with jitter. Default 100 ms. */
  reconnectInitialDelayMs?: number;
  /** Default 10 s. */
  reconnectMaxDelayMs?: number;
  /** TCP connect + TLS handshake + broker greeting must complete within this. Default 10 s. */
  connectTimeoutMs?: number;
  /** Largest frame accepted from the broker. Default 5 + 1 MiB. */
  maxFrameLength?: number;
  /** Bound on bytes waiting to be sent (also while disconnected); publishes beyond it are dropped. Default 8 MiB. */
  maxBufferedBytes?: number;
  logger?: HpfeedsLogger;
}

/** An ERROR frame sent by the broker (reference wording, e.g. "Authentication failed for x"). */
export class HpfeedsServerError extends Error {
  override readonly name = 'HpfeedsServerError';
}

export interface HpfeedsClientEvents {
  /** The payload is a view into the read buffer: copy it (Buffer.from) if you keep many. */
  message: [ident: string, channel: string, payload: Buffer];
  /** Broker ERROR frames (HpfeedsServerError) and protocol violations. Only emitted if someone listens. */
  error: [err: Error];
  /** Authenticated (AUTH sent, subscriptions restored); hpfeeds has no explicit auth success message. */
  ready: [brokerName: string];
  disconnect: [reason: string];
  /** Everything buffered has been handed to the kernel. */
  drain: [];
}

type ClientState = 'idle' | 'connecting' | 'ready' | 'closed';

const STABLE_CONNECTION_MS = 1000;

export class HpfeedsClient extends EventEmitter<HpfeedsClientEvents> {
  readonly ident: string;
  /** Publishes dropped because more than maxBufferedBytes were waiting. */
  droppedPublishes = 0;
  /** Text of the last ERROR frame received, if any. */
  lastServerError: string | undefined;
  brokerName: string | undefined;

  private readonly opts: Required<Omit<HpfeedsClientOptions, 'tls' | 'logger'>> & Pick<HpfeedsClientOptions, 'tls'>;
  private readonly logger: HpfeedsLogger;
  private readonly channels = new Set<string>();
  private state: ClientState = 'idle';
  private socket: Socket | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private failures = 0;
  private readyAt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private readyWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];

  constructor(opts: HpfeedsClientOptions) {
    super();
    this.ident = opts.ident;
    this.logger = opts.logger ?? silentLogger;
    this.opts = {
      host: opts.host,
      port: opts.port,
      ident: opts.ident,
      secret: opts.secret,
      tls: opts.tls,
      reconnect: opts.reconnect ?? true,
      reconnectInitialDelayMs: opts.reconnectInitialDelayMs ?? 100,
      reconnectMaxDelayMs: opts.reconnectMaxDelayMs ?? 10_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      maxFrameLength: opts.maxFrameLength ?? 5 + 1024 * 1024,
      maxBufferedBytes: opts.maxBufferedBytes ?? 8 * 1024 * 1024,
    };
  }

  get connected(): boolean {
    return this.state === 'ready';
  }

  /** Bytes accepted by publish() but not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.pendingBytes + (this.socket?.writableLength ?? 0);
  }

  /**
   * Connects and authenticates. Resolves once ready; with reconnect off, rejects if this attempt
   * fails, otherwise keeps retrying (rejects only if close() is called first).
   */
  connect(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new Error('hpfeeds client is closed'));
    if (this.state === 'ready') return Promise.resolve();
    const ready = new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    if (this.state === 'idle' && this.reconnectTimer === undefined) this.open();
    return ready;
  }

  subscribe(channels: string | readonly string[]): void {
    for (const channel of typeof channels === 'string' ? [channels] : channels) {
      if (this.channels.has(channel)) continue;
      this.channels.add(channel);
      // While disconnected the set is the source of truth: it is replayed after AUTH.
      if (this.state === 'ready') this.enqueue(encodeSubscribe(this.ident, channel));
    }
  }

  unsubscribe(channels: string | readonly string[]): void {
    for (const channel of typeof channels === 'string' ? [channels] : channels) {
      if (!this.channels.delete(channel)) continue;
      if (this.state === 'ready') this.enqueue(encodeUnsubscribe(this.ident, channel));
    }
  }

  /**
   * Queues a publish (sent at the end of the current tick, or after reconnecting). Returns false
   * if it was dropped because maxBufferedBytes are already waiting.
   */
  publish(channels: string | readonly string[], payload: Uint8Array | string): boolean {
    if (this.state === 'closed') return false;
    let accepted = true;
    for (const channel of typeof channels === 'string' ? [channels] : channels) {
      const frame = encodePublish(this.ident, channel, payload);
      if (this.bufferedBytes + frame.length > this.opts.maxBufferedBytes) {
        this.droppedPublishes++;
        accepted = false;
        continue;
      }
      this.enqueue(frame);
    }
    return accepted;
  }

  /**
   * Sends what is queued, half-closes, and waits for the broker to close its side (it does so after
   * handling everything we sent, so an ERROR about our last publish still arrives). No reconnect.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.connectTimer);
    this.reconnectTimer = this.connectTimer = undefined;
    this.rejectWaiters(new Error('hpfeeds client closed'));
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    if (wasReady) {
      this.writePending(socket);
      socket.end();
      const timer = setTimeout(() => socket.destroy(), timeoutMs);
      await closed;
      clearTimeout(timer);
    } else {
      socket.destroy();
      await closed;
    }
  }

  private enqueue(frame: Buffer): void {
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    if (this.state === 'ready' && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.state === 'ready' && this.socket) this.writePending(this.socket);
  };

  private writePending(socket: Socket): void {
    if (this.pending.length === 0) return;
    socket.write(this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes));
    this.pending = [];
    this.pendingBytes = 0;
  }

  private open(): void {
    this.state = 'connecting';
    const { host, port, tls } = this.opts;
    let socket: Socket;
    if (tls) {
      const tlsOpts: HpfeedsClientTlsOptions = tls === true ? {} : tls;
      const options: ConnectionOptions = { host, port, ca: tlsOpts.ca, rejectUnauthorized: tlsOpts.rejectUnauthorized ?? true };
      const servername = tlsOpts.servername ?? (isIP(host) ? undefined : host);
      if (servername) options.servername = servername;
      socket = connectTls(options);
    } else {
      socket = connectTcp({ host, port });
    }
    this.socket = socket;
    const decoder = new FrameDecoder({ maxFrameLength: this.opts.maxFrameLength });
    this.lastServerError = undefined;
    socket.setNoDelay(true);
    this.connectTimer = setTimeout(() => {
      this.logger.warn({ host, port }, 'hpfeeds connect timed out');
      socket.destroy(new Error('connect timed out'));
    }, this.opts.connectTimeoutMs);

    let lastError: Error | undefined;
    socket.on('error', (err) => {
      lastError = err;
      this.logger.debug({ host, port, err: err.message }, 'hpfeeds client socket error');
    });
    socket.on('drain', () => this.emit('drain'));
    socket.on('data', (chunk: Buffer) => {
      if (socket !== this.socket) return;
      decoder.push(chunk);
      for (;;) {
        let frame: HpfeedsFrame | null;
        try {
          frame = decoder.next();
        } catch (err) {
          this.protocolViolation(socket, (err as Error).message);
          return;
        }
        if (frame === null) return;
        this.handleFrame(socket, frame);
        if (socket !== this.socket) return;
      }
    });
    socket.on('close', () => this.onSocketClose(socket, lastError));
  }

  private handleFrame(socket: Socket, frame: HpfeedsFrame): void {
    switch (frame.op) {
      case OP_PUBLISH:
        this.emit('message', frame.ident, frame.channel, frame.payload);
        return;
      case OP_INFO:
        if (this.state !== 'connecting') break;
        this.authenticate(socket, frame.name, frame.nonce);
        return;
      case OP_ERROR:
        this.lastServerError = frame.message;
        this.logger.warn({ error: frame.message }, 'hpfeeds broker sent an error');
        if (this.listenerCount('error') > 0) this.emit('error', new HpfeedsServerError(frame.message));
        return;
    }
    this.protocolViolation(socket, `unexpected opcode ${frame.op} from broker`);
  }

  private authenticate(socket: Socket, brokerName: string, nonce: Buffer): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.brokerName = brokerName;
    // AUTH, the subscriptions and anything published meanwhile go out in one write, as the
    // reference clients do (the broker holds frames that follow AUTH until it has checked it).
    const frames = [encodeAuthFromSecret(nonce, this.ident, this.opts.secret)];
    for (const channel of this.channels) frames.push(encodeSubscribe(this.ident, channel));
    frames.push(...this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    socket.write(Buffer.concat(frames));
    this.state = 'ready';
    this.readyAt = Date.now();
    this.logger.info({ broker: brokerName, ident: this.ident }, 'hpfeeds client connected');
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.emit('ready', brokerName);
  }

  private protocolViolation(socket: Socket, message: string): void {
    this.logger.warn({ error: message }, 'hpfeeds broker violated the protocol; disconnecting');
    if (this.listenerCount('error') > 0) this.emit('error', new Error(`hpfeeds protocol error: ${message}`));
    socket.destroy();
  }

  private onSocketClose(socket: Socket, error: Error | undefined): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const reason = error?.message ?? this.lastServerError ?? 'connection closed';
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'idle';
    // Subscription changes are replayed from the channel set; only publishes stay queued.
    this.pending = this.pending.filter((frame) => frame[4] === OP_PUBLISH);
    this.pendingBytes = this.pending.reduce((sum, frame) => sum + frame.length, 0);
    if (wasReady) this.emit('disconnect', reason);
    if (wasReady && Date.now() - this.readyAt >= STABLE_CONNECTION_MS) this.failures = 0;
    if (!this.opts.reconnect) {
      this.state = 'closed';
      this.rejectWaiters(error ?? new Error(`hpfeeds connection closed: ${reason}`));
      return;
    }
    const delay =
      Math.min(this.opts.reconnectMaxDelayMs, this.opts.reconnectInitialDelayMs * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.failures = Math.min(this.failures + 1, 30);
    this.logger.info({ host: this.opts.host, port: this.opts.port, reason, delayMs: Math.round(delay) }, 'hpfeeds client reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state === 'idle') this.open();
    }, delay);
  }

  private rejectWaiters(err: Error): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const waiter of waiters) waiter.reject(err);
  }
}
