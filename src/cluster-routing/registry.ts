// Which instance holds each node's session, shared in Redis when several instances serve one fleet.
//
// - Registry: hash `owners` node -> "<epoch> <instance> <session json>". Every registration claims
//   the node with the next epoch (hash `epochs`, HINCRBY, in one script with the HSET), so the
//   newest session always has the highest epoch, wherever it lives.
// - Takeover: a claim is announced (notice `claimed`); an instance that still holds an older
//   session of that node closes it at once with reason `taken_over`. Its own claim racing a newer
//   one is settled the same way when its epoch comes back lower than one already announced.
// - Release: a session that ends releases the node only if the registry still shows its epoch
//   (compare-and-delete), so a late close of a stale session never erases the new owner.
// - Liveness: each instance refreshes its score in the zset `instances` (expiry time); entries of
//   an instance that stopped refreshing (kill -9) are ignored and purged, and an instance starting
//   again under the same id releases what its previous process held (no session survives).
// Every instance keeps a mirror of the registry, loaded at start and kept by the notices, so the
// questions asked per request (is this node online somewhere? who holds it?) cost no Redis call;
// the one question that must be exact (is my session still the current one, right before a command
// is written) asks Redis.
import type { FastifyBaseLogger } from 'fastify';
import type { RemoteSession, RoutingBus } from './bus.js';
import type { RoutingMetrics } from './metrics.js';

/** What the registry needs from the node gateway (src/nodes' NodeGatewayHandle satisfies it). */
export interface RegistryGateway {
  isOnline(nodeName: string): boolean;
  onlineNodes(): string[];
  /** Closes this instance's session of the node, without telling the other instances. */
  dropLocal(nodeName: string, reason: string): void;
  on(ev: 'online', fn: (n: { nodeName: string; nodeId: string; address: string; transport: string }) => void): unknown;
  on(ev: 'offline', fn: (n: { nodeName: string; reason: string }) => void): unknown;
  on(ev: 'disconnectRequested', fn: (n: { nodeName: string; reason: string }) => void): unknown;
  /**
   * The node's session died with its instance and nobody holds it now: mark it Offline in the
   * database (its holder never did). Called on one instance only: the one whose release won.
   */
  markOrphanedOffline?(nodeName: string): void;
}

export interface SessionRegistryOptions {
  bus: RoutingBus;
  logger: FastifyBaseLogger;
  /** How often this instance says it is alive. Default 2000 ms; it counts as dead after 3 missed. */
  heartbeatMs?: number;
  /** How often the whole registry is re-read (the notices keep it current in between). Default 30 s. */
  resyncMs?: number;
  metrics?: RoutingMetrics;
}

interface Owner {
  instance: string;
  epoch: number;
  session: RemoteSession;
}

/** The reason a session closes with when a newer one of the same node took over elsewhere. */
export const TAKEN_OVER = 'taken_over';

