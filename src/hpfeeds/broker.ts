// The hpfeeds broker: listeners, channel routing, in-process publish and live revalidation.
// Wire behaviour follows the reference broker (hpfeeds3); see connection.ts for the per-client part.
import { readFile } from 'node:fs/promises';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Registry } from 'prom-client';
import { Admission } from './admission.js';
import { checkPublishNames } from './codec.js';
import { Connection, type ConnectionHost, type ConnectionLimits } from './connection.js';
import { parseEndpoint } from './endpoint.js';
import { IdleGc, obtainGc } from './idle-gc.js';
import { LabelFolder } from './labels.js';
import { BrokerMetrics, PublishStats } from './metrics.js';
import { BROKER_DEFAULTS, resolveLimits, type BrokerOptions, type ListenAddress } from './options.js';
import { TurnFlusher } from './flusher.js';
import { ChannelRoute, PiecePool, type TickBuffer } from './route.js';
import { OFFER_CONGESTED, OFFER_DROPPED, type SendLimits } from './send-queue.js';
import { PeerResolution } from './peers.js';
import { PublishArena } from './publish-arena.js';
import { silentLogger, type AuthStore, type HpfeedsLogger, type PeerAddress } from './types.js';

export { BROKER_DEFAULTS, type BrokerOptions, type ListenAddress } from './options.js';

export class Broker implements ConnectionHost {
  readonly name: string;
  readonly registry: Registry;
  readonly logger: HpfeedsLogger;
  /** @internal */
  readonly metrics: BrokerMetrics;
  readonly authStore: AuthStore;
  readonly limits: ConnectionLimits;
  /** @internal */
  readonly sendLimits: SendLimits;
  /** @internal */
  readonly admission: Admission;
  /** @internal */
  readonly identLabel: LabelFolder;
  /** @internal */
  readonly channelLabel: LabelFolder;
  /** @internal */
  authGeneration = 0;
  /** Bytes held by subscriber queues (a tick buffer shared by several subscribers counts once). */
  queuedBytes = 0;
  /** Highest `queuedBytes` seen (exported as a gauge, reset on scrape). */
  private queuedBytesPeak = 0;

  private readonly servers: Server[] = [];
  private readonly listening: ListenAddress[] = [];
  /** Raw sockets of all listeners, so close() can also reap TLS handshakes that never finished. */
  private readonly rawSockets = new Set<Socket>();
  private readonly connections = new Set<Connection>();
  private readonly channels = new Map<string, ChannelRoute<Connection>>();
  private readonly stats = new Map<string, Map<string, PublishStats>>();
  private deliveryCount = 0;
  /** Bytes of frames queued for subscribers (once per subscriber), ever (drives the idle collection). */
  private routedBytes = 0;
  /** Writes what this turn (or linger window) queued for subscribers. */
  private readonly flusher: TurnFlusher<Connection>;
  /** Turn pieces reused across turns: 32 of 64 KiB (2 MiB) at most. */
  private readonly pieces = new PiecePool(32);
  /** In-process publishes' frames, carved from chunks written again after each flush (see publish-arena.ts). */
  private readonly arena = new PublishArena();
  /** Publishers paused because all queues together are past half the global budget. */
  private readonly globalWaiters = new Set<Connection>();
  private closing: Promise<void> | undefined;
  private readonly unwatch: (() => void) | undefined;
  /** @internal */
  readonly idleGc: IdleGc | undefined;
  /** Who each new connection is (BrokerOptions.resolvePeer). */
  private readonly peers: PeerResolution;
  /** @internal BrokerOptions.onClientPublish with its errors caught and logged. */
  readonly clientPublished: ((ident: string, channel: string, payload: Uint8Array) => void) | undefined;

