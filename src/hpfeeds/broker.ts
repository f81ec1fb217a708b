// The hpfeeds broker: listeners, channel routing, in-process publish and live revalidation.
// Wire behaviour follows the reference broker (hpfeeds3); see connection.ts for the per-client part.
import { readFile } from 'node:fs/promises';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Registry } from 'prom-client';
import { DEFAULT_MAX_FRAME_LENGTH, encodePublish } from './codec.js';
import { Connection, type ConnectionHost, type ConnectionLimits } from './connection.js';
import { parseEndpoint } from './endpoint.js';
import { BrokerMetrics, PublishStats } from './metrics.js';
import { silentLogger, type AuthStore, type HpfeedsLogger } from './types.js';

export interface BrokerOptions {
  authStore: AuthStore;
  /** Sent to clients in OP_INFO. Default 'hpfeeds' (the reference's default). */
  name?: string;
  /** Metrics are registered here; default: a private Registry (see `broker.registry`). */
  registry?: Registry;
  logger?: HpfeedsLogger;
  /** Largest frame accepted, header included. Default 5 + 1 MiB. */
  maxFrameLength?: number;
  /** Per-connection bound on bytes waiting to be sent; beyond it messages for that peer are dropped. Default 8 MiB. */
  maxSendBufferBytes?: number;
  /** A subscriber whose send buffer stays full this long is disconnected. Default 10 s. */
  backpressureDeadlineMs?: number;
  /** Time a new connection has to complete AUTH (or a TLS handshake). Default 10 s. */
  authTimeoutMs?: number;
  /** Time a closing connection gets to flush before it is destroyed. Default 2 s. */
  closeTimeoutMs?: number;
}

export interface ListenAddress {
  host: string;
  port: number;
  tls: boolean;
}

export const BROKER_DEFAULTS = {
  name: 'hpfeeds',
  maxFrameLength: DEFAULT_MAX_FRAME_LENGTH,
  maxSendBufferBytes: 8 * 1024 * 1024,
  backpressureDeadlineMs: 10_000,
  authTimeoutMs: 10_000,
  closeTimeoutMs: 2_000,
} as const;

export class Broker implements ConnectionHost {
  readonly name: string;
  readonly registry: Registry;
  readonly logger: HpfeedsLogger;
  /** @internal */
  readonly metrics: BrokerMetrics;
  readonly authStore: AuthStore;
  readonly limits: ConnectionLimits;
  /** @internal */
  authGeneration = 0;

  private readonly servers: Server[] = [];
  private readonly listening: ListenAddress[] = [];
  /** Raw sockets of all listeners, so close() can also reap TLS handshakes that never finished. */
  private readonly rawSockets = new Set<Socket>();
  private readonly connections = new Set<Connection>();
  /** Subscribers per channel. Replaced, never mutated, on (un)subscribe so routing can iterate freely. */
  private readonly channels = new Map<string, readonly Connection[]>();
  private readonly stats = new Map<string, Map<string, PublishStats>>();
  private deliveryCount = 0;
  private dirty: Connection[] = [];
  private flushScheduled = false;
  private closing: Promise<void> | undefined;
  private readonly unwatch: (() => void) | undefined;

  constructor(opts: BrokerOptions) {
    this.authStore = opts.authStore;
    this.name = opts.name ?? BROKER_DEFAULTS.name;
    this.registry = opts.registry ?? new Registry();
    this.logger = opts.logger ?? silentLogger;
    this.limits = {
      maxFrameLength: opts.maxFrameLength ?? BROKER_DEFAULTS.maxFrameLength,
      maxSendBufferBytes: opts.maxSendBufferBytes ?? BROKER_DEFAULTS.maxSendBufferBytes,
      backpressureDeadlineMs: opts.backpressureDeadlineMs ?? BROKER_DEFAULTS.backpressureDeadlineMs,
      authTimeoutMs: opts.authTimeoutMs ?? BROKER_DEFAULTS.authTimeoutMs,
      closeTimeoutMs: opts.closeTimeoutMs ?? BROKER_DEFAULTS.closeTimeoutMs,
    };
    this.metrics = new BrokerMetrics(this.registry, {
      deliveries: () => this.deliveryCount,
      publishStats: () => this.allPublishStats(),
      connectionBuffers: () => this.connectionBuffers(),
    });
    this.unwatch = opts.authStore.watch?.((idents) => {
      void this.revalidateIdents(idents === undefined ? undefined : new Set(idents));
    });
  }

