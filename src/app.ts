// Composition root: the only place that knows every domain. It builds them from the config in
// dependency order, wires their events together, mounts their routes, and tears them down in the
// reverse order so nothing accepted is lost on shutdown.
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { TokenService, tokenRoutes } from './access/index.js';
import {
  AnalyticsRetention,
  analyticsRoutes,
  CidrList,
  geoSources,
  sharedNormaliser,
  readCidrFile,
  type AnalyticsSettings,
} from './analytics/index.js';
import { AlertService, alertRoutes } from './alerts/index.js';
import { createHttpServer, limitConnections } from './api/index.js';
import type { ClusterMember } from './cluster/index.js';
import { consoleRoutes, defaultConsoleDir } from './console/index.js';
import { AuditRetention, auditRoutes, installAuditRecorder, type AuditStore } from './audit/index.js';
import { AuthkeyService, authkeyRoutes } from './authkeys/index.js';
import { createCommandService, commandRoutes, parseGitUrlRule, type CommandService } from './commands/index.js';
import { ConfigError, describeConfig, optionNames, type Config } from './config/index.js';
import { ensurePrivateDir, ensurePrivateFile, sqliteFiles } from './datadir/index.js';
import { registerWalMetrics, type DatabaseHandle } from './db/index.js';
import { openStores, type CoreStores } from './app/stores.js';
import { BUILTIN_POT_TYPES, createEventService, eventRoutes, type EventService } from './events/index.js';
import { Broker, CompositeAuthStore, EnvAuthStore, JsonFileAuthStore, type AuthStore, type ListenAddress } from './hpfeeds/index.js';
import { createNodeGateway, type NodeGatewayHandle } from './nodes/index.js';
import { createOutputs, describeOutputs, loadOutputs, OutputsConfigError, type OutputConfig, type Outputs } from './outputs/index.js';
import { describeRedisTarget, parseRedisUrl, RedisDirInUseError, startSupervisedRedis, type SupervisedRedis } from './redis/index.js';
import { LoginLimiter, SESSION_COOKIE, sessionRoutes, SharedLoginLimiter, UserService, userRoutes } from './users/index.js';
import { TAKEN_OVER, type SessionRouting } from './cluster-routing/index.js';
import { clusterMember, clusterRouting } from './app/cluster.js';
import { closeRevokedSockets } from './app/operator-sockets.js';
import { attackFact } from './app/attack-fact.js';
import { ProxyProtocol } from './proxy-protocol/index.js';
import { packageVersion } from './version.js';
import { checkDataDir, checkNodeTls, listening, openingDatabase, StartupError } from './startup.js';

export interface Core {
  app: FastifyInstance;
  /** The SQLite database, or undefined when the core runs on PostgreSQL (DATABASE_URL). */
  database: DatabaseHandle | undefined;
  /** Every domain's store, on the SQLite file or on PostgreSQL. */
  stores: CoreStores;
  registry: Registry;
  tokens: TokenService;
  authkeys: AuthkeyService;
  broker: Broker;
  gateway: NodeGatewayHandle;
  events: EventService;
  commands: CommandService;
  alerts: AlertService;
  /** Console users and their sessions. */
  users: UserService;
  /** The audit log's store and retention sweeper. */
  audit: { store: AuditStore; retention: AuditRetention };
  /** Set when several cores share the database and Redis (CLUSTER_ENABLED / INSTANCE_ID). */
  cluster?: ClusterMember;
  /** Where each listener ended up (ports are resolved when the config asked for port 0). */
  addresses: { api: { host: string; port: number }; nodeTcp: { host: string; port: number; tls: boolean }; hpfeeds: ListenAddress[] };
  /** Set when the bootstrap admin token was created at this start. */
  adminTokenFile?: string;
  redisUrl: string;
  /** Graceful stop; safe to call twice. */
  close(): Promise<void>;
}

export interface CoreOptions {
  /** The clock of console sessions and login limits (tests move it instead of sleeping). */
  now?: () => number;
}

