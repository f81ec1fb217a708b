// Command queue latency and fan-out: operator API -> BullMQ/Redis -> node gateway -> HoneyBee node.
// The core (HTTP API, command service, gateway, private redis-server) runs in this process; the
// simulated nodes run in a child process so they do not share the core's event loop. Both stamp
// times with performance.timeOrigin + performance.now(), which is comparable across processes.
//
//   node --import tsx bench/commands.ts [--latency 500] [--burst 500] [--nodes 1000] [--rounds 3]
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createHttpServer } from '../src/api/index.js';
import { commandRoutes, createCommandService } from '../src/commands/index.js';
import { openDatabase } from '../src/db/index.js';
import { createNodeGateway } from '../src/nodes/index.js';
import { startPrivateRedis } from '../src/redis/private-server.js';
import { SimulatedNode } from '../src/simulator/node.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values: args } = parseArgs({
  options: {
    latency: { type: 'string', default: '500' },
    burst: { type: 'string', default: '500' },
    nodes: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    child: { type: 'boolean', default: false },
  },
});

const now = () => performance.timeOrigin + performance.now();

interface NodeSpec {
  name: string;
  secret: string;
}
type ToChild = { type: 'start'; port: number; nodes: NodeSpec[] } | { type: 'stop' };
type FromChild = { type: 'registered'; count: number } | { type: 'cmd'; name: string; t: number } | { type: 'stopped' };

// ------------------------------------------------------------------ child: the nodes

async function child(): Promise<void> {
  const send = (m: FromChild) => process.send!(m);
  const nodes: SimulatedNode[] = [];
  process.on('message', async (m: ToChild) => {
    if (m.type === 'start') {
      let registered = 0;
      for (const spec of m.nodes) {
        const node = new SimulatedNode({
          name: spec.name,
          port: m.port,
          secret: spec.secret,
          pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }],
          heartbeatMs: 60_000,
        });
        node.on('command', () => send({ type: 'cmd', name: spec.name, t: now() }));
        node.once('registered', () => {
          if (++registered === m.nodes.length) send({ type: 'registered', count: registered });
        });
        nodes.push(node);
        node.start();
        // Spread the connects a little so 1000 registrations do not arrive in one burst.
        if (nodes.length % 100 === 0) await new Promise((r) => setTimeout(r, 20));
      }
    } else {
      await Promise.all(nodes.map((n) => n.stop()));
      send({ type: 'stopped' });
      process.exit(0);
    }
  });
}

// ------------------------------------------------------------------ parent: the core

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const ms = (n: number) => `${n.toFixed(2)} ms`;

