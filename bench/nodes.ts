// Node gateway capacity: concurrent sessions one core process holds (memory per node) and
// envelopes/s it validates and handles (CPU µs per envelope). The node side runs in a child
// process so the core's memory and CPU are measured alone.
//
//   node --import tsx bench/nodes.ts [--nodes 1000] [--transport tcp|ws] [--flood 200000] [--hold-seconds 5]
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import { createHttpServer } from '../src/api/index.js';
import { openDatabase } from '../src/db/index.js';
import { createNodeGateway } from '../src/nodes/index.js';
import { Enrollment } from '../src/nodes/enrollment.js';
import { GatewayCore } from '../src/nodes/gateway.js';
import { NodeMetrics } from '../src/nodes/metrics.js';
import type { SessionTransport } from '../src/nodes/session.js';
import { SqliteNodeStore } from '../src/nodes/sqlite-store.js';
import { parseNodeMessage, randomNodeId, totpCode } from '../src/protocol/index.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    transport: { type: 'string', default: 'tcp' },
    flood: { type: 'string', default: '200000' },
    'hold-seconds': { type: 'string', default: '5' },
    child: { type: 'boolean', default: false },
    target: { type: 'string' },
    secrets: { type: 'string' },
  },
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function fullGc(): void {
  for (let i = 0; i < 3; i++) gc();
}

const MiB = 1024 * 1024;
const fmt = (n: number, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** The traffic mix of a busy node: mostly attack events, some heartbeats. */
function envelopeMix(nodeId: string): string[] {
  return [
    `{"version":2,"message":{"PotStatusUpdate":{"node_id":${nodeId},"pot_id":"cowrie-01","pot_type":"","status":"","message":"login attempt [root/123456] failed"}}}`,
    `{"version":2,"message":{"PotStatusUpdate":{"node_id":${nodeId},"pot_id":"cowrie-01","pot_type":"","status":"","message":"CMD: uname -a; cat /proc/cpuinfo"}}}`,
    `{"version":2,"message":{"PotStatusUpdate":{"node_id":${nodeId},"pot_id":"cowrie-01","pot_type":"","status":"","message":"login attempt [admin/admin] succeeded"}}}`,
    `{"version":2,"message":{"PotEvent":{"node_id":${nodeId},"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2025-01-01T00:00:00Z","data":{"src_ip":"203.0.113.7","username":"root","password":"123456"}}}}`,
    `{"version":2,"message":{"NodeStatusUpdate":{"node_id":${nodeId},"status":"Running"}}}`,
  ];
}

// ---------------------------------------------------------------- node side (child process)

async function runNodes(): Promise<void> {
  const transport = args.transport as 'tcp' | 'ws';
  const target = args.target!;
  const secrets = JSON.parse(readFileSync(args.secrets!, 'utf8')) as { name: string; secret: string }[];
  interface Conn {
    id: string;
    write(text: string): boolean;
    drained(): Promise<void>;
  }
  const conns: Conn[] = [];
  let failed = 0;
  const started = Date.now();

  async function connect(name: string, secret: string): Promise<void> {
    const id = randomNodeId();
    const reg = `{"version":2,"message":{"NodeRegistration":{"node_id":${id},"node_name":"${name}","address":"0.0.0.0","port":8080,"node_type":"Full","totp_code":"${totpCode(secret, Date.now())}"}}}`;
    if (transport === 'tcp') {
      const [host, port] = target.split(':');
      const socket = net.connect({ host, port: Number(port) });
      socket.setNoDelay(true);
      await once(socket, 'connect');
      socket.write(reg + '\n');
      const [first] = (await once(socket, 'data')) as [Buffer];
      if (!first.toString().includes('"accepted":true')) throw new Error(first.toString());
      socket.on('data', () => {});
      conns.push({
        id,
        write: (t) => socket.write(t),
        drained: () => (socket.writableNeedDrain ? once(socket, 'drain').then(() => undefined) : Promise.resolve()),
      });
    } else {
      const ws = new WebSocket(target, { perMessageDeflate: false });
      await once(ws, 'open');
      ws.send(reg);
      const [first] = (await once(ws, 'message')) as [Buffer];
      if (!first.toString().includes('"accepted":true')) throw new Error(first.toString());
      conns.push({
        id,
        write: (t) => {
          // One envelope per frame: split the batch back into lines.
          for (const line of t.split('\n')) if (line) ws.send(line);
          return ws.bufferedAmount < 1 * MiB;
        },
        drained: async () => {
          while (ws.bufferedAmount > 256 * 1024) await new Promise((r) => setTimeout(r, 2));
        },
      });
    }
  }

  const queue = [...secrets];
  await Promise.all(
    Array.from({ length: 200 }, async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        try {
          await connect(s.name, s.secret);
        } catch {
          failed++;
        }
      }
    }),
  );
  process.send!({ phase: 'registered', ok: conns.length, failed, ms: Date.now() - started });

  process.on('message', async (m: { cmd: string; seconds?: number; count?: number }) => {
    if (m.cmd === 'hold') {
      // Every node sends a heartbeat once per second (30x the real rate) for the hold period.
      const heartbeats = conns.map((c) => `{"version":2,"message":{"NodeStatusUpdate":{"node_id":${c.id},"status":"Running"}}}\n`);
      let sent = 0;
      const endAt = Date.now() + m.seconds! * 1000;
      const slices = 10;
      let tick = 0;
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          for (let i = tick % slices; i < conns.length; i += slices) {
            conns[i].write(heartbeats[i]);
            sent++;
          }
          tick++;
          if (Date.now() >= endAt) {
            clearInterval(timer);
            resolve();
          }
        }, 1000 / slices);
      });
      process.send!({ phase: 'held', sent });
    } else if (m.cmd === 'flood') {
      const perConn = Math.ceil(m.count! / conns.length);
      let sent = 0;
      const started = Date.now();
      await Promise.all(
        conns.map(async (c) => {
          const mix = envelopeMix(c.id);
          let left = Math.min(perConn, m.count! - sent);
          sent += left;
          while (left > 0) {
            const n = Math.min(left, 64);
            let batch = '';
            for (let i = 0; i < n; i++) batch += mix[i % mix.length] + '\n';
            left -= n;
            if (!c.write(batch)) await c.drained();
          }
        }),
      );
      process.send!({ phase: 'flooded', sent, ms: Date.now() - started });
    } else if (m.cmd === 'exit') {
      process.exit(0);
    }
  });
}

