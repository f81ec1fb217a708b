// Composition root: the only place that knows every domain. It builds them from the config in
// dependency order, wires their events together, mounts their routes, and tears them down in the
// reverse order so nothing accepted is lost on shutdown.
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { TokenService, tokenRoutes } from './access/index.js';
import { createHttpServer } from './api/index.js';
import { AuthkeyService, authkeyRoutes } from './authkeys/index.js';
import { createCommandService, commandRoutes, parseGitUrlRule, type CommandService } from './commands/index.js';
import { describeConfig, type Config } from './config/index.js';
import { openDatabase, ReadPool, type DatabaseHandle } from './db/index.js';
import { createEventService, eventQueryModules, eventRoutes, SqliteEventStore, type EventService } from './events/index.js';
import { Broker, CompositeAuthStore, EnvAuthStore, JsonFileAuthStore, type AuthStore, type ListenAddress } from './hpfeeds/index.js';
import { createNodeGateway, type NodeGatewayHandle } from './nodes/index.js';
import { startPrivateRedis, type PrivateRedis } from './redis/private-server.js';

export interface Core {
  app: FastifyInstance;
  database: DatabaseHandle;
  registry: Registry;
  tokens: TokenService;
  authkeys: AuthkeyService;
  broker: Broker;
  gateway: NodeGatewayHandle;
  events: EventService;
  commands: CommandService;
  /** Where each listener ended up (ports are resolved when the config asked for port 0). */
  addresses: { api: { host: string; port: number }; nodeTcp: { host: string; port: number; tls: boolean }; hpfeeds: ListenAddress[] };
  /** Set when the bootstrap admin token was created at this start. */
  adminTokenFile?: string;
  redisUrl: string;
  /** Graceful stop; safe to call twice. */
  close(): Promise<void>;
}