const CLAIM = `
local e = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[2], ARGV[1], e .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
return e`;
const RELEASE = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0`;

function parseOwner(value: string): Owner | undefined {
  const a = value.indexOf(' ');
  const b = value.indexOf(' ', a + 1);
  if (a < 0 || b < 0) return undefined;
  const epoch = Number(value.slice(0, a));
  try {
    return { epoch, instance: value.slice(a + 1, b), session: JSON.parse(value.slice(b + 1)) as RemoteSession };
  } catch {
    return undefined;
  }
}

export class SessionRegistry {
  readonly instanceId: string;
  private readonly bus: RoutingBus;
  private readonly log: FastifyBaseLogger;
  private readonly keys: { owners: string; epochs: string; instances: string };
  private readonly heartbeatMs: number;
  private readonly resyncMs: number;
  private readonly metrics: RoutingMetrics | undefined;
  private lastResync = 0;
  /** When this instance's heartbeat last reached Redis. */
  private lastBeat: number | undefined;
  /** Until then nobody is newly counted dead (see refreshAlive). */
  private graceUntil = 0;
  /** The registry as last seen: node -> owner (this instance's own claims included). */
  private readonly mirror = new Map<string, Owner>();
  /** Instances whose heartbeat is current. */
  private alive = new Set<string>();
  /** Epoch of each session this instance holds (set once its claim is in Redis). */
  private readonly localEpoch = new Map<string, number>();
  /** What each session held here was claimed with (kept for claiming it again). */
  private readonly localSessions = new Map<string, RemoteSession>();
  /** Highest epoch another instance announced per node, for claims racing each other. */
  private readonly remoteEpoch = new Map<string, number>();
  private readonly wakeListeners = new Set<(node: string) => void>();
  private readonly pending = new Set<Promise<unknown>>();
  private gateway: RegistryGateway | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: SessionRegistryOptions) {
    this.bus = opts.bus;
    this.instanceId = opts.bus.instanceId;
    this.log = opts.logger;
    this.heartbeatMs = opts.heartbeatMs ?? 2000;
    this.resyncMs = opts.resyncMs ?? 30_000;
    this.metrics = opts.metrics;
    const p = opts.bus.keyPrefix;
    this.keys = { owners: `${p}owners`, epochs: `${p}epochs`, instances: `${p}instances` };
    this.alive.add(this.instanceId);

    this.bus.on('claimed', (n) => this.onClaimed(n));
    this.bus.on('released', (n) => {
      const o = this.mirror.get(n.node);
      if (o && o.epoch === n.epoch) this.mirror.delete(n.node);
    });
    this.bus.on('wake', (n) => {
      if (n.to === this.instanceId) this.emitWake(n.node);
    });
    this.bus.on('disconnect', (n) => {
      if (this.gateway?.isOnline(n.node)) {
        this.log.info({ nodeName: n.node, reason: n.reason }, 'closing the node session at the request of another instance');
        this.gateway.dropLocal(n.node, n.reason);
      }
    });
    // Notices missed while cut off from Redis: read the registry again, claim what we hold.
    this.bus.onReconnect(() => {
      if (!this.heartbeat || this.closed) return;
      void this.refresh().catch((err: Error) => this.log.warn({ err: err.message }, 'session registry re-read failed; retried at the next heartbeat'));
    });
  }

  /**
   * Joins the registry: marks this instance alive, releases what a previous process under the same
   * id held, loads the mirror. Call before the gateway accepts nodes.
   */
  async start(): Promise<void> {
    await this.beat();
    const all = (await this.bus.redis.hgetall(this.keys.owners)) as Record<string, string>;
    for (const [node, value] of Object.entries(all)) {
      const o = parseOwner(value);
      if (o?.instance === this.instanceId) await this.releaseInRedis(node, o.epoch);
    }
    await this.refresh();
    this.heartbeat = setInterval(() => {
      void this.beat()
        .then(async () => {
          if (Date.now() - this.lastResync >= this.resyncMs) return this.refresh();
          const before = this.alive;
          await this.refreshAlive();
          // An instance just died: its nodes are released (and marked Offline) now, not at the next resync.
          for (const instance of before) if (!this.alive.has(instance)) return this.refresh();
        })
        .catch((err: Error) => this.log.debug({ err: err.message }, 'session registry heartbeat failed'));
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Follows the gateway's sessions from now on. */
  attach(gateway: RegistryGateway): void {
    this.gateway = gateway;
    gateway.on('online', (n) => {
      const session = { nodeId: n.nodeId, transport: n.transport, remoteAddress: n.address, connectedAt: Date.now() };
      this.localSessions.set(n.nodeName, session);
      this.track(this.claim(n.nodeName, session));
    });
    gateway.on('offline', (n) => {
      const epoch = this.localEpoch.get(n.nodeName);
      this.localEpoch.delete(n.nodeName);
      this.localSessions.delete(n.nodeName);
      if (epoch === undefined || n.reason === TAKEN_OVER) return;
      const mine = this.mirror.get(n.nodeName);
      if (mine && mine.instance === this.instanceId && mine.epoch === epoch) this.mirror.delete(n.nodeName);
      this.track(
        this.releaseInRedis(n.nodeName, epoch).then((released) => {
          if (released) return this.bus.publish('released', { node: n.nodeName, instance: this.instanceId, epoch });
        }),
      );
    });
    gateway.on('disconnectRequested', (n) => this.track(this.bus.publish('disconnect', { node: n.nodeName, reason: n.reason })));
  }

  // ------------------------------------------------------------ questions

  /** The instance holding the node's session (this one included), or undefined. */
  ownerOf(node: string): string | undefined {
    // A session here is taken as current (a stale one hands its jobs over once it is closed).
    if (this.gateway?.isOnline(node)) return this.instanceId;
    const o = this.mirror.get(node);
    return o && this.alive.has(o.instance) ? o.instance : undefined;
  }

  /** The node's session on another live instance, if any. */
  remote(node: string): (RemoteSession & { instance: string }) | undefined {
    const o = this.mirror.get(node);
    if (!o || o.instance === this.instanceId || !this.alive.has(o.instance)) return undefined;
    return { ...o.session, instance: o.instance };
  }

  /** Sessions the other live instances hold, and the live instances (for metrics). */
  counts(): { remoteSessions: number; liveInstances: number } {
    let remoteSessions = 0;
    for (const o of this.mirror.values()) if (o.instance !== this.instanceId && this.alive.has(o.instance)) remoteSessions++;
    return { remoteSessions, liveInstances: this.alive.size };
  }

  /** Nodes online on any live instance. */
  onlineNodes(): string[] {
    const names = new Set(this.gateway?.onlineNodes() ?? []);
    for (const [node, o] of this.mirror) if (this.alive.has(o.instance)) names.add(node);
    return [...names];
  }

  /** Exact, from Redis: this instance's session of the node is the newest one. */
  async isCurrentLocal(node: string): Promise<boolean> {
    const epoch = this.localEpoch.get(node);
    if (epoch === undefined || !this.gateway?.isOnline(node)) return false;
    const value = await this.bus.redis.hget(this.keys.owners, node);
    const o = value ? parseOwner(value) : undefined;
    return o !== undefined && o.instance === this.instanceId && o.epoch === epoch;
  }

  /** Asks the node's holder (if another instance) to look at the node's command lane. */
  notifyOwner(node: string): void {
    const owner = this.ownerOf(node);
    if (owner && owner !== this.instanceId) this.track(this.bus.publish('wake', { node, to: owner }));
  }

  /** Called with a node whose lane should be looked at: claimed here, or woken by another instance. */
  onWake(listener: (node: string) => void): void {
    this.wakeListeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => setTimeout(r, 3000).unref())]);
    await this.bus.redis.zrem(this.keys.instances, this.instanceId).catch(() => undefined);
  }

  // ------------------------------------------------------------ internals

  private async claim(node: string, session: RemoteSession): Promise<void> {
    const epoch = Number(await this.bus.redis.eval(CLAIM, 2, this.keys.epochs, this.keys.owners, node, this.instanceId, JSON.stringify(session)));
    if (!this.gateway?.isOnline(node)) {
      // Gone while claiming: give it back unless someone newer holds it.
      await this.releaseInRedis(node, epoch);
      return;
    }
    // Two claims of this instance for one node can come back out of order (a session replaced by
    // a newer one here): the newer epoch stands.
    if ((this.localEpoch.get(node) ?? 0) > epoch) return;
    this.localEpoch.set(node, epoch);
    this.mirror.set(node, { instance: this.instanceId, epoch, session });
    this.metrics?.claim();
    if ((this.remoteEpoch.get(node) ?? 0) > epoch) {
      this.dropTakenOver(node);
      return;
    }
    await this.bus.publish('claimed', { node, instance: this.instanceId, epoch, session });
    this.emitWake(node);
  }

  private onClaimed(n: { node: string; instance: string; epoch: number; session: RemoteSession }): void {
    const seen = this.mirror.get(n.node);
    if (!seen || seen.epoch < n.epoch) this.mirror.set(n.node, { instance: n.instance, epoch: n.epoch, session: n.session });
    this.alive.add(n.instance);
    if ((this.remoteEpoch.get(n.node) ?? 0) < n.epoch) this.remoteEpoch.set(n.node, n.epoch);
    if (this.remoteEpoch.size > 100_000) this.remoteEpoch.clear();
    const mine = this.localEpoch.get(n.node);
    // Our session is older: the node reconnected elsewhere, so this one is stale (half-open
    // socket, or a node that moved). A claim of ours still in flight is judged when it returns.
    if (mine !== undefined && mine < n.epoch) this.dropTakenOver(n.node);
  }

  private dropTakenOver(node: string): void {
    this.localEpoch.delete(node);
    if (!this.gateway?.isOnline(node)) return;
    this.log.info({ nodeName: node }, 'node session taken over by another instance; closing the stale one here');
    this.metrics?.takenOver();
    this.gateway.dropLocal(node, TAKEN_OVER);
  }

  private async releaseInRedis(node: string, epoch: number): Promise<boolean> {
    const done = await this.bus.redis.eval(RELEASE, 1, this.keys.owners, node, `${epoch} ${this.instanceId} `);
    return Number(done) === 1;
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    await this.bus.redis.zadd(this.keys.instances, now + 3 * this.heartbeatMs, this.instanceId);
    // Back after missed beats: the others could not beat either, so their scores ran out for the
    // same reason; they get three beats from now to show they are alive.
    if (this.lastBeat !== undefined && now - this.lastBeat > 2 * this.heartbeatMs) this.graceUntil = Date.now() + 3 * this.heartbeatMs;
    this.lastBeat = now;
  }

  /**
   * Who is alive: whose score has not run out. An instance that could not beat itself lately (Redis
   * away: a restart, a failover) cannot tell a dead instance from one that was cut off like itself,
   * so then, and for three beats after it beats again, it counts nobody dead that it counted alive
   * before; otherwise the first instance back after an outage longer than three beats would release
   * every other instance's sessions and mark their nodes Offline while they are still connected.
   */
  private async refreshAlive(): Promise<void> {
    const now = Date.now();
    const live = (await this.bus.redis.zrangebyscore(this.keys.instances, now, '+inf')) as string[];
    const judging = this.lastBeat !== undefined && now - this.lastBeat <= 2 * this.heartbeatMs && now >= this.graceUntil;
    this.alive = new Set([...live, this.instanceId, ...(judging ? [] : this.alive)]);
  }

  /** Re-reads the live instances and the registry; purges entries of dead instances. */
  private async refresh(): Promise<void> {
    try {
      await this.resync();
    } catch (err) {
      // Redis still away (a failover under way): tried again at the next heartbeat, not only at
      // the next periodic resync.
      this.lastResync = 0;
      throw err;
    }
  }

  private async resync(): Promise<void> {
    const now = Date.now();
    this.lastResync = now;
    await this.refreshAlive();
    const all = (await this.bus.redis.hgetall(this.keys.owners)) as Record<string, string>;
    // Rebuilt in the same turn the snapshot arrives, so no notice is applied and then lost.
    const dead: [string, Owner][] = [];
    this.mirror.clear();
    for (const [node, value] of Object.entries(all)) {
      const o = parseOwner(value);
      if (!o) continue;
      if (this.alive.has(o.instance)) this.mirror.set(node, o);
      else dead.push([node, o]);
    }
    // An instance that died without releasing: its nodes are offline until they reconnect. Of the
    // instances purging at once one wins each release, and that one marks the node Offline.
    for (const [node, o] of dead) {
      const released = await this.bus.redis.eval(RELEASE, 1, this.keys.owners, node, `${o.epoch} ${o.instance} `);
      if (Number(released) === 1 && this.gateway && !this.gateway.isOnline(node)) {
        this.log.info({ nodeName: node, instance: o.instance }, 'node session died with its instance; node marked Offline until it reconnects');
        this.gateway.markOrphanedOffline?.(node);
      }
    }
    await this.bus.redis.zremrangebyscore(this.keys.instances, '-inf', now - 60_000);
    // Our own entries may be gone too (we were taken for dead while our event loop stalled, or
    // Redis lost them): sessions held here are claimed again.
    this.reclaimAll();
  }

  /**
   * After a Redis outage or a resync: claim again every session held here that the registry does
   * not show as ours, unless another live instance holds a newer session of that node (a takeover
   * notice we missed): then ours is the stale one and closes.
   */
  private reclaimAll(): void {
    const gw = this.gateway;
    if (!gw || this.closed) return;
    for (const node of gw.onlineNodes()) {
      const o = this.mirror.get(node);
      const mine = this.localEpoch.get(node);
      const session = this.localSessions.get(node);
      if (!session || (o && o.instance === this.instanceId && o.epoch === mine)) continue;
      if (o && o.instance !== this.instanceId && this.alive.has(o.instance)) {
        const theirsIsNewer = mine !== undefined ? o.epoch > mine : o.session.connectedAt >= session.connectedAt;
        if (theirsIsNewer) {
          this.dropTakenOver(node);
          continue;
        }
      }
      this.track(this.claim(node, session));
    }
  }

  private emitWake(node: string): void {
    for (const l of this.wakeListeners) {
      try {
        l(node);
      } catch (err) {
        this.log.error({ err, nodeName: node }, 'node wake listener threw');
      }
    }
  }

  private track(p: Promise<unknown>): void {
    const t = p.catch((err: Error) => this.log.warn({ err: err.message }, 'session registry update failed; repaired at the next reconnect or registration'));
    this.pending.add(t);
    void t.finally(() => this.pending.delete(t));
  }
}
