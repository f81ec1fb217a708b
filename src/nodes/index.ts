// Node gateway: HoneyBee node sessions over TCP/TLS and WebSocket, TOTP enrollment, node and pot
// state, operator routes. Everything other domains may use is exported here.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { DatabaseHandle, PgDatabaseHandle } from '../db/index.js';
import { ConnectionLimiter, type ConnectionLimitOptions } from './connection-limit.js';
import { Enrollment, type EnrollmentMode, type RateLimitOptions } from './enrollment.js';
import type { AckGate } from './ack-hold.js';
import { GatewayCore, type NodeGateway, type RemotePresence } from './gateway.js';
import type { FailureCounterFactory } from './guess-limiter.js';
import { KeyedLogThrottle } from './log-throttle.js';
import { NodeMetrics } from './metrics.js';
import { NodeRetention, type NodeRetentionOptions } from './retention.js';
import { nodeRestRoutes } from './routes.js';
import { NodeService } from './service.js';
import { PgNodeStore } from './pg-store.js';
import { SqliteNodeStore } from './sqlite-store.js';
import type { NodeStore, NodeStoreLimits } from './store.js';
import { listenTcp, type TcpListener, type TcpListenOptions } from './tcp.js';
import { nodeWsRoute } from './ws.js';

export type { EnrollmentMode, RateLimitOptions } from './enrollment.js';
export type { NodeRetentionOptions } from './retention.js';
export type { ConnectionLimitOptions } from './connection-limit.js';
export type { FailureCounter, FailureCounterFactory } from './guess-limiter.js';
export type { AckGate } from './ack-hold.js';
export type { NodeGateway, NodeGatewayEvents, NodeGatewayEventName, LiveSessionInfo, RemotePresence } from './gateway.js';
export { NodeService, NodeServiceError } from './service.js';
export type { NodeInfo, NodeDetail, PotInfo, NodeLogEntry, UnknownRegistrationInfo, PendingRejection } from './service.js';
export type { Enrollment as NodeEnrollmentState, NodeListFilter, NodeStore, NodeStoreLimits } from './store.js';
export { SqliteNodeStore } from './sqlite-store.js';
export { PgNodeStore } from './pg-store.js';
export { POT_MISSING } from './store.js';
export type { PeerAddress, PeerResolver, TcpListener, TcpListenOptions } from './tcp.js';
export { isValidNodeName } from './names.js';

export interface NodeGatewayOptions {
  /** Where nodes, pots and the node log are kept: the SQLite handle, or a PostgreSQL one. */
  db: DatabaseHandle | PgDatabaseHandle;
  logger: FastifyBaseLogger;
  registry: Registry;
  /** How unknown node names are treated. Default 'provisioned'. */
  enrollment?: EnrollmentMode;
  /** The nodes' heartbeat (NodeStatusUpdate) interval. Default 30 000 ms. */
  heartbeatIntervalMs?: number;
  /** A node silent for staleFactor x heartbeatIntervalMs is marked offline. Default 3. */
  staleFactor?: number;
  /** How often staleness is checked. Default min(heartbeatIntervalMs, 10 000) ms. */
  sweepIntervalMs?: number;
  /** Largest accepted line (TCP) or frame (WebSocket), bytes. Default 1 MiB. */
  lineMaxBytes?: number;
  /** A connection must register within this time. Default 10 000 ms. */
  authTimeoutMs?: number;
  rateLimit?: RateLimitOptions;
  /** Where TOTP guess failures are counted; default in memory. Session routing shares them in Redis. */
  guessCounters?: FailureCounterFactory;
  /** approve mode: unknown names beyond this many pending rows are refused unrecorded. Default 1000. */
  maxPendingNodes?: number;
  /** approve mode: pending rows first seen from one address (IPv6: one /64). Default 20. */
  maxPendingPerAddress?: number;
  /** approve mode: a pending row not retried for this long is deleted. Default 1 h. */
  pendingTtlMs?: number;
  /** Caps of node-supplied strings stored, and of node_log rows per node. */
  storage?: { logMessageMaxBytes?: number; potMessageMaxBytes?: number; maxLogRowsPerNode?: number; maxPotsPerNode?: number };
  /** Connection caps (total, per address) over TCP/TLS and WebSocket, and the pre-registration budget. */
  connectionLimits?: ConnectionLimitOptions;
  /** Retention of node_log and of the unknown-name aggregates. */
  retention?: NodeRetentionOptions;
  /** last_seen is written to the database at most once per this interval per node. Default 1000 ms. */
  lastSeenWriteIntervalMs?: number;
  /**
   * Session routing (several instances on one database): nodes online on other instances at start.
   * They are not marked Offline at start like the others. Default: none.
   */
  onlineElsewhere?: ReadonlySet<string>;
}