  constructor(opts: BrokerOptions) {
    this.authStore = opts.authStore;
    this.name = opts.name ?? BROKER_DEFAULTS.name;
    this.registry = opts.registry ?? new Registry();
    this.logger = opts.logger ?? silentLogger;
    const resolved = resolveLimits(opts);
    this.limits = resolved.limits;
    this.sendLimits = resolved.sendLimits;
    this.flusher = new TurnFlusher(
      resolved.flushLingerMs,
      (tick) => this.releaseTick(tick),
      () => this.arena.recycle(),
    );
    const admissionLimits = resolved.admissionLimits;
    this.admission = new Admission(admissionLimits, this.logger);
    this.identLabel = new LabelFolder(opts.metricLabels?.idents, BROKER_DEFAULTS.maxLabelValues);
    this.channelLabel = new LabelFolder(opts.metricLabels?.channels, BROKER_DEFAULTS.maxLabelValues);
    this.metrics = new BrokerMetrics(this.registry, {
      deliveries: () => this.deliveryCount,
      publishStats: () => this.allPublishStats(),
      connectionBuffers: () => this.connectionBuffers(),
      reportSentBytes: () => {
        for (const conn of this.connections) this.reportSentBytes(conn);
      },
      queuedBytes: () => {
        const peak = this.queuedBytesPeak;
        this.queuedBytesPeak = this.queuedBytes;
        return { now: this.queuedBytes, peak };
      },
      foldedLabels: () => ({ ident: this.identLabel.folded, chan: this.channelLabel.folded }),
      connectionsOpen: () => this.admission.connections,
    });
    const gc = opts.idleGc === false ? null : typeof opts.idleGc === 'function' ? opts.idleGc : obtainGc();
    if (gc) {
      this.idleGc = new IdleGc(
        gc,
        { burstBytes: 32 * 1024 * 1024, quietBytes: 1024 * 1024, periodMs: 2000, followUpMs: 6000 },
        () => this.routedBytes,
        () => this.queuedBytes,
      );
    }
    const onClientPublish = opts.onClientPublish;
    if (onClientPublish !== undefined) {
      this.clientPublished = (ident, channel, payload) => {
        try {
          onClientPublish(ident, channel, payload);
        } catch (err) {
          this.logger.error({ err, ident, channel }, 'hpfeeds onClientPublish hook failed');
        }
      };
    }
    this.peers = new PeerResolution(opts.resolvePeer, this.logger);
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
    // The listening server is always plain TCP, so connection caps apply to raw sockets before
    // any TLS work; admitted sockets of a TLS endpoint are handed to a (non-listening) TLS server.
    const server: Server = createTcpServer({ allowHalfOpen: ep.kind === 'tcp' });
    let admitted: (socket: Socket, peer: PeerAddress | undefined) => void;
    if (ep.kind === 'tls') {
      const [cert, key] = await Promise.all([readFile(ep.certPath!), readFile(ep.keyPath!)]);
      // No allowHalfOpen here: with it, a TLS socket whose handshake fails stays half-open and
      // server.close() waits on it forever. A client's half-close then ends our side at once;
      // what it sent before is still handled, only our replies to it are cut short.
      const tlsServer = createTlsServer({ cert, key, handshakeTimeout: this.limits.authTimeoutMs });
      tlsServer.on('secureConnection', (socket: Socket) => this.accept(socket, this.peers.of(socket)));
      tlsServer.on('tlsClientError', (err: Error, socket: Socket) => {
        this.metrics.connectionError.inc({ ident: '', category: 'tls-handshake' });
        const peer = this.peers.of(socket) ?? (socket.remoteAddress !== undefined ? { address: socket.remoteAddress, port: socket.remotePort } : undefined);
        this.logger.debug({ peer: peer && `${peer.address}:${peer.port}`, err: err.message }, 'hpfeeds TLS handshake failed');
        // A handshake timeout is reported here with the socket still open: close it.
        socket.destroy();
      });
      admitted = (socket, peer) => {
        if (peer !== undefined) this.peers.remember(socket, peer);
        tlsServer.emit('connection', socket);
      };
    } else {
      admitted = (socket, peer) => this.accept(socket, peer);
    }
    // Who it is first (a PROXY header comes before any TLS byte), then the caps, for that address.
    server.on('connection', (socket: Socket) =>
      this.peers.take(socket, (raw, peer) => {
        if (this.admit(raw, peer?.address ?? raw.remoteAddress ?? '')) admitted(raw, peer);
      }),
    );
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

  /** Connection caps, applied to raw sockets (so TLS handshakes count too). False: refused and destroyed. */
  private admit(socket: Socket, address: string): boolean {
    const refused = this.closing ? 'closing' : this.admission.admit(address);
    if (refused !== undefined) {
      socket.destroy();
      if (refused === 'closing') return false;
      this.metrics.connectionsRefused.inc({ reason: refused });
      this.admission.log.warn(
        `refused-${refused}`,
        address,
        {
          reason: refused,
          limit: refused === 'global' ? this.admission.limits.maxConnections : this.admission.limits.maxConnectionsPerAddress,
        },
        'hpfeeds connection refused: connection cap reached',
      );
      return false;
    }
    this.rawSockets.add(socket);
    socket.once('close', () => {
      this.rawSockets.delete(socket);
      this.admission.release(address);
    });
    return true;
  }

  private accept(socket: Socket, peer: PeerAddress | undefined): void {
    if (this.closing || socket.destroyed) {
      socket.destroy();
      return;
    }
    this.metrics.connectionMade.inc();
    this.metrics.clientConnections.inc();
    this.connections.add(new Connection(this, socket, peer ?? { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }));
  }

  /**
   * Publishes from trusted in-process code (no TCP hop, no ACL check). Counted like a client
   * publish under `ident`. Never blocks: a subscriber whose queue is full loses the message, and
   * that is counted per subscriber. Throws HpfeedsProtocolError if ident or channel exceed 255
   * UTF-8 bytes.
   */
  publish(ident: string, channel: string, payload: Uint8Array | string): void {
    if (this.closing) return;
    const payloadLength = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.byteLength;
    const route = this.channels.get(channel);
    if (route === undefined || route.subscribers.length === 0) {
      // Nobody to deliver to (most channels of a busy core, e.g. each pot type's own): checked and
      // counted like any publish, but no frame is built and copied.
      checkPublishNames(ident, channel);
      this.publishStatsFor(ident, channel).record(payloadLength);
      return;
    }
    const arena = this.arena;
    const end = arena.encode(ident, channel, payload, payloadLength);
    this.route(channel, arena.buf, arena.start, end, undefined, payloadLength, this.publishStatsFor(ident, channel));
  }

  /**
   * @internal Queues one encoded PUBLISH frame (bytes [frameStart, frameEnd) of buf, valid until
   * the end of this turn) for every subscriber of `channel`. Hot path: allocates nothing.
   * Returns true if `source` (an external publisher) must stop reading: a subscriber it feeds is
   * past its high-water mark, or all queues together are past half the global budget.
   */
  route(channel: string, buf: Buffer, frameStart: number, frameEnd: number, source: Connection | undefined, payloadLength: number, stats: PublishStats): boolean {
    stats.record(payloadLength);
    const route = this.channels.get(channel);
    if (route === undefined) return false;
    const subscribers = route.subscribers;
    const start = route.bytes;
    const length = frameEnd - frameStart;
    let queued = false;
    let pause = false;
    let delivered = 0;
    for (let i = 0; i < subscribers.length; i++) {
      const sub = subscribers[i];
      const firstThisTurn = !sub.queue.hasPending;
      const result = sub.queue.offer(route, start, length);
      if (result === OFFER_DROPPED) continue;
      delivered++;
      if (!queued) {
        queued = true;
        if (!route.active) this.flusher.routeActivated(route);
        route.push(buf, frameStart, frameEnd);
        this.flusher.framePushed(source !== undefined);
        this.reserveQueued(length);
      }
      if (firstThisTurn) this.flusher.schedule(sub);
      if (result === OFFER_CONGESTED && source !== undefined) {
        sub.queue.addWaiter(source);
        pause = true;
      }
    }
    this.deliveryCount += delivered;
    // Bytes handed to subscribers: what a burst costs in buffers and write requests.
    this.routedBytes += length * delivered;
    if (source !== undefined && this.queuedBytes > this.sendLimits.maxQueuedBytes / 2) {
      this.globalWaiters.add(source);
      pause = true;
    }
    return pause;
  }

  /** @internal */
  reserveQueued(bytes: number): void {
    this.queuedBytes += bytes;
    if (this.queuedBytes > this.queuedBytesPeak) this.queuedBytesPeak = this.queuedBytes;
  }

  /** @internal */
  releaseTick(tick: TickBuffer): void {
    this.pieces.give(tick.chunks);
    this.releaseQueued(tick.size);
  }

  /** @internal */
  releaseQueued(bytes: number): void {
    this.queuedBytes -= bytes;
    if (this.globalWaiters.size > 0 && this.queuedBytes <= this.sendLimits.maxQueuedBytes / 4) {
      const waiters = [...this.globalWaiters];
      this.globalWaiters.clear();
      for (const w of waiters) w.releaseBackpressure();
    }
  }

  /** @internal Label-bounded publish statistics (one entry per folded ident and channel). */
  publishStatsFor(ident: string, channel: string): PublishStats {
    const identLabel = this.identLabel.fold(ident);
    const channelLabel = this.channelLabel.fold(channel);
    let byChannel = this.stats.get(identLabel);
    if (byChannel === undefined) this.stats.set(identLabel, (byChannel = new Map()));
    let stats = byChannel.get(channelLabel);
    if (stats === undefined) byChannel.set(channelLabel, (stats = new PublishStats(identLabel, channelLabel)));
    return stats;
  }

  /** @internal */
  addSubscription(conn: Connection, channel: string): void {
    if (conn.subscriptions.has(channel)) return;
    conn.subscriptions.add(channel);
    let route = this.channels.get(channel);
    if (route === undefined) this.channels.set(channel, (route = new ChannelRoute(channel, this.pieces)));
    route.subscribers = [...route.subscribers, conn];
    this.metrics.subscriptions.inc({ ident: conn.identLabels.ident, chan: this.channelLabel.fold(channel) });
  }

  /** @internal */
  removeSubscription(conn: Connection, channel: string): void {
    if (!conn.subscriptions.delete(channel)) return;
    const route = this.channels.get(channel);
    if (route !== undefined) {
      route.subscribers = route.subscribers.filter((c) => c !== conn);
      if (route.subscribers.length === 0) this.channels.delete(channel);
    }
    this.metrics.subscriptions.dec({ ident: conn.identLabels.ident, chan: this.channelLabel.fold(channel) });
  }

  /** See BrokerOptions.flushLingerMs. */
  get flushLingerMs(): number {
    return this.flusher.lingerMs;
  }

  /** @internal */
  connectionClosed(conn: Connection): void {
    this.reportSentBytes(conn);
    this.globalWaiters.delete(conn);
    if (this.connections.delete(conn)) this.metrics.clientConnections.dec();
  }

  private reportSentBytes(conn: Connection): void {
    const q = conn.queue;
    if (q.sentBytes > q.reportedSentBytes) {
      this.metrics.sendBufferFill.inc(conn.identLabels, q.sentBytes - q.reportedSentBytes);
      q.reportedSentBytes = q.sentBytes;
    }
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
    this.idleGc?.stop();
    const listenersClosed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    this.peers.closePending();
    const connections = [...this.connections];
    for (const conn of connections) conn.shutdown();
    this.flusher.flushLingering();
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
      if (conn.isReady) yield { ident: conn.identLabels.ident, send: conn.sendBufferBytes, receive: conn.receiveBufferBytes };
    }
  }
}