async function main(): Promise<void> {
  const latencyN = Number(args.latency);
  const burstN = Number(args.burst);
  const fleet = Number(args.nodes);
  const rounds = Number(args.rounds);
  const dir = tempDir('apiary-bench-commands-');
  const redis = await startPrivateRedis({ dir: join(dir.path, 'redis') });
  const handle = openDatabase(join(dir.path, 'apiary.db'));
  const logger = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
  const gateway = await createNodeGateway({ db: handle, logger, registry: new Registry(), heartbeatIntervalMs: 60_000 });
  const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });
  const service = createCommandService({ db: handle, logger, registry: new Registry(), gateway, redisUrl: redis.url });
  await service.start();
  const app = await createHttpServer({ logger: false });
  await app.register(commandRoutes, { prefix: '/api/v1', service });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api/v1`;

  const specs: NodeSpec[] = [{ name: 'lat-node', secret: (await gateway.service.createNode('lat-node')).secret }];
  for (let i = 0; i < fleet; i++) {
    const name = `fleet-${String(i).padStart(4, '0')}`;
    specs.push({ name, secret: (await gateway.service.createNode(name)).secret });
  }

  const kid = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: process.execArgv });
  const received = new Map<string, number[]>();
  let onCmd: ((name: string, t: number) => void) | undefined;
  const registeredAll = new Promise<void>((resolve) => {
    kid.on('message', (m: FromChild) => {
      if (m.type === 'registered') resolve();
      else if (m.type === 'cmd') {
        let list = received.get(m.name);
        if (!list) received.set(m.name, (list = []));
        list.push(m.t);
        onCmd?.(m.name, m.t);
      }
    });
  });
  const t0 = now();
  kid.send({ type: 'start', port: tcp.port, nodes: specs } satisfies ToChild);
  await registeredAll;
  await waitUntil(() => gateway.onlineNodes().length === specs.length, 30_000);
  console.log(`${specs.length} simulated nodes registered in ${ms(now() - t0)} (nodes in a child process)`);

  const post = async (url: string, body: unknown) => {
    const res = await fetch(`${base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status !== 201) throw new Error(`${url}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const countStatus = handle.sqlite.prepare('SELECT COUNT(*) AS n FROM commands WHERE batch_id = ? AND status = ?');

  // ---- 1. latency: one command at a time, POST -> node has the NodeCommand
  {
    const accept: number[] = [];
    const deliver: number[] = [];
    const roundTrip: number[] = [];
    for (let i = 0; i < latencyN; i++) {
      const got = new Promise<number>((resolve) => {
        onCmd = (name, t) => name === 'lat-node' && resolve(t);
      });
      const start = now();
      const view = (await post('/nodes/lat-node/commands', { command: { GetPotStatus: 'cowrie-01' } })) as { id: string };
      accept.push(now() - start);
      deliver.push((await got) - start);
      await waitUntil(async () => (await service.get(view.id))?.status === 'succeeded', 10_000, 0);
      roundTrip.push(now() - start);
    }
    onCmd = undefined;
    for (const a of [accept, deliver, roundTrip]) a.sort((x, y) => x - y);
    console.log(`\nsingle node, ${latencyN} commands one at a time (GetPotStatus):`);
    console.log(`  POST -> 201 (in Redis)        p50 ${ms(pct(accept, 50))}  p99 ${ms(pct(accept, 99))}  max ${ms(accept[accept.length - 1])}`);
    console.log(`  POST -> node received it      p50 ${ms(pct(deliver, 50))}  p99 ${ms(pct(deliver, 99))}  max ${ms(deliver[deliver.length - 1])}`);
    console.log(`  POST -> status succeeded      p50 ${ms(pct(roundTrip, 50))}  p99 ${ms(pct(roundTrip, 99))}  max ${ms(roundTrip[roundTrip.length - 1])}`);
  }

  // ---- 2. burst: many commands for one node at once; strictly sequential delivery
  {
    received.delete('lat-node');
    const start = now();
    const ids: string[] = [];
    for (let i = 0; i < burstN; i++) ids.push(((await post('/nodes/lat-node/commands', { command: { GetPotStatus: 'cowrie-01' } })) as { id: string }).id);
    const accepted = now() - start;
    await waitUntil(async () => (await Promise.all(ids.map((id) => service.get(id)))).every((v) => v?.status === 'succeeded'), 120_000, 5);
    const done = now() - start;
    console.log(`\nsingle node, burst of ${burstN} commands (delivered one at a time, in order):`);
    console.log(`  all accepted ${ms(accepted)}, all succeeded ${ms(done)}  (${((burstN / done) * 1000).toFixed(0)} commands/s through one node lane)`);
  }

  // ---- 3. broadcast to the fleet
  console.log(`\nbroadcast GetPotStatus to ${fleet} nodes ({"nodes": [${fleet} names]}):`);
  const fleetNames = specs.slice(1).map((s) => s.name);
  for (let r = 0; r < rounds; r++) {
    // Let the previous round's jobs finish completing so rounds measure the same thing.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (const n of fleetNames) received.delete(n);
    let got = 0;
    let allReceived!: (t: number) => void;
    const allIn = new Promise<number>((resolve) => (allReceived = resolve));
    onCmd = (name, t) => {
      if (name !== 'lat-node' && ++got === fleet) allReceived(t);
    };
    const start = now();
    const res = (await post('/commands/broadcast', { nodes: fleetNames, command: { GetPotStatus: 'cowrie-01' } })) as { batchId: string };
    const accepted = now() - start;
    const lastIn = (await allIn) - start;
    await waitUntil(() => (countStatus.get(res.batchId, 'succeeded') as { n: number }).n === fleet, 120_000, 5);
    const done = now() - start;
    console.log(`  round ${r + 1}: 201 after ${ms(accepted)}, all ${fleet} received after ${ms(lastIn)}, all succeeded after ${ms(done)}`);
  }
  onCmd = undefined;

  kid.send({ type: 'stop' } satisfies ToChild);
  await new Promise<void>((resolve) => kid.once('exit', () => resolve()));
  await service.close();
  await app.close();
  await gateway.close();
  handle.close();
  await redis.stop();
  dir.cleanup();
}

async function waitUntil(fn: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 1): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error('benchmark step timed out');
    await new Promise((r) => (everyMs === 0 ? setImmediate(r) : setTimeout(r, everyMs)));
  }
}

if (args.child) void child();
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