export interface NodeGatewayHandle extends NodeGateway {
  readonly service: NodeService;
  readonly enrollmentMode: EnrollmentMode;
  /** Starts a node TCP (or TLS 1.3) listener; several may run. */
  listenTcp(opts?: TcpListenOptions): Promise<TcpListener>;
  /** fastify plugin: GET /ws/node. Register at the root (no prefix), on an instance with @fastify/websocket. */
  readonly wsRoute: (app: FastifyInstance) => Promise<void>;
  /** fastify plugin: the operator routes; register with prefix '/api/v1'. */
  readonly routes: (app: FastifyInstance) => Promise<void>;
  /**
   * Back-pressure from the event pipeline: true stops reading every node connection (TCP and
   * WebSocket) until called with false. See GatewayCore.setInputPaused.
   */
  setInputPaused(paused: boolean): void;
  readonly inputPaused: boolean;
  /**
   * The node's cowrie pot, answered synchronously, for the events domain's CowriePotLookup.
   * Only SQLite can answer a read synchronously: undefined on PostgreSQL, where the events domain
   * goes by the pot statuses it sees live (and the text of the lines).
   */
  readonly cowriePotLookup: ((nodeName: string) => string | undefined) | undefined;
  /**
   * The type of a node's pot, answered synchronously, for event-shaped status lines that arrive with
   * pot_type "". SQLite reads the pots table; on PostgreSQL the gateway answers from the pot
   * statuses it has seen since it started (a pot reports its type in its status lines).
   */
  readonly potTypeLookup: (nodeName: string, potId: string) => string | undefined;
  /**
   * Marks a node Offline (reason 'core_lost') that no session here holds: its session died with
   * another core (several cores: the session registry calls this). Nothing if it is online here.
   */
  markOrphanedOffline(nodeName: string): void;
  /** Closes this process's session of the node without telling other instances (session routing). */
  dropLocal(nodeName: string, reason: string): void;
  /** Session routing: where the sessions held by other instances are looked up. */
  setRemotePresence(presence: RemotePresence | undefined): void;
  /** Several cores: what to read before a node's RegistrationAck is written (see GatewayCore.setAckGate). */
  setAckGate(gate: AckGate | undefined, maxWaitMs?: number): void;
  /**
   * Closes every session (reason 'shutdown'), the TCP listeners and the sweep timer, and waits for
   * the node state writes that closing caused.
   */
  close(): Promise<void>;
}

export const NODE_GATEWAY_DEFAULTS = {
  enrollment: 'provisioned' as EnrollmentMode,
  heartbeatIntervalMs: 30_000,
  staleFactor: 3,
  lineMaxBytes: 1024 * 1024,
  authTimeoutMs: 10_000,
  maxPendingNodes: 1000,
  maxPendingPerAddress: 20,
  pendingTtlMs: 3600_000,
  lastSeenWriteIntervalMs: 1000,
  tcpPort: 9001,
};

/**
 * Builds the gateway on its store. Resolves once every node left Connected by a previous run is
 * marked Offline, so no registration of this run can be overwritten by that.
 */