  /** Addresses currently listened on. */
  get addresses(): readonly ListenAddress[] {
    return this.listening;
  }

  /** Starts a listener: `tcp:port=N[:interface=IP]` or `tls:port=N:cert=PATH:key=PATH[:interface=IP]`. Call again for more. */
  async listen(endpoint: string): Promise<ListenAddress> {
    if (this.closing) throw new Error('broker is closed');
    const ep = parseEndpoint(endpoint);
    let server: Server;
    if (ep.kind === 'tls') {
      const [cert, key] = await Promise.all([readFile(ep.certPath!), readFile(ep.keyPath!)]);
      // No allowHalfOpen here: with it, a TLS socket whose handshake fails stays half-open and
      // server.close() waits on it forever. A client's half-close then ends our side at once;
      // what it sent before is still handled, only our replies to it are cut short.
      server = createTlsServer({ cert, key, handshakeTimeout: this.limits.authTimeoutMs });
      server.on('secureConnection', (socket: Socket) => this.accept(socket));
      server.on('tlsClientError', (err: Error, socket: Socket) => {
        this.metrics.connectionError.inc({ ident: '', category: 'tls-handshake' });
        this.logger.debug({ peer: socket.remoteAddress && `${socket.remoteAddress}:${socket.remotePort}`, err: err.message }, 'hpfeeds TLS handshake failed');
        // A handshake timeout is reported here with the socket still open: close it.
        socket.destroy();
      });
    } else {
      server = createTcpServer({ allowHalfOpen: true });
      server.on('connection', (socket: Socket) => this.accept(socket));
    }
    server.on('connection', (socket: Socket) => {
      this.rawSockets.add(socket);
      socket.once('close', () => this.rawSockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: ep.port, host: ep.host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ endpoint, err: err.message }, 'hpfeeds listener error'));
    this.servers.push(server);
    const address = server.address() as AddressInfo;
    const info: ListenAddress = { host: address.address, port: address.port, tls: ep.kind === 'tls' };
    this.listening.push(info);
    this.logger.info({ ...info }, 'hpfeeds broker listening');
    return info;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.metrics.connectionMade.inc();
    this.metrics.clientConnections.inc();
    this.connections.add(new Connection(this, socket));
  }

  /**
   * Publishes from trusted in-process code (no TCP hop, no ACL check). Counted like a client
   * publish under `ident`. Throws HpfeedsProtocolError if ident or channel exceed 255 UTF-8 bytes.
   */
  publish(ident: string, channel: string, payload: Uint8Array | string): void {
    if (this.closing) return;
    const frame = encodePublish(ident, channel, payload);
    const payloadLength = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.byteLength;
    this.route(channel, frame, true, payloadLength, this.publishStatsFor(ident, channel));
  }

  /** @internal Delivers one encoded PUBLISH frame to every subscriber of `channel`. Hot path. */
  route(channel: string, frame: Buffer, frameIsShared: boolean, payloadLength: number, stats: PublishStats): void {
    stats.record(payloadLength);
    const subscribers = this.channels.get(channel);
    if (subscribers === undefined) return;
    // A received frame is a view into the socket's read chunk: copy it once so queued frames
    // never pin whole chunks; every subscriber then shares this one buffer.
    const shared = frameIsShared ? frame : Buffer.from(frame);
    let delivered = 0;
    for (let i = 0; i < subscribers.length; i++) {
      if (subscribers[i].enqueue(shared)) delivered++;
    }
    this.deliveryCount += delivered;
  }