export async function buildCore(config: Config): Promise<Core> {
  let tokens: TokenService | undefined;
  const app = await createHttpServer({
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
    docs: true,
    authenticate: (t) => tokens?.authenticate(t),
  });
  const log = app.log;
  // Filled in as parts start; shutdown() closes whatever exists, in an order that loses nothing.
  const parts: {
    database?: DatabaseHandle;
    authkeys?: AuthkeyService;
    authFile?: JsonFileAuthStore;
    broker?: Broker;
    gateway?: NodeGatewayHandle;
    events?: EventService;
    eventStore?: SqliteEventStore;
    readPool?: ReadPool;
    redis?: PrivateRedis;
    commands?: CommandService;
    nodeListener?: { close(): Promise<void> };
  } = {};
  const shutdown = async () => {
    const steps: [string, (() => unknown) | undefined][] = [
      // Node input stops first, then HTTP (API and node WebSockets), then the command worker, so no
      // command is sent into a closing session; then sessions; then the event flush, which commits
      // and republishes everything received; the broker goes after that, the database last.
      ['node listener', parts.nodeListener && (() => parts.nodeListener!.close())],
      ['http', () => app.close()],
      ['commands', parts.commands && (() => parts.commands!.close())],
      ['node gateway', parts.gateway && (() => parts.gateway!.close())],
      ['events', parts.events && (() => parts.events!.close())],
      ['event store', parts.eventStore && (() => parts.eventStore!.close())],
      ['read pool', parts.readPool && (() => parts.readPool!.close())],
      ['hpfeeds broker', parts.broker && (() => parts.broker!.close())],
      ['private redis', parts.redis && (() => parts.redis!.stop())],
      ['auth file', parts.authFile && (() => parts.authFile!.close())],
      ['authkeys', parts.authkeys && (() => parts.authkeys!.close())],
      ['database', parts.database && (() => parts.database!.close())],
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
    const database = (parts.database = openDatabase(config.dbPath));
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });

    const operatorTokens = (tokens = new TokenService(database));
    const adminTokenFile = operatorTokens.bootstrapAdmin(join(config.dataDir, 'admin-token'), config.adminToken);
    if (adminTokenFile) log.warn({ file: adminTokenFile }, 'created the bootstrap admin token; read it from this file');

    // hpfeeds credentials: database first, then the reference JSON file and HPFEEDS_<IDENT>_* env.
    const authkeys = (parts.authkeys = new AuthkeyService({ database }));
    const stores: AuthStore[] = [authkeys];
    if (config.hpfeedsAuthFile) {
      parts.authFile = await JsonFileAuthStore.open({ path: config.hpfeedsAuthFile, logger: log.child({ domain: 'hpfeeds' }) });
      stores.push(parts.authFile);
    }
    stores.push(new EnvAuthStore(config.env));
    const broker = (parts.broker = new Broker({
      authStore: new CompositeAuthStore(stores),
      name: config.hpfeedsName,
      registry,
      logger: log.child({ domain: 'hpfeeds' }),
      maxSendBufferBytes: config.hpfeedsSendBufferBytes,
      backpressureDeadlineMs: config.hpfeedsBackpressureDeadline * 1000,
    }));
    const hpfeeds: ListenAddress[] = [];
    for (const endpoint of config.hpfeedsEndpoints) hpfeeds.push(await broker.listen(endpoint));

    const gateway = (parts.gateway = createNodeGateway({
      db: database,
      logger: log.child({ domain: 'nodes' }),
      registry,
      enrollment: config.enrollment,
      heartbeatIntervalMs: config.heartbeatInterval * 1000,
      staleFactor: config.staleFactor,
      lineMaxBytes: config.nodeLineMaxBytes,
    }));

    // Event-shaped status lines often arrive with pot_type "": the pots table knows the type.
    const potTypeOf = database.sqlite.prepare<[string, string], { pot_type: string }>('SELECT pot_type FROM pots WHERE node_name = ? AND pot_id = ?');
    // Expensive reads run in worker processes with read-only connections, event writes in a writer
    // thread: the event loop serving nodes, hpfeeds and the API never waits on SQLite for them.
    // Other domains add their query modules here and their batch hooks to the store (see
    // src/db/read-pool.ts and src/events/store.ts).
    const eventsLog = log.child({ domain: 'events' });
    const readPool = (parts.readPool = new ReadPool({
      dbPath: database.path,
      modules: { ...eventQueryModules() },
      size: config.queryWorkers,
      timeoutMs: config.queryTimeout * 1000,
      onLog: (level, msg, detail) => log[level]({ domain: 'db', ...detail }, msg),
    }));
    const eventStore = (parts.eventStore = new SqliteEventStore({
      dbPath: database.path,
      readPool,
      batchHooks: [],
    }));
    const events = (parts.events = createEventService({
      store: eventStore,
      logger: eventsLog,
      registry,
      publisher: broker,
      batch: { highWaterMark: config.eventQueueHighWater },
      potTypeLookup: (nodeName, potId) => potTypeOf.get(nodeName, potId)?.pot_type || undefined,
      channels: { allEvents: config.eventAllChannel || null, byPotType: config.eventChannelMap },
      retention: { maxAgeDays: config.eventRetentionDays, maxRows: config.eventMaxRows },
    }));
    events.attach(gateway);
    events.onFlow((saturated) => gateway.setInputPaused(saturated));

    // Every enrolled node gets an hpfeeds authkey for the channels its events go to, so the node
    // (or a sidecar on it) can also publish straight to the broker under its own name.
    gateway.on('enrolled', ({ nodeName }) => {
      try {
        if (!authkeys.summary(nodeName)) authkeys.create(events.nodeAuthkey(nodeName));
      } catch (err) {
        log.error({ err, node: nodeName }, 'could not create the hpfeeds authkey of an enrolled node');
      }
    });

    let redisUrl = config.redisUrl;
    if (!redisUrl) {
      const redisLog = log.child({ domain: 'redis' });
      const dir = join(config.dataDir, 'redis');
      parts.redis = await startPrivateRedis({ dir, binary: config.redisServerBin, onLog: (line) => redisLog.debug(line) });
      redisUrl = parts.redis.url;
      log.info({ port: parts.redis.port, dir }, 'started private redis-server');
    }
    const commands = (parts.commands = createCommandService({
      db: database,
      logger: log.child({ domain: 'commands' }),
      registry,
      gateway,
      redisUrl,
      ttlMs: config.commandTtl * 1000,
      answerTimeoutMs: config.commandAnswerTimeout === undefined ? undefined : config.commandAnswerTimeout * 1000,
      gitUrlAllowList: config.gitUrlAllowList.map(parseGitUrlRule),
    }));
    await commands.start();

    await app.register(gateway.wsRoute);
    await app.register(
      async (api) => {
        await api.register(gateway.routes);
        await api.register(commandRoutes, { service: commands });
        await api.register(eventRoutes, { events });
        await api.register(tokenRoutes, { tokens: operatorTokens });
        await api.register(authkeyRoutes, { authkeys });
      },
      { prefix: '/api/v1' },
    );
    app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness: the process serves HTTP' } }, async () => ({ status: 'ok' }));
    app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness: database and Redis reachable' } }, async (_req, reply) => {
      let dbOk = true;
      try {
        database.sqlite.prepare('SELECT 1').get();
      } catch {
        dbOk = false;
      }
      const redisOk = commands.redisReady();
      const ready = dbOk && redisOk;
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', database: dbOk, redis: redisOk });
    });
    app.get(
      '/metrics',
      { schema: { tags: ['health'], summary: 'Prometheus metrics (viewer token unless METRICS_PUBLIC)' }, config: config.metricsPublic ? {} : { role: 'viewer' } },
      async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
    );

    await app.listen({ host: config.apiHost, port: config.apiPort });
    const apiAddr = app.server.address();
    const api = { host: config.apiHost, port: typeof apiAddr === 'object' && apiAddr ? apiAddr.port : config.apiPort };

    const tls = config.nodeTlsCert && config.nodeTlsKey ? { certPath: config.nodeTlsCert, keyPath: config.nodeTlsKey } : undefined;
    const nodeListener = (parts.nodeListener = await gateway.listenTcp({ host: config.nodeTcpHost, port: config.nodeTcpPort, tls }));

    log.info({ api, nodeTcp: { port: nodeListener.port, tls: nodeListener.tls }, hpfeeds }, 'apiary is ready');

    let closed: Promise<void> | undefined;
    return {
      app,
      database,
      registry,
      tokens: operatorTokens,
      authkeys,
      broker,
      gateway,
      events,
      commands,
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

/** `apiary serve`: runs until SIGINT/SIGTERM, then stops gracefully. Returns the exit code. */
export async function runCore(config: Config): Promise<number> {
  const core = await buildCore(config);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      core.app.log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const force = setTimeout(() => {
    core.app.log.error('shutdown took longer than 25 s; exiting');
    process.exit(1);
  }, 25_000);
  force.unref();
  await core.close();
  clearTimeout(force);
  return 0;
}
