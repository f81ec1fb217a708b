// Test stack for the command queue: a private redis-server, a SQLite file, the real node gateway on
// a TCP port, the command service and the HTTP API. Nodes are real TCP clients speaking HoneyBee v2.
import { join } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createHttpServer } from '../../src/api/index.js';
import { createCommandService, commandRoutes, type CommandService, type CommandServiceOptions } from '../../src/commands/index.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { createNodeGateway, type NodeGatewayHandle, type TcpListener } from '../../src/nodes/index.js';
import { SimulatedNode, type SimulatedNodeOptions } from '../../src/simulator/node.js';
import type { CommandView } from '../../src/commands/index.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

export type ServiceOverrides = Partial<Omit<CommandServiceOptions, 'db' | 'logger' | 'registry' | 'gateway'>>;

export interface Stack {
  redis: TestRedis;
  db: DatabaseHandle;
  gateway: NodeGatewayHandle;
  tcp: TcpListener;
  service: CommandService;
  registry: Registry;
  app: FastifyInstance;
  logger: FastifyBaseLogger;
  /** Provisions a node and returns its TOTP secret. */
  provision(name: string): Promise<string>;
  /** Closes and recreates the command service (same Redis, same SQLite file, same gateway). */
  restartService(overrides?: ServiceOverrides, opts?: { start?: boolean }): Promise<CommandService>;
  /** Provisions `name` and connects a simulated node; resolves once the gateway has it online. */
  node(name: string, extra?: Partial<SimulatedNodeOptions>): Promise<SimulatedNode>;
  /** A simulated node for an already provisioned name, not started. */
  nodeFor(name: string, secret: string, extra?: Partial<SimulatedNodeOptions>): SimulatedNode;
  /** POST /api/v1/nodes/:name/commands, asserting 201. */
  post(name: string, command: unknown): Promise<CommandView>;
  /** Waits until the command has a final status. */
  settled(id: string, ms?: number): Promise<CommandView>;
  close(): Promise<void>;
}

export async function startStack(overrides: ServiceOverrides = {}): Promise<Stack> {
  const dir = tempDir('apiary-commands-');
  const redis = await startTestRedis();
  const db = openDatabase(join(dir.path, 'apiary.db'));
  // LOG=debug node --import tsx --test ... shows what the stack does.
  const logger = pino({ level: process.env.LOG ?? 'silent' }) as unknown as FastifyBaseLogger;
  const gateway = await createNodeGateway({ db, logger, registry: new Registry(), enrollment: 'provisioned' });
  const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });
  let registry = new Registry();
  const make = (o: ServiceOverrides) =>
    createCommandService({
      db,
      logger,
      registry,
      gateway,
      redisUrl: redis.url,
      sweepIntervalMs: 500,
      ...overrides,
      ...o,
    });
  const holder = { service: make({}) };
  const nodes: SimulatedNode[] = [];
  await holder.service.start();
  const app = await createHttpServer({ logger: false });
  // The routes reach the service through the holder so a restarted service is picked up.
  const proxy = new Proxy({} as CommandService, {
    get: (_t, key) => {
      const v = holder.service[key as keyof CommandService];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(holder.service) : v;
    },
  });
  await app.register(commandRoutes, { prefix: '/api/v1', service: proxy });
  await app.ready();

  const stack: Stack = {
    redis,
    db,
    gateway,
    tcp,
    get service() {
      return holder.service;
    },
    get registry() {
      return registry;
    },
    app,
    logger,
    async provision(name) {
      return (await gateway.service.createNode(name)).secret;
    },
    async restartService(o = {}, { start = true } = {}) {
      await holder.service.close();
      registry = new Registry();
      holder.service = make(o);
      if (start) await holder.service.start();
      return holder.service;
    },
    nodeFor(name, secret, extra = {}) {
      const node = new SimulatedNode({ name, port: tcp.port, secret, reconnectDelayMs: 200, ...extra });
      nodes.push(node);
      return node;
    },
    async node(name, extra = {}) {
      const node = stack.nodeFor(name, await stack.provision(name), extra);
      const registered = node.waitFor('registered');
      node.start();
      await registered;
      await waitFor(() => gateway.isOnline(name), `${name} online`);
      return node;
    },
    async post(name, command) {
      const res = await app.inject({ method: 'POST', url: `/api/v1/nodes/${name}/commands`, payload: { command } });
      if (res.statusCode !== 201) throw new Error(`POST command to ${name}: ${res.statusCode} ${res.body}`);
      return res.json() as CommandView;
    },
    settled(id, ms = 15_000) {
      return waitFor(async () => {
        const v = await holder.service.get(id);
        return v && v.status !== 'queued' && v.status !== 'sent' ? v : undefined;
      }, `command ${id} to finish`, ms);
    },
    async close() {
      await Promise.all(nodes.map((n) => n.stop()));
      await holder.service.close();
      await app.close();
      await gateway.close();
      db.close();
      await redis.dispose();
      dir.cleanup();
    },
  };
  return stack;
}

/** Polls until `fn` returns a truthy value; fails with `what` after `ms`. */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, ms = 15_000, every = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
