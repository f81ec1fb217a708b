// Several composed cores (`apiary serve` as buildCore makes it) in one test process, sharing one
// SQLite file (WAL) and one private redis-server, with INSTANCE_ID set (cluster mode: fan-out and
// session routing on): what N instances behind a load balancer look like, minus the separate
// processes. extraEnv DATABASE_URL puts them on one PostgreSQL database instead; `redisUrl` puts them
// on a Redis deployment the caller started (Sentinel, Cluster) instead of a private server.
import { join } from 'node:path';
import { buildCore, type Core } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import assert from 'node:assert/strict';
import type { NodeCommandBody } from '../../src/protocol/index.js';
import { SimulatedNode, type SimulatedNodeOptions } from '../../src/simulator/node.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

export const ADMIN_TOKEN = 'apiary-test-admin-token-for-routing-0123456789';

export interface Instance {
  id: string;
  core: Core;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export interface Fleet {
  /** The Redis the instances share (REDIS_URL). */
  redisUrl: string;
  instances: Instance[];
  /** Provisions a node through `via` and returns its secret. */
  provision(via: Instance, name: string): Promise<string>;
  /** A simulated node connected to `to`'s TCP listener (not started). */
  node(to: Instance, name: string, secret: string, extra?: Partial<SimulatedNodeOptions>): SimulatedNode;
  close(): Promise<void>;
}

export async function startFleet(ids: string[], extraEnv: Record<string, string> = {}, opts: { redisUrl?: string } = {}): Promise<Fleet> {
  const dir = tempDir('apiary-routing-');
  const redis: TestRedis | undefined = opts.redisUrl === undefined ? await startTestRedis({ appendOnly: false }) : undefined;
  const redisUrl = opts.redisUrl ?? redis!.url;
  const instances: Instance[] = [];
  const nodes: SimulatedNode[] = [];
  const fleet: Fleet = {
    redisUrl,
    instances,
    async provision(via, name) {
      const res = await via.api('POST', '/api/v1/nodes', { name });
      if (res.status !== 201) throw new Error(`provision ${name}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.secret as string;
    },
    node(to, name, secret, extra = {}) {
      const n = new SimulatedNode({ name, host: '127.0.0.1', port: to.core.addresses.nodeTcp.port, secret, reconnect: false, heartbeatMs: 1000, ...extra });
      nodes.push(n);
      return n;
    },
    async close() {
      await Promise.all(nodes.map((n) => n.stop()));
      for (const i of instances) await i.core.close().catch(() => undefined);
      await redis?.dispose();
      dir.cleanup();
    },
  };
  try {
    for (const id of ids) instances.push(await startInstance(id, join(dir.path, 'shared.sqlite'), join(dir.path, id), redisUrl, extraEnv));
  } catch (err) {
    await fleet.close();
    throw err;
  }
  return fleet;
}

/** One composed core with session routing on, on the shared database file and Redis. */
export async function startInstance(id: string, dbFile: string, dataDir: string, redisUrl: string, extraEnv: Record<string, string> = {}): Promise<Instance> {
  const config = loadConfig(
    [
      '--api-host', '127.0.0.1', '--api-port', '0',
      '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0',
      '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1',
      '--db', dbFile,
      '--data-dir', dataDir,
      '--query-workers', '1',
      '--analytics', 'false',
    ],
    {
      LOG_LEVEL: process.env.LOG ?? 'silent',
      REDIS_URL: redisUrl,
      INSTANCE_ID: id,
      APIARY_ADMIN_TOKEN: ADMIN_TOKEN,
      ENROLLMENT_MODE: 'provisioned',
      ...extraEnv,
    },
  );
  const core = await buildCore(config);
  return { id, core, api: apiClient(`http://127.0.0.1:${core.addresses.api.port}`) };
}

/** fetch with the admin token; JSON bodies parsed. */
export function apiClient(base: string): Instance['api'] {
  return async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

/** Polls until `fn` returns a truthy value; fails with `what` after `ms`. */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, ms = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** The one pot the routing tests' nodes run. */
export const POTS = [{ id: 'p1', type: 'cowrie', status: 'Running' as const }];
export const kindOf = (c: NodeCommandBody) => Object.keys(c)[0]!;

/** Starts a simulated node on `to` and waits until every instance's API shows it online there. */
export async function connectNode(fleet: Fleet, to: Instance, name: string, secret: string, received: string[], extra = {}): Promise<SimulatedNode> {
  const node = fleet.node(to, name, secret, { pots: POTS, ...extra });
  node.on('command', (cmd) => received.push(kindOf(cmd)));
  const registered = node.waitFor('registered');
  node.start();
  await registered;
  for (const i of fleet.instances) {
    await waitFor(async () => (await i.api('GET', `/api/v1/nodes/${name}`)).body?.online === true, `${name} online as seen by ${i.id}`);
  }
  return node;
}

/** The node's commands once none is queued or sent any more, as `via` lists them. */
export async function settledCommands(via: Instance, name: string) {
  return waitFor(async () => {
    const list = (await via.api('GET', `/api/v1/commands?node=${name}&limit=100`)).body.commands as Array<{ id: string; kind: string; status: string; seq: number }>;
    return list.length > 0 && list.every((x) => x.status !== 'queued' && x.status !== 'sent') ? list : undefined;
  }, `every command of ${name} settled`);
}

/** Sends a command through `via`'s API; its id. */
export async function postCommand(via: Instance, name: string, command: unknown): Promise<string> {
  const res = await via.api('POST', `/api/v1/nodes/${name}/commands`, { command });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id as string;
}
