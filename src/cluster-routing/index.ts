// Session routing: what lets several `apiary serve` instances share one database and one Redis.
// A node's session lives on one instance; this domain keeps the registry of who holds which node
// (registry.ts), the notices instances exchange (bus.ts), and the abuse limits they share
// (shared-limits.ts). Domains use it through small interfaces of their own (CommandRouting in
// src/commands, RemotePresence in src/nodes, AuthStore in src/hpfeeds); only the composition
// (src/app.ts, src/app/cluster.ts) joins them.
// Built only in cluster mode (CLUSTER_ENABLED / INSTANCE_ID, with the fan-out: src/app/cluster.ts); with
// one instance none of this exists and nothing extra goes to Redis.
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import type { AuthChangeListener, AuthStore } from '../hpfeeds/index.js';
import { RoutingBus } from './bus.js';
import { SessionRegistry, type RegistryGateway } from './registry.js';
import { RedisFailureWindow } from './shared-limits.js';
import { createRoutingMetrics, type RoutingMetrics } from './metrics.js';

export { RoutingBus, type RoutingNotices, type RemoteSession } from './bus.js';
export { SessionRegistry, TAKEN_OVER, type RegistryGateway } from './registry.js';
export { RedisFailureWindow } from './shared-limits.js';

export interface SessionRoutingOptions {
  redisUrl: string;
  instanceId: string;
  logger: FastifyBaseLogger;
  /** Registry heartbeat (ms); an instance silent for three of them counts as dead. Default 2000. */
  heartbeatMs?: number;
  /** How long start waits for Redis. Default 10 s. */
  startTimeoutMs?: number;
  /** Where the apiary_routing_* metrics are registered. */
  registry?: Registry;
}

export interface SessionRouting {
  readonly bus: RoutingBus;
  readonly registry: SessionRegistry;
  /** Follows the gateway's sessions and serves its look-ups of sessions held elsewhere. */
  attachGateway(gateway: RegistryGateway & { setRemotePresence(p: { remote(name: string): LiveSession | undefined }): void }): void;
  /** hpfeeds credentials whose changes, here or on any instance, re-check live connections everywhere. */
  sharedAuthStore(inner: AuthStore): AuthStore;
  /** Runs `local` here and publishes the ids, so `remote` runs on every other instance. */
  onTokensRevoked(remote: (id: string) => void): (id: string) => void;
  onSessionsEnded(remote: (keys: readonly string[]) => void): (keys: readonly string[]) => void;
  /** A failure window shared by every instance (TOTP guesses, console logins); fails open without Redis. */
  failureWindow(name: string, max: number, windowMs: number): RedisFailureWindow;
  close(): Promise<void>;
}

interface LiveSession {
  nodeId: string;
  transport: string;
  remoteAddress: string;
  connectedAt: number;
  lastSeen: number;
}

/** Connects to Redis, joins the registry and loads it. Call before the node gateway exists. */
export async function startSessionRouting(opts: SessionRoutingOptions): Promise<SessionRouting> {
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  let sessions: SessionRegistry | undefined;
  const metrics: RoutingMetrics | undefined =
    opts.registry &&
    createRoutingMetrics(opts.registry, {
      remoteSessions: () => sessions?.counts().remoteSessions ?? 0,
      liveInstances: () => sessions?.counts().liveInstances ?? 0,
    });
  const bus = new RoutingBus({
    redisUrl: opts.redisUrl,
    instanceId: opts.instanceId,
    logger: opts.logger,
    onRedisError: () => metrics?.redisError(),
    onNotice: (kind) => metrics?.notice(kind),
  });
  const registry = (sessions = new SessionRegistry({ bus, logger: opts.logger, heartbeatMs: opts.heartbeatMs, metrics }));
  try {
    // A Redis that is not there at start is a configuration problem, not something to wait out.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      (async () => {
        await bus.start();
        await registry.start();
      })(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`session routing could not reach Redis within ${startTimeoutMs} ms`)), startTimeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    await registry.close().catch(() => undefined);
    await bus.close();
    throw err;
  }
  opts.logger.info({ instance: opts.instanceId }, 'session routing on: node sessions, commands and revocations are shared through Redis');
  return {
    bus,
    registry,
    attachGateway(gateway) {
      registry.attach(gateway);
      gateway.setRemotePresence({
        remote(name) {
          const r = registry.remote(name);
          // Its last_seen is in the database (written by its holder); connectedAt is a floor.
          return r && { nodeId: r.nodeId, transport: r.transport, remoteAddress: r.remoteAddress, connectedAt: r.connectedAt, lastSeen: r.connectedAt };
        },
      });
    },
    sharedAuthStore(inner) {
      return {
        get: (ident) => inner.get(ident),
        watch(listener: AuthChangeListener) {
          const stopInner = inner.watch?.((idents) => {
            listener(idents);
            if (idents) void bus.publish('authkeysChanged', { idents: [...idents] });
          });
          const remote = (n: { idents: string[] }) => listener(n.idents);
          bus.on('authkeysChanged', remote);
          return () => {
            stopInner?.();
            bus.off('authkeysChanged', remote);
          };
        },
      };
    },
    onTokensRevoked(remote) {
      bus.on('tokensRevoked', (n) => n.ids.forEach(remote));
      return (id) => void bus.publish('tokensRevoked', { ids: [id] });
    },
    onSessionsEnded(remote) {
      bus.on('sessionsEnded', (n) => remote(n.keys));
      return (keys) => void bus.publish('sessionsEnded', { keys: [...keys] });
    },
    failureWindow(name, max, windowMs) {
      let warned = 0;
      return new RedisFailureWindow(bus.redis, `${bus.keyPrefix}limit:${name}:`, max, windowMs, (err) => {
        // One line a minute per window while Redis is away.
        if (Date.now() - warned < 60_000) return;
        warned = Date.now();
        opts.logger.warn({ err: err.message, limit: name }, 'shared guess limit unavailable (Redis); attempts are let through uncounted until it is back');
      });
    },
    async close() {
      await registry.close();
      await bus.close();
    },
  };
}