// ---------------------------------------------------------------- core side

function waitMessage<T>(child: ChildProcess, phase: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { phase: string }) => {
      if (m.phase !== phase) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m as T);
    };
    const onExit = (code: number) => reject(new Error(`node process exited (${code}) before '${phase}'`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Parse + session handling without sockets: the gateway's own cost per envelope. */
async function inProcessThroughput(): Promise<{ parseUs: number; sessionUs: number; perSec: number }> {
  const dir = tempDir('apiary-bench-inproc-');
  const db = openDatabase(`${dir.path}/core.db`);
  const logger = pino({ level: 'silent' });
  const metrics = new NodeMetrics(new Registry());
  const store = new SqliteNodeStore(db);
  const enrollment = new Enrollment({ store, metrics, logger, mode: 'open' });
  const core = new GatewayCore({ store, enrollment, metrics, logger, authTimeoutMs: 10_000, heartbeatIntervalMs: 30_000, staleFactor: 3, sweepIntervalMs: 60_000, lastSeenWriteIntervalMs: 1000 });
  let attacks = 0;
  core.on('attackEvent', () => attacks++);
  const transport: SessionTransport = { kind: 'tcp', remoteAddress: '127.0.0.1', send() {}, end() {}, destroy() {} };
  const session = core.openSession(transport)!;
  const id = randomNodeId();
  session.handleText(`{"version":2,"message":{"NodeRegistration":{"node_id":${id},"node_name":"inproc","address":"0.0.0.0","port":8080,"node_type":"Full"}}}`);
  await new Promise((r) => setTimeout(r, 10));
  const mix = envelopeMix(id);
  const n = 200_000;
  for (let i = 0; i < 20_000; i++) parseNodeMessage(mix[i % mix.length]); // warm-up
  let t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) parseNodeMessage(mix[i % mix.length]);
  const parseNs = Number(process.hrtime.bigint() - t);
  for (let i = 0; i < 20_000; i++) session.handleText(mix[i % mix.length]);
  t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) session.handleText(mix[i % mix.length]);
  const sessionNs = Number(process.hrtime.bigint() - t);
  core.shutdown();
  db.close();
  dir.cleanup();
  return { parseUs: parseNs / n / 1000, sessionUs: sessionNs / n / 1000, perSec: n / (sessionNs / 1e9) };
}