  /** @internal */
  publishStatsFor(ident: string, channel: string): PublishStats {
    let byChannel = this.stats.get(ident);
    if (byChannel === undefined) this.stats.set(ident, (byChannel = new Map()));
    let stats = byChannel.get(channel);
    if (stats === undefined) byChannel.set(channel, (stats = new PublishStats(ident, channel)));
    return stats;
  }

  /** @internal */
  addSubscription(conn: Connection, channel: string): void {
    if (conn.subscriptions.has(channel)) return;
    conn.subscriptions.add(channel);
    this.channels.set(channel, [...(this.channels.get(channel) ?? []), conn]);
    this.metrics.subscriptions.inc({ ident: conn.ident, chan: channel });
  }

  /** @internal */
  removeSubscription(conn: Connection, channel: string): void {
    if (!conn.subscriptions.delete(channel)) return;
    const remaining = (this.channels.get(channel) ?? []).filter((c) => c !== conn);
    if (remaining.length > 0) this.channels.set(channel, remaining);
    else this.channels.delete(channel);
    this.metrics.subscriptions.dec({ ident: conn.ident, chan: channel });
  }

  /** @internal Connections with queued frames are flushed together once the current I/O turn is done. */
  scheduleFlush(conn: Connection): void {
    this.dirty.push(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushDirty);
    }
  }

  private readonly flushDirty = (): void => {
    this.flushScheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (let i = 0; i < dirty.length; i++) dirty[i].flush();
  };

  /** @internal */
  connectionClosed(conn: Connection): void {
    if (this.connections.delete(conn)) this.metrics.clientConnections.dec();
  }

  /**
   * Re-checks live connections against the auth store (all, or those of `ident`): a removed key
   * or changed secret closes them, changed channel lists update their ACL and subscriptions.
   */
  revalidate(ident?: string): Promise<void> {
    return this.revalidateIdents(ident === undefined ? undefined : new Set([ident]));
  }

  private async revalidateIdents(idents: ReadonlySet<string> | undefined): Promise<void> {
    this.authGeneration++;
    const byIdent = new Map<string, Connection[]>();
    for (const conn of this.connections) {
      if (!conn.isReady || (idents !== undefined && !idents.has(conn.ident))) continue;
      const list = byIdent.get(conn.ident);
      if (list) list.push(conn);
      else byIdent.set(conn.ident, [conn]);
    }
    await Promise.all(
      [...byIdent].map(async ([ident, conns]) => {
        let key;
        try {
          key = (await this.authStore.get(ident)) ?? undefined;
        } catch (err) {
          // Fail safe, not closed: a store hiccup must not disconnect the whole fleet.
          this.logger.error({ ident, err: String(err) }, 'hpfeeds revalidation lookup failed; connections kept as they are');
          return;
        }
        for (const conn of conns) conn.applyKey(key);
      }),
    );
  }

  /** Stops listening, flushes what is queued to every client, closes them, and resolves when all is closed. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.unwatch?.();
    const listenersClosed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    const connections = [...this.connections];
    for (const conn of connections) conn.shutdown();
    // Referenced on purpose: sockets stuck mid-TLS-handshake may hold no live handle, and close()
    // must still resolve.
    const reaper = setTimeout(() => {
      for (const socket of this.rawSockets) socket.destroy();
    }, this.limits.closeTimeoutMs);
    await Promise.all([...listenersClosed, ...connections.map((conn) => conn.closed)]);
    clearTimeout(reaper);
    this.listening.length = 0;
    this.logger.info({ name: this.name }, 'hpfeeds broker closed');
  }

  private *allPublishStats(): Iterable<PublishStats> {
    for (const byChannel of this.stats.values()) yield* byChannel.values();
  }

  private *connectionBuffers(): Iterable<{ ident: string; send: number; receive: number }> {
    for (const conn of this.connections) {
      if (conn.isReady) yield { ident: conn.ident, send: conn.sendBufferBytes, receive: conn.receiveBufferBytes };
    }
  }
}
