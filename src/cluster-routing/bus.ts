// The notices instances send each other when several `apiary serve` share one Redis: a node's
// session moved (claimed / released), "wake this node's command lane", "close this node's
// connection", a token or console session was revoked, an hpfeeds authkey changed. One Redis
// pub/sub channel carries them all as JSON; a notice is a hint that something changed in the
// shared state (Redis registry, database), never the state itself, so a lost notice costs speed
// (the periodic sweeps and checks catch up), not correctness.
import type { FastifyBaseLogger } from 'fastify';
import { Cluster, type Redis, type RedisOptions } from 'ioredis';
import { clusterNodesOf, createRedisClient, createRedisSubscriber, parseRedisUrl, type RedisSubscriber } from '../redis/index.js';

/** Everything instances tell each other, by kind. */
export interface RoutingNotices {
  /** `instance` now holds the node's session, as its `epoch`-th owner. */
  claimed: { node: string; instance: string; epoch: number; session: RemoteSession };
  /** The holder of `epoch` let the node's session go. */
  released: { node: string; instance: string; epoch: number };
  /** A command of the node settled elsewhere: its holder should look at the node's lane. */
  wake: { node: string; to: string };
  /** An operator revoked, deleted or re-keyed the node: close its session wherever it is. */
  disconnect: { node: string; reason: string };
  /** API tokens revoked: close their WebSockets. */
  tokensRevoked: { ids: string[] };
  /** Console sessions ended (logout, user disabled...): close their WebSockets. */
  sessionsEnded: { keys: string[] };
  /** hpfeeds authkeys changed or removed: brokers re-check the live connections using them. */
  authkeysChanged: { idents: string[] };
}
export type NoticeKind = keyof RoutingNotices;

/** What the registry publishes about a live session (shown by every instance's node API). */
export interface RemoteSession {
  nodeId: string;
  transport: string;
  remoteAddress: string;
  connectedAt: number;
}

export interface RoutingBusOptions {
  redisUrl: string;
  instanceId: string;
  logger: FastifyBaseLogger;
  /** Key and channel prefix. Default 'apiary'. */
  prefix?: string;
  /** Counts every Redis error of the two clients. */
  onRedisError?: () => void;
  /** Counts every notice received, by kind. */
  onNotice?: (kind: string) => void;
}

type Listener<K extends NoticeKind> = (notice: RoutingNotices[K], from: string) => void;

export class RoutingBus {
  readonly instanceId: string;
  /** Commands client (the registry and the shared limiters use it too). */
  readonly redis: Redis | Cluster;
  /** Key prefix, a hash tag so that the registry's multi-key scripts work on a Redis Cluster. */
  readonly keyPrefix: string;
  /** Says 'ready' after every reconnect, on a Redis Cluster too (see src/redis/subscriber.ts). */
  private readonly subscriber: RedisSubscriber;
  private readonly channel: string;
  private readonly log: FastifyBaseLogger;
  private readonly listeners = new Map<NoticeKind, Set<Listener<NoticeKind>>>();
  private readonly readyListeners = new Set<() => void>();
  private closed = false;
  private readonly onNotice: ((kind: string) => void) | undefined;

  constructor(opts: RoutingBusOptions) {
    this.onNotice = opts.onNotice;
    this.instanceId = opts.instanceId;
    this.log = opts.logger;
    const prefix = opts.prefix ?? 'apiary';
    this.keyPrefix = `{${prefix}-routing}:`;
    this.channel = `${prefix}:routing`;
    const target = parseRedisUrl(opts.redisUrl);
    const base: RedisOptions = { retryStrategy: (times) => Math.min(100 * times, 1000), lazyConnect: false };
    this.redis = createRedisClient(target, { ...base, maxRetriesPerRequest: 1, commandTimeout: 3000, connectionName: `apiary-routing-${this.instanceId}` });
    const commands = this.redis;
    this.subscriber = createRedisSubscriber(
      target,
      { ...base, maxRetriesPerRequest: null, connectionName: `apiary-routing-sub-${this.instanceId}` },
      () => (commands instanceof Cluster ? clusterNodesOf(commands) : []),
    );
    let down = false;
    const onError = (which: string) => (err: Error) => {
      opts.onRedisError?.();
      if (!down) this.log.warn({ err: err.message, client: which }, 'session routing lost Redis; notices wait until it is back');
      down = true;
    };
    this.redis.on('error', onError('commands'));
    this.subscriber.on('error', onError('subscriber'));
    this.subscriber.on('ready', () => {
      if (down) this.log.info('session routing reconnected to Redis');
      down = false;
      // Notices sent while this instance was cut off are lost: whoever listens re-reads the state.
      for (const l of this.readyListeners) l();
    });
    this.subscriber.on('message', (channel: string, text: string) => {
      if (channel === this.channel) this.dispatch(text);
    });
  }

  /** Subscribes; resolves once notices flow (ioredis re-subscribes by itself after a reconnect). */
  async start(): Promise<void> {
    await this.subscriber.subscribe(this.channel);
  }

  /** Called whenever the subscription is (re)established after the first time. */
  onReconnect(listener: () => void): void {
    this.readyListeners.add(listener);
  }

  on<K extends NoticeKind>(kind: K, listener: Listener<K>): void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    set.add(listener as Listener<NoticeKind>);
  }

  off<K extends NoticeKind>(kind: K, listener: Listener<K>): void {
    this.listeners.get(kind)?.delete(listener as Listener<NoticeKind>);
  }

  /** Sends a notice to every other instance. Never throws; a failure is logged at debug. */
  publish<K extends NoticeKind>(kind: K, notice: RoutingNotices[K]): Promise<void> {
    if (this.closed) return Promise.resolve();
    const text = JSON.stringify({ kind, from: this.instanceId, ...notice });
    return this.redis.publish(this.channel, text).then(
      () => undefined,
      (err: Error) => this.log.debug({ err: err.message, kind }, 'routing notice not published'),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.subscriber.close();
    try {
      if (this.redis.status === 'ready') await Promise.race([this.redis.quit(), new Promise((r) => setTimeout(r, 2000).unref())]);
    } catch {
      // going away anyway
    }
    this.redis.disconnect();
  }

  private dispatch(text: string): void {
    let msg: { kind?: unknown; from?: unknown } & Record<string, unknown>;
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.kind !== 'string' || typeof msg.from !== 'string' || msg.from === this.instanceId) return;
    this.onNotice?.(msg.kind);
    const set = this.listeners.get(msg.kind as NoticeKind);
    if (!set) return;
    for (const l of set) {
      try {
        l(msg as never, msg.from);
      } catch (err) {
        this.log.error({ err, kind: msg.kind }, 'routing notice listener threw');
      }
    }
  }
}