export async function buildCore(config: Config, options: CoreOptions = {}): Promise<Core> {
  let tokens: TokenService | undefined;
  let users: UserService | undefined;
  const app = await createHttpServer({
    version: packageVersion(),
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel, format: config.logFormat },
    docs: true,
    authenticate: (t) => tokens?.authenticate(t),
    sessions: {
      cookieName: SESSION_COOKIE,
      resolve: async (cookie) => {
        const session = await users?.resolveSession(cookie);
        return session && { ...session, operator: UserService.operatorOf(session) };
      },
    },
    trustProxy: config.trustProxy,
    requestTimeoutMs: config.httpRequestTimeout * 1000,
    headersTimeoutMs: config.httpHeadersTimeout * 1000,
    maxConnections: config.httpMaxConnections,
  });
  const log = app.log;
  // Filled in as parts start; shutdown() closes whatever exists, in an order that loses nothing.
  const parts: {
    stores?: CoreStores;
    authkeys?: AuthkeyService;
    authFile?: JsonFileAuthStore;
    broker?: Broker;
    gateway?: NodeGatewayHandle;
    events?: EventService;
    redis?: SupervisedRedis;
    commands?: CommandService;
    nodeListener?: { close(): Promise<void> };
    revocationCheck?: NodeJS.Timeout;
    sessionSweep?: NodeJS.Timeout;
    analyticsRetention?: AnalyticsRetention;
    auditRetention?: AuditRetention;
    alerts?: AlertService;
    outputs?: Outputs;
    backlogWatch?: NodeJS.Timeout;
    cluster?: ClusterMember;
    routing?: SessionRouting;
  } = {};
  const shutdown = async () => {
    const steps: [string, (() => unknown) | undefined][] = [
      // Node input stops first, then HTTP (API and node WebSockets), then the command worker, so no
      // command is sent into a closing session; then sessions; then the event flush, which commits
      // and republishes everything received; the broker goes after that, the database last.
      ['node listener', parts.nodeListener && (() => parts.nodeListener!.close())],
      ['token revocation check', parts.revocationCheck && (() => clearInterval(parts.revocationCheck))],
      ['session sweep', parts.sessionSweep && (() => clearInterval(parts.sessionSweep))],
      ['http', () => app.close()],
      ['commands', parts.commands && (() => parts.commands!.close())],
      ['output backlog watch', parts.backlogWatch && (() => clearInterval(parts.backlogWatch))],
      ['alerts', parts.alerts && (() => parts.alerts!.close())],
      ['node gateway', parts.gateway && (() => parts.gateway!.close())],
      // After the gateway: its sessions' releases go out before the notices stop.
      ['session routing', parts.routing && (() => parts.routing!.close())],
      ['events', parts.events && (() => parts.events!.close())],
      // After the event flush (whose commits reach the outputs): stops delivery and closes the
      // backlogs; what is still undelivered waits on disk for the next start.
      ['outputs', parts.outputs && (() => parts.outputs!.close())],
      ['analytics retention', parts.analyticsRetention && (() => parts.analyticsRetention!.stop())],
      ['audit retention', parts.auditRetention && (() => parts.auditRetention!.stop())],
      // After the event flush (its last slices go to the other cores) and the periodic work: sends
      // what is buffered and hands the leader lease on.
      ['cluster', parts.cluster && (() => parts.cluster!.close())],
      ['hpfeeds broker', parts.broker && (() => parts.broker!.close())],
      ['private redis', parts.redis && (() => parts.redis!.stop())],
      ['auth file', parts.authFile && (() => parts.authFile!.close())],
      ['authkeys', parts.authkeys && (() => parts.authkeys!.close())],
      // The event writer (and the analytics ingest) after the event flush, then the connections.
      ['stores', parts.stores && (() => parts.stores!.close())],
    ];
    for (const [name, step] of steps) {
      if (!step) continue;
      try {
        await step();
      } catch (err) {
        log.error({ err, part: name }, 'error during shutdown');
      }
    }
  };

  try {
    log.info({ config: describeConfig(config) }, 'starting apiary');
    // What a person can get wrong is checked before anything listens or spawns.
    checkDataDir(config);
    checkNodeTls(config);
    const outputConfigs = readOutputsConfig(config);
    // Secrets live here: the directory 0700, its secret files 0600 (existing ones fixed, with a
    // warning). A --db outside the data directory gets its files fixed but not its directory.
    ensurePrivateDir(config.dataDir, log);
    if (config.databaseUrl === undefined) for (const f of sqliteFiles(config.dbPath)) ensurePrivateFile(f, log);
    ensurePrivateFile(join(config.dataDir, 'admin-token'), log);
    // Analytics settings are plain data: the SQLite writer thread and the fold thread build their
    // own geo databases and CIDR lists from them.
    const analyticsSettings: AnalyticsSettings = {
      ignoreCidrs: config.ignoreCidrs,
      scannerCidrsFile: config.scannerCidrsFile,
      geo: { shipped: config.geoipShipped, cityMmdb: config.geoipCityMmdb, asnMmdb: config.geoipAsnMmdb },
      bruteforceMinFailures: config.bruteforceMinFailures,
      flushMs: config.analyticsFlushMs,
    };
    const stores = (parts.stores = await openingDatabase(config, () =>
      openStores(
        {
          databaseUrl: config.databaseUrl,
          dbPath: config.dbPath,
          queryWorkers: config.queryWorkers,
          queryTimeoutMs: config.queryTimeout * 1000,
          analytics: config.analyticsEnabled ? analyticsSettings : undefined,
          instanceId: config.instanceId,
        },
        log,
      ),
    ));
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    if (stores.walCheckpointer !== undefined) registerWalMetrics(registry, stores.walCheckpointer);
    limitConnections(app, registry, { maxPerAddress: config.httpMaxConnectionsPerAddress });
    // Several cores (src/app/cluster.ts): periodic work (retention, sweeps) runs only on the leader
    // (alone, always), and the node session registry routes commands, takeovers and revocations.
    const cluster = (parts.cluster = config.clusterEnabled ? clusterMember(config, log, registry) : undefined);
    const leading = cluster && (() => cluster.leading());
    const routing = config.clusterEnabled ? (parts.routing = await clusterRouting(config, log, registry)) : undefined;

    const operatorTokens = (tokens = new TokenService(stores.tokens));
    const consoleUsers = (users = new UserService({
      store: stores.users,
      idleMs: config.sessionIdleMinutes * 60_000,
      maxAgeMs: config.sessionMaxHours * 3_600_000,
      now: options.now,
    }));
    // A WebSocket authenticates once, at its upgrade: revoking its token or ending its console
    // session closes it (src/app/operator-sockets.ts).
    parts.revocationCheck = closeRevokedSockets(app.operatorSockets, operatorTokens, consoleUsers, routing, log);
    // Expired sessions are refused when used; this only keeps the table from growing.
    parts.sessionSweep = setInterval(() => {
      if (leading && !leading()) return;
      consoleUsers.sweepExpired().catch((err) => log.error({ err }, 'could not delete expired console sessions; retried at the next interval'));
    }, 10 * 60_000);
    parts.sessionSweep.unref();
    // Every mutating request an operator makes is recorded by one hook, installed before any route.
    const auditStore = stores.audit;
    installAuditRecorder(app, { store: auditStore, logger: log.child({ domain: 'audit' }), registry });
    parts.auditRetention = new AuditRetention(auditStore, {
      maxAgeDays: config.auditRetentionDays,
      runWhen: leading,
      onError: (err) => log.error({ err }, 'audit retention sweep failed; retried at the next interval'),
    });
    parts.auditRetention.start();
    const adminTokenFile = await operatorTokens.bootstrapAdmin(join(config.dataDir, 'admin-token'), config.adminToken);
    if (adminTokenFile) log.warn({ file: adminTokenFile }, 'created the bootstrap admin token; read it from this file');

    // hpfeeds credentials: database first, then the reference JSON file and HPFEEDS_<IDENT>_* env.
    const authkeys = (parts.authkeys = new AuthkeyService({
      store: stores.authkeys,
      onPollError: (err) => log.error({ err }, 'could not look for authkey changes made elsewhere; retried in a second'),
    }));
    const authStores: AuthStore[] = [routing ? routing.sharedAuthStore(authkeys) : authkeys];
    if (config.hpfeedsAuthFile) {
      parts.authFile = await JsonFileAuthStore.open({ path: config.hpfeedsAuthFile, logger: log.child({ domain: 'hpfeeds' }) });
      authStores.push(parts.authFile);
    }
    authStores.push(new EnvAuthStore(config.env));
    const knownHpfeedsChannels = new Set<string>([config.eventAllChannel, ...Object.values(config.eventChannelMap).flat()].filter(Boolean));
    // Behind a load balancer in TCP mode: the node port and hpfeeds read the client's address from
    // the PROXY header the balancer sends first (src/proxy-protocol; the listeners only take the hook).
    const proxyProtocol =
      config.proxyProtocolFrom.length > 0
        ? new ProxyProtocol({ trusted: config.proxyProtocolFrom, timeoutMs: config.proxyProtocolTimeoutMs, registry, logger: log.child({ domain: 'proxy-protocol' }) })
        : undefined;
    if (proxyProtocol) log.info({ from: config.proxyProtocolFrom, timeoutMs: config.proxyProtocolTimeoutMs }, 'node and hpfeeds connections from these proxies must start with a PROXY protocol header');
    const broker = (parts.broker = new Broker({
      authStore: new CompositeAuthStore(authStores),
      name: config.hpfeedsName,
      registry,
      logger: log.child({ domain: 'hpfeeds' }),
      maxSendBufferBytes: config.hpfeedsSendBufferBytes,
      highWaterBytes: Math.min(config.hpfeedsHighWaterBytes, config.hpfeedsSendBufferBytes),
      maxQueuedBytes: config.hpfeedsQueueBudgetBytes,
      backpressureDeadlineMs: config.hpfeedsBackpressureDeadline * 1000,
      flushLingerMs: config.hpfeedsFlushLinger,
      maxConnections: config.hpfeedsMaxConnections,
      maxConnectionsPerAddress: config.hpfeedsMaxConnectionsPerAddress,
      authFailuresPerAddress: config.hpfeedsAuthFailuresPerAddress,
      authFailuresPerIdent: config.hpfeedsAuthFailuresPerIdent,
      authFailureWindowMs: 60_000,
      // Several cores: what hpfeeds clients publish here reaches the subscribers of the others.
      onClientPublish: cluster && ((ident, channel, payload) => cluster.fanout.published(ident, channel, payload)),
      resolvePeer: proxyProtocol?.resolver('hpfeeds'),
      // Channels the core itself publishes on keep their names in metrics; other peer-chosen
      // channels and idents are bounded (filled in once the event service knows its channels).
      metricLabels: {
        channels: { known: (c: string) => knownHpfeedsChannels.has(c), max: config.hpfeedsMetricLabelValues },
        idents: { max: config.hpfeedsMetricLabelValues },
      },
    }));
    const hpfeeds: ListenAddress[] = [];
    for (const endpoint of config.hpfeedsEndpoints) {
      const port = Number(/port=(\d+)/.exec(endpoint)?.[1] ?? 0);
      const host = /interface=([^:]+)/.exec(endpoint)?.[1] ?? '0.0.0.0';
      hpfeeds.push(await listening(`hpfeeds endpoint ${endpoint}`, optionNames('hpfeedsEndpoints'), host, port, () => broker.listen(endpoint)));
    }

    const gateway = (parts.gateway = await createNodeGateway({
      db: stores.nodesDatabase,
      logger: log.child({ domain: 'nodes' }),
      registry,
      enrollment: config.enrollment,
      heartbeatIntervalMs: config.heartbeatInterval * 1000,
      staleFactor: config.staleFactor,
      lineMaxBytes: config.nodeLineMaxBytes,
      connectionLimits: {
        maxConnections: config.nodeMaxConnections,
        maxConnectionsPerAddress: config.nodeMaxConnectionsPerAddress,
        preAuthLineMaxBytes: config.nodePreAuthLineMaxBytes,
        preAuthMaxBytes: config.nodePreAuthMaxBytes,
      },
      rateLimit: { maxUntrustedFailuresPerName: config.nodeAuthUntrustedFailuresPerDay, untrustedWindowMs: 86_400_000 },
      guessCounters: routing && ((name, max, windowMs) => routing.failureWindow(`totp-${name}`, max, windowMs)),
      onlineElsewhere: routing && new Set(routing.registry.onlineNodes()),
      maxPendingNodes: config.pendingMaxNodes,
      maxPendingPerAddress: config.pendingMaxPerAddress,
      pendingTtlMs: config.pendingTtl * 1000,
      storage: {
        logMessageMaxBytes: config.nodeStoredTextMaxBytes,
        potMessageMaxBytes: config.nodeStoredTextMaxBytes,
        maxLogRowsPerNode: config.nodeLogMaxRowsPerNode,
      },
      retention: {
        logMaxAgeMs: config.nodeLogRetentionDays * 86_400_000,
        unknownMaxAgeMs: Math.min(config.nodeLogRetentionDays, 30) * 86_400_000,
        runWhen: leading,
      },
    }));

    routing?.attachGateway(gateway);

    const eventsLog = log.child({ domain: 'events' });
    const events = (parts.events = createEventService({
      store: stores.events,
      logger: eventsLog,
      registry,
      publisher: broker,
      batch: { highWaterMark: config.eventQueueHighWater },
      // Event-shaped status lines often arrive with pot_type "": the node's pots know the type.
      potTypeLookup: gateway.potTypeLookup,
      // The real node forwards cowrie's lines under cowrie's sensor name: they belong to its cowrie pot.
      cowriePotLookup: gateway.cowriePotLookup,
      channels: { allEvents: config.eventAllChannel || null, byPotType: config.eventChannelMap },
      retention: { maxAgeDays: config.eventRetentionDays, maxRows: config.eventMaxRows, runWhen: leading },
      cowrieState: cluster?.cowrieSessions,
      cowrieTextState: cluster?.cowrieText,
      knownPotTypes: [...BUILTIN_POT_TYPES, ...config.metricsPotTypes],
    }));
    const analytics = stores.analytics;
    if (analytics) {
      // Whole batches, as committed: on PostgreSQL each is claimed from the analytics backlog by its first id.
      if (analytics.committed) events.onBatchCommitted(analytics.committed);
      analytics.sweepBacklog?.(leading ?? (() => true));
      parts.analyticsRetention = new AnalyticsRetention(analytics.retention, {
        maxAgeDays: config.eventRetentionDays,
        runWhen: leading,
        onError: (err) => log.error({ err }, 'analytics retention sweep failed; retried at the next interval'),
      });
      parts.analyticsRetention.start();
    }
    // Outputs and alert rules read the same committed batches: each event is normalised once.
    const normaliseCommitted = sharedNormaliser();
    if (outputConfigs.length > 0) {
      log.info({ outputs: describeOutputs(outputConfigs) }, 'starting outputs');
      const scanners = config.scannerCidrsFile ? new CidrList(readCidrFile(config.scannerCidrsFile)) : null;
      const outputs = (parts.outputs = createOutputs({
        outputs: outputConfigs,
        dataDir: config.dataDir,
        registry,
        logger: log.child({ domain: 'outputs' }),
        normalise: normaliseCommitted,
        channelsFor: (potType) => events.channelsFor(potType),
        isScanner: scanners ? (ip) => scanners.match(ip) !== undefined : undefined,
        cef: { vendor: 'Apiary', product: 'Apiary', version: packageVersion() },
      }));
      events.onCommitted((batch) => outputs.handle(batch));
    }
    events.attach(gateway);
    if (cluster) {
      // What this core commits or its hpfeeds clients publish goes to the other cores (published
      // here already); what they send is published here: once on every core.
      // At commit, not per republished slice: the window in which a core killed after a commit has
      // not yet passed the events on is one turn, not the whole post-commit spread.
      // A batch is noted in the shared database's outbox as it commits, so what a core killed
      // right after its COMMIT never handed on, the leader hands on (src/cluster/outbox-relay.ts).
      const outbox = stores.fanoutOutbox(cluster.origin);
      if (!outbox) log.warn('cluster mode on a database the cores do not share: a core killed right after committing a batch leaves it unpublished on the other cores (set DATABASE_URL)');
      events.onBatchCommitted((batch) => cluster.committed(batch));
      events.onSessionSummary((node, channel, json) => cluster.fanout.published(node, channel, json));
      // A node that moved here mid-session gets its ack once the cowrie text sessions another core
      // left open for it are read, so its next lines join them (at most 2 s; one core waits for nothing).
      gateway.setAckGate((nodeName) => events.nodeRegistering(nodeName), 2000);
      await cluster.start({
        events: (remote) => events.republish(remote),
        publications: (remote) => {
          for (const p of remote) broker.publish(p.ident, p.channel, p.payload);
        },
      }, outbox);
    }
    for (const channel of events.nodeAuthkey('metrics-labels').pubchans) knownHpfeedsChannels.add(channel);
    events.onFlow((saturated) => gateway.setInputPaused(saturated));

    // Every enrolled node gets an hpfeeds authkey for the channels its events go to, so the node
    // (or a sidecar on it) can also publish straight to the broker under its own name.
    gateway.on('enrolled', ({ nodeName }) => {
      // create() leaves an existing key of that ident as it is.
      Promise.resolve()
        .then(() => authkeys.create(events.nodeAuthkey(nodeName)))
        .catch((err) => log.error({ err, node: nodeName }, 'could not create the hpfeeds authkey of an enrolled node'));
    });

    // A revoked or deleted node loses its hpfeeds authkey too; removing it makes the broker
    // re-check (and close) the live connections that used it. Re-approval creates a new one.
    gateway.on('revoked', ({ nodeName, via }) => {
      authkeys
        .remove(nodeName)
        .then((removed) => {
          if (removed) log.info({ node: nodeName, via }, 'hpfeeds authkey of the node removed; its connections are closed');
        })
        .catch((err) => log.error({ err, node: nodeName }, 'could not remove the hpfeeds authkey of a revoked node'));
    });

    // Alerts observe the gateway, the committed events and (below) the command service; delivery
    // is queued per channel and never holds up the code that observed something.
    const alerts = (parts.alerts = new AlertService({
      store: stores.alerts,
      logger: log.child({ domain: 'alerts' }),
      registry,
      sendTimeoutMs: config.alertSendTimeout * 1000,
      maxAttempts: config.alertMaxAttempts,
      retryDelayMs: config.alertRetryDelayMs,
      queueMax: config.alertQueueMax,
      // Several cores share the rules: changes made through another core are read within seconds.
      reloadEveryMs: cluster ? 5000 : undefined,
    }));
    await alerts.load();
    gateway.on('online', (e) => alerts.nodeOnline(e));
    // A session closed because the node registered on another instance: the node is not offline.
    gateway.on('offline', (e) => {
      if (e.reason !== TAKEN_OVER) alerts.nodeOffline(e);
    });
    gateway.on('potStatus', (e) => alerts.potStatus(e));
    // The output_backlog rule reads each output's backlog every few seconds (its dedup and quiet
    // period decide what reaches a person).
    const outputs = parts.outputs;
    if (outputs) {
      parts.backlogWatch = setInterval(() => {
        for (const o of outputConfigs) alerts.signal({ kind: 'output_backlog', output: o.name, backlog: outputs.backlog(o.name) });
      }, config.outputBacklogCheckMs);
      parts.backlogWatch.unref();
    }
    events.onCommitted((batch) => {
      // Normalising costs CPU per event: only while a rule reads events.
      if (!alerts.wantsEvents) return;
      alerts.eventsCommitted(batch.map((e) => attackFact(e, normaliseCommitted)));
    });

    let redisUrl = config.redisUrl;
    if (!redisUrl) {
      const dir = join(config.dataDir, 'redis');
      ensurePrivateDir(dir, log);
      try {
        parts.redis = await startSupervisedRedis({ dir, binary: config.redisServerBin, logger: log.child({ domain: 'redis' }), registry });
      } catch (err) {
        if (err instanceof RedisDirInUseError) throw new StartupError(err.message);
        throw new StartupError(
          `cannot start the private redis-server (${optionNames('redisServerBin')}; or run your own Redis and set ${optionNames('redisUrl')}): ${(err as Error).message}`,
        );
      }
      redisUrl = parts.redis.url;
    } else {
      log.info({ redis: describeRedisTarget(parseRedisUrl(redisUrl)) }, 'command queue uses the configured Redis');
    }
    const commands = (parts.commands = createCommandService({
      store: stores.commands,
      logger: log.child({ domain: 'commands' }),
      registry,
      gateway,
      redisUrl,
      ttlMs: config.commandTtl * 1000,
      answerTimeoutMs: config.commandAnswerTimeout === undefined ? undefined : config.commandAnswerTimeout * 1000,
      gitUrlAllowList: gitUrlRules(config.gitUrlAllowList),
      // A node that restarted has forgotten its pots: each registration asks what it still has.
      installedPotsOnRegistration: true,
      // Pot types operators install get metric labels of their own; node-chosen ones fold into "other".
      onInstallPot: (potType) => events.addKnownPotType(potType),
      routing: routing?.registry,
    }));
    for (const potType of await commands.installedPotTypes()) events.addKnownPotType(potType);
    // ...and pots it no longer lists are marked missing (kept, shown in the API).
    commands.onFinished((c) => {
      if (c.kind !== 'GetInstalledPots' || c.status !== 'succeeded' || !c.result?.pots) return;
      gateway.service
        .reconcileInstalledPots(c.node, c.result.pots.map((p) => p.potId), c.createdAt)
        .catch((err) => log.error({ err, node: c.node }, 'could not mark the pots a node no longer reports'));
    });
    commands.onFinished((c) => alerts.commandFinished(c));
    await commands.start();

    await app.register(gateway.wsRoute);
    await app.register(
      async (api) => {
        await api.register(gateway.routes);
        await api.register(commandRoutes, { service: commands });
        await api.register(eventRoutes, { events });
        if (analytics) {
          await api.register(analyticsRoutes, {
            reader: analytics.reader,
            geoSources: config.geoipShipped || config.geoipCityMmdb || config.geoipAsnMmdb ? geoSources(analyticsSettings.geo || {}) : { country: null, asn: null },
            eventById: async (id) => {
              const e = await events.get(id);
              return e && { id: e.id, node: e.node, potId: e.pot_id, potType: e.pot_type, eventType: e.event_type, timestamp: Date.parse(e.timestamp), data: e.data };
            },
          });
        }
        await api.register(tokenRoutes, { tokens: operatorTokens });
        await api.register(sessionRoutes, {
          users: consoleUsers,
          limiter: routing
            ? new SharedLoginLimiter(routing.failureWindow('login-source', 10, 15 * 60_000), routing.failureWindow('login-user', 10, 15 * 60_000), options.now)
            : new LoginLimiter({ now: options.now }),
          registry,
          logger: log.child({ domain: 'users' }),
          // Login attempts are not operator actions on a guarded route: recorded here, by name.
          onLoginAttempt: (a) =>
            auditStore.append({
              at: (options.now ?? Date.now)(),
              actorId: a.userId,
              actorName: a.username,
              actorRole: a.role,
              actorKind: 'user',
              source: a.source,
              action: a.outcome === 'success' ? 'session.login' : 'session.login_failed',
              method: 'POST',
              route: '/api/v1/session',
              target: a.username,
              status: a.status,
              changes: a.outcome === 'rate_limited' ? JSON.stringify({ rate_limited: true }) : null,
            }),
        });
        await api.register(userRoutes, { users: consoleUsers });
        await api.register(authkeyRoutes, { authkeys });
        await api.register(auditRoutes, { store: auditStore });
        await api.register(alertRoutes, { alerts });
      },
      { prefix: '/api/v1' },
    );
    app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness: the process serves HTTP' } }, async () => ({ status: 'ok' }));
    app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness: database and Redis reachable' } }, async (_req, reply) => {
      const dbOk = await stores.ping().then(
        () => true,
        () => false,
      );
      const redisOk = commands.redisReady();
      const ready = dbOk && redisOk;
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', database: dbOk, redis: redisOk });
    });
    app.get(
      '/metrics',
      { schema: { tags: ['health'], summary: 'Prometheus metrics (viewer token unless METRICS_PUBLIC)' }, config: config.metricsPublic ? {} : { role: 'viewer' } },
      async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
    );

    // The operator console at `/`; its wildcard route comes after every other route and leaves
    // unknown API paths to their JSON 404.
    await app.register(consoleRoutes, { dir: defaultConsoleDir });

    await listening('HTTP API', optionNames('apiPort'), config.apiHost, config.apiPort, () => app.listen({ host: config.apiHost, port: config.apiPort }));
    const apiAddr = app.server.address();
    const api = { host: config.apiHost, port: typeof apiAddr === 'object' && apiAddr ? apiAddr.port : config.apiPort };

    const tls = config.nodeTlsCert && config.nodeTlsKey ? { certPath: config.nodeTlsCert, keyPath: config.nodeTlsKey } : undefined;
    const nodeListener = (parts.nodeListener = await listening('HoneyBee node listener', optionNames('nodeTcpPort'), config.nodeTcpHost, config.nodeTcpPort, () =>
      gateway.listenTcp({ host: config.nodeTcpHost, port: config.nodeTcpPort, tls, tlsHandshakeTimeoutMs: config.nodeTlsHandshakeTimeout * 1000, resolvePeer: proxyProtocol?.resolver('nodes') }),
    ));

    log.info({ api, nodeTcp: { port: nodeListener.port, tls: nodeListener.tls }, hpfeeds }, 'apiary is ready');

    let closed: Promise<void> | undefined;
    return {
      app,
      database: stores.sqlite,
      stores,
      registry,
      tokens: operatorTokens,
      authkeys,
      broker,
      gateway,
      events,
      commands,
      alerts,
      users: consoleUsers,
      cluster,
      audit: { store: auditStore, retention: parts.auditRetention },
      addresses: { api, nodeTcp: { host: nodeListener.host, port: nodeListener.port, tls: nodeListener.tls }, hpfeeds },
      adminTokenFile,
      redisUrl,
      close: () => (closed ??= shutdown()),
    };
  } catch (err) {
    await shutdown();
    throw err;
  }
}

/** The outputs file and OUTPUTS, validated before anything starts (errors name the file, output and field). */
function readOutputsConfig(config: Config): OutputConfig[] {
  try {
    return loadOutputs(config.outputsFile, config.outputs);
  } catch (err) {
    if (err instanceof OutputsConfigError) throw new StartupError(`${err.message} (${optionNames('outputsFile')}, ${optionNames('outputs')})`);
    throw err;
  }
}

function gitUrlRules(entries: readonly string[]) {
  try {
    return entries.map(parseGitUrlRule);
  } catch (err) {
    throw new ConfigError(`GIT_URL_ALLOW / --git-url-allow: ${(err as Error).message}`);
  }
}