async function runCore(): Promise<void> {
  const n = Number(args.nodes);
  const transport = args.transport === 'ws' ? 'ws' : 'tcp';
  const floodCount = Number(args.flood);
  const holdSeconds = Number(args['hold-seconds']);
  const dir = tempDir('apiary-bench-nodes-');
  const db = openDatabase(`${dir.path}/core.db`);
  const registry = new Registry();
  const gateway = await createNodeGateway({ db, logger: pino({ level: 'warn' }), registry, enrollment: 'provisioned', authTimeoutMs: 60_000 });

  const secrets: { name: string; secret: string }[] = [];
  db.sqlite.exec('BEGIN');
  for (let i = 0; i < n; i++) secrets.push(await gateway.service.createNode(`bench-${i}`));
  db.sqlite.exec('COMMIT');
  const secretsPath = `${dir.path}/secrets.json`;
  writeFileSync(secretsPath, JSON.stringify(secrets));

  const app = await createHttpServer();
  await app.register(gateway.wsRoute);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });
  const target = transport === 'tcp' ? `127.0.0.1:${tcp.port}` : `ws://127.0.0.1:${(app.server.address() as net.AddressInfo).port}/ws/node`;

  fullGc();
  const base = process.memoryUsage();
  const child = fork(fileURLToPath(import.meta.url), ['--child', '--transport', transport, '--target', target, '--secrets', secretsPath], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const reg = await waitMessage<{ ok: number; failed: number; ms: number }>(child, 'registered');
  await new Promise((r) => setTimeout(r, 500));
  fullGc();
  const held = process.memoryUsage();
  const online = gateway.onlineNodes().length;

  // Heartbeats of every node for a while: CPU cost of holding the fleet.
  let cpu0 = process.cpuUsage();
  child.send({ cmd: 'hold', seconds: holdSeconds });
  const hold = await waitMessage<{ sent: number }>(child, 'held');
  await new Promise((r) => setTimeout(r, 200));
  let cpu = process.cpuUsage(cpu0);
  const holdCpuPct = ((cpu.user + cpu.system) / 1e6 / (holdSeconds + 0.2)) * 100;
  fullGc();
  const afterHold = process.memoryUsage();

  // Flood: envelopes/s validated and handled end to end (socket -> framing -> parse -> session -> events).
  let handled = 0;
  gateway.on('attackEvent', () => handled++);
  const messages = () => registry.getSingleMetric('apiary_node_messages_total')!.get().then((m) => m.values.reduce((s, v) => s + v.value, 0));
  const msgs0 = await messages();
  cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  child.send({ cmd: 'flood', count: floodCount });
  const flood = await waitMessage<{ sent: number }>(child, 'flooded');
  const deadline = Date.now() + 120_000;
  while ((await messages()) - msgs0 < flood.sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const floodNs = Number(process.hrtime.bigint() - t0);
  cpu = process.cpuUsage(cpu0);
  const got = (await messages()) - msgs0;

  child.send({ cmd: 'exit' });
  await once(child, 'exit');
  await gateway.close();
  await app.close();
  db.close();
  dir.cleanup();
  // After the fleet measurement, so its allocations do not pre-grow the RSS being measured.
  const inproc = await inProcessThroughput();

  const heapDelta = (held.heapUsed - base.heapUsed) / n;
  const rssDelta = (held.rss - base.rss) / n;
  const lines = [
    `node gateway bench: ${n} nodes over ${transport} (node side in a child process), node ${process.version}`,
    `  sessions: ${reg.ok} registered (${reg.failed} failed) in ${fmt(reg.ms / 1000, 2)} s; core reports ${online} online`,
    `  memory per node: heap ${fmt(heapDelta / 1024, 1)} KiB + RSS ${fmt(rssDelta / 1024, 1)} KiB (heap ${fmt(base.heapUsed / MiB)} -> ${fmt(held.heapUsed / MiB)} MiB, RSS ${fmt(base.rss / MiB)} -> ${fmt(held.rss / MiB)} MiB; after hold: heap ${fmt(afterHold.heapUsed / MiB)} MiB, RSS ${fmt(afterHold.rss / MiB)} MiB)`,
    `  hold: ${hold.sent} heartbeats in ${holdSeconds} s (each node 1/s, 30x the real rate): core CPU ${fmt(holdCpuPct)} % of one core`,
    `  flood: ${got}/${flood.sent} envelopes in ${fmt(floodNs / 1e9, 2)} s = ${fmt(got / (floodNs / 1e9), 0)} envelopes/s; core CPU ${fmt((cpu.user + cpu.system) / got, 2)} µs per envelope (framing + parse + session + events), ${handled} attack events emitted`,
    `  in-process (no sockets): parse ${fmt(inproc.parseUs, 2)} µs, parse + session ${fmt(inproc.sessionUs, 2)} µs per envelope = ${fmt(inproc.perSec, 0)} envelopes/s on one core`,
  ];
  console.log(lines.join('\n'));
}

if (args.child) await runNodes();
else await runCore();