export async function createNodeGateway(opts: NodeGatewayOptions): Promise<NodeGatewayHandle> {
  const d = NODE_GATEWAY_DEFAULTS;
  const mode = opts.enrollment ?? d.enrollment;
  if (!['provisioned', 'approve', 'open'].includes(mode)) throw new Error(`unknown node enrollment mode ${String(mode)}`);
  const heartbeatIntervalMs = opts.heartbeatIntervalMs ?? d.heartbeatIntervalMs;
  const lineMaxBytes = opts.lineMaxBytes ?? d.lineMaxBytes;
  const logger = opts.logger;
  const metrics = new NodeMetrics(opts.registry);
  const potCapLog = new KeyedLogThrottle(60_000);
  const limits: NodeStoreLimits = {
    ...opts.storage,
    onTruncated: (field) => metrics.truncated.inc({ field }),
    onPotCapped: (nodeName) => {
      metrics.potsCapped.inc();
      const t = potCapLog.take(nodeName, Date.now());
      if (t.log) logger.warn({ nodeName, suppressedSinceLastLine: t.suppressed }, 'node reported more pots than the per-node cap; status of the new pot not stored');
    },
  };
  const sqliteStore = 'sqlite' in opts.db ? new SqliteNodeStore(opts.db, limits) : undefined;
  const store: NodeStore = sqliteStore ?? new PgNodeStore(opts.db as PgDatabaseHandle, limits);

  const stale = await store.markAllOffline('restart', Date.now(), opts.onlineElsewhere);
  if (stale > 0) logger.info({ nodes: stale }, 'nodes marked Offline at start (no session survives a restart)');

  const enrollment = new Enrollment({
    store,
    metrics,
    logger,
    mode,
    rateLimit: opts.rateLimit,
    guessCounters: opts.guessCounters,
    maxPendingNodes: opts.maxPendingNodes ?? d.maxPendingNodes,
    maxPendingPerAddress: opts.maxPendingPerAddress ?? d.maxPendingPerAddress,
    pendingTtlMs: opts.pendingTtlMs ?? d.pendingTtlMs,
  });
  const core = new GatewayCore({
    store,
    enrollment,
    metrics,
    logger,
    authTimeoutMs: opts.authTimeoutMs ?? d.authTimeoutMs,
    heartbeatIntervalMs,
    staleFactor: opts.staleFactor ?? d.staleFactor,
    sweepIntervalMs: opts.sweepIntervalMs ?? Math.min(heartbeatIntervalMs, 10_000),
    lastSeenWriteIntervalMs: opts.lastSeenWriteIntervalMs ?? d.lastSeenWriteIntervalMs,
    retention: new NodeRetention(store, logger, opts.retention),
  });
  const service = new NodeService(store, core);
  let potTypeLookup: (nodeName: string, potId: string) => string | undefined;
  if (sqliteStore) potTypeLookup = (nodeName, potId) => sqliteStore.potTypeNow(nodeName, potId);
  else {
    // Bounded by the nodes and their pot cap; a node's entry lives as long as the process.
    const seen = new Map<string, Map<string, string>>();
    core.on('potStatus', ({ nodeName, potId, potType }) => {
      if (potType === '') return;
      let pots = seen.get(nodeName);
      if (pots === undefined) seen.set(nodeName, (pots = new Map()));
      pots.set(potId, potType);
    });
    potTypeLookup = (nodeName, potId) => seen.get(nodeName)?.get(potId);
  }
  const limiter = new ConnectionLimiter(metrics, logger, opts.connectionLimits);
  const listeners = new Set<TcpListener>();

  const handle: NodeGatewayHandle = {
    service,
    enrollmentMode: mode,
    isOnline: (name) => core.isOnline(name),
    onlineNodes: () => core.onlineNodes(),
    sendCommand: (name, command) => core.sendCommand(name, command),
    disconnect: (name, reason) => core.disconnect(name, reason),
    dropLocal: (name, reason) => core.dropLocal(name, reason),
    setRemotePresence: (presence) => core.setRemotePresence(presence),
    setAckGate: (gate, maxWaitMs) => core.setAckGate(gate, maxWaitMs),
    on(ev, fn) {
      core.on(ev, fn);
      return this;
    },
    off(ev, fn) {
      core.off(ev, fn);
      return this;
    },
    once(ev, fn) {
      core.once(ev, fn);
      return this;
    },
    async listenTcp(tcpOpts = {}) {
      const listener = await listenTcp(core, { ...tcpOpts, port: tcpOpts.port ?? d.tcpPort, lineMaxBytes, limiter });
      listeners.add(listener);
      return {
        ...listener,
        close: async () => {
          listeners.delete(listener);
          await listener.close();
        },
      };
    },
    setInputPaused: (paused) => core.setInputPaused(paused),
    get inputPaused() {
      return core.inputPaused;
    },
    wsRoute: nodeWsRoute(core, lineMaxBytes, limiter),
    routes: nodeRestRoutes(service),
    cowriePotLookup: sqliteStore && ((nodeName) => sqliteStore.cowriePotNow(nodeName)),
    potTypeLookup,
    markOrphanedOffline(nodeName) {
      if (core.isOnline(nodeName)) return;
      const now = Date.now();
      store
        .get(nodeName)
        .then((row) => (row && row.status !== 'Offline' ? store.markOffline(nodeName, 'core_lost', row.lastSeenAt ?? now, now) : undefined))
        .catch((err: unknown) => logger.error({ err, nodeName }, 'could not mark a node whose core died Offline'));
    },
    async close() {
      core.shutdown();
      await Promise.all([...listeners].map((l) => l.close()));
      listeners.clear();
      await core.settled();
    },
  };
  return handle;
}
