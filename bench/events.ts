// Attack event pipeline throughput, end to end: simulated nodes (child process) -> TCP -> node
// gateway -> event service (normalise, SQLite batch commit) -> in-process hpfeeds broker -> TCP ->
// HpfeedsClient subscriber (second child process). The core process runs only the core, so its
// CPU figures are its own. Latency = subscriber receipt time - the node's event timestamp.
//
//   node --import tsx bench/events.ts [--nodes 10] [--rate 3000] [--seconds 10] [--batch 1000] [--delay 10] [--form json|text]
// --form text: the nodes send cowrie's text lines the way the real node does (latency then starts
// at the core's receipt: text lines carry no timestamp).
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import { openDatabase } from '../src/db/index.js';
import { createEventService } from '../src/events/index.js';
import { Broker, HpfeedsClient, MemoryAuthStore } from '../src/hpfeeds/index.js';
import { createNodeGateway } from '../src/nodes/index.js';
import { SimulatedNode } from '../src/simulator/index.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'core' },
    nodes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '3000' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    batch: { type: 'string', default: '1000' },
    delay: { type: 'string', default: '10' },
    port: { type: 'string', default: '0' },
    channel: { type: 'string', default: 'apiary.events' },
    form: { type: 'string', default: 'json' },
  },
});

const SUB_IDENT = 'bench-subscriber';
const SUB_SECRET = 'bench-subscriber-secret';

function send(msg: unknown): void {
  process.send!(msg);
}

// ------------------------------------------------------------------ node simulators (child)
async function runNodes(): Promise<void> {
  const port = Number(args.port);
  const nodes: SimulatedNode[] = [];
  for (let i = 0; i < Number(args.nodes); i++) {
    const node = new SimulatedNode({
      name: `bench-node-${i}`,
      host: '127.0.0.1',
      port,
      eventsPerSecond: Number(args.rate),
      eventForm: 'potevent',
      cowrieText: args.form === 'text',
      heartbeatMs: 30_000,
      pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }],
    });
    node.on('connectError', () => undefined);
    node.start();
    nodes.push(node);
  }
  await Promise.all(nodes.map((n) => (n.registered ? undefined : once(n, 'registered'))));
  send({ type: 'ready' });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const timer = setInterval(() => send({ type: 'sent', count: nodes.reduce((s, n) => s + n.stats.eventsSent, 0) }), 250);
  process.on('message', async (m: { type: string }) => {
    if (m.type !== 'stop') return;
    clearInterval(timer);
    await Promise.all(nodes.map((n) => n.stop()));
    send({ type: 'stopped', count: nodes.reduce((s, n) => s + n.stats.eventsSent, 0), cpu: process.cpuUsage(cpu0), ms: performance.now() - t0 });
    process.exit(0);
  });
}

// ------------------------------------------------------------------ hpfeeds subscriber (child)
async function runSubscriber(): Promise<void> {
  const client = new HpfeedsClient({ host: '127.0.0.1', port: Number(args.port), ident: SUB_IDENT, secret: SUB_SECRET });
  let received = 0;
  let measuring = false;
  // latency histogram in 0.1 ms steps up to 10 s
  const hist = new Uint32Array(100_001);
  let measured = 0;
  const marker = Buffer.from('"timestamp":"');
  client.on('message', (_ident, channel, payload) => {
    if (channel === 'probe') {
      send({ type: 'ready' });
      return;
    }
    received++;
    if (!measuring) return;
    // The timestamp is read straight from the bytes: parsing every payload would bench the subscriber.
    const at = payload.indexOf(marker);
    if (at < 0) return;
    const ts = Date.parse(payload.toString('latin1', at + marker.length, at + marker.length + 24));
    const lat = Date.now() - ts;
    hist[Math.min(100_000, Math.max(0, Math.round(lat * 10)))]!++;
    measured++;
  });
  await client.connect();
  client.subscribe([args.channel!, 'probe']);
  client.publish('probe', 'x');
  const timer = setInterval(() => send({ type: 'received', count: received }), 250);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'measure') {
      measuring = true;
    } else if (m.type === 'stop') {
      clearInterval(timer);
      const pct = (p: number) => {
        let acc = 0;
        const want = Math.ceil(measured * p);
        for (let i = 0; i < hist.length; i++) {
          acc += hist[i]!;
          if (acc >= want) return i / 10;
        }
        return NaN;
      };
      send({ type: 'stopped', cpu: process.cpuUsage(cpu0), ms: performance.now() - t0, count: received, measured, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: pct(1) });
      await client.close();
      process.exit(0);
    }
  });
}

// ------------------------------------------------------------------ core (this process)
function child(role: string, extra: string[]): ChildProcess {
  return fork(fileURLToPath(import.meta.url), ['--role', role, ...extra], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function nextMessage<T>(proc: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { type: string }) => {
      if (m.type === type) {
        proc.off('message', on);
        resolve(m as T);
      }
    };
    proc.on('message', on);
  });
}

interface ChildStats {
  count: number;
  cpu: NodeJS.CpuUsage;
  ms: number;
}

async function runCore(): Promise<void> {
  const dir = tempDir('apiary-bench-events-');
  const dbPath = `${dir.path}/core.db`;
  const db = openDatabase(dbPath);
  const logger = pino({ level: 'warn' }) as unknown as FastifyBaseLogger;
  const registry = new Registry();
  const broker = new Broker({
    logger,
    authStore: new MemoryAuthStore([{ ident: SUB_IDENT, owner: 'bench', secret: SUB_SECRET, pubchans: ['probe'], subchans: [args.channel!, 'probe'] }]),
  });
  const hp = await broker.listen('tcp:port=0:interface=127.0.0.1');
  const gateway = createNodeGateway({ db, logger, registry, enrollment: 'open' });
  const events = createEventService({
    db,
    logger,
    registry,
    publisher: broker,
    batch: { maxSize: Number(args.batch), maxDelayMs: Number(args.delay) },
    retention: { maxAgeDays: 0, maxRows: 0 },
  });
  events.attach(gateway);
  let committed = 0;
  let batches = 0;
  events.onCommitted((b) => {
    committed += b.length;
    batches++;
  });
  const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });

  const sub = child('subscriber', ['--port', String(hp.port), '--channel', args.channel!]);
  await nextMessage(sub, 'ready');
  let received = 0;
  sub.on('message', (m: { type: string; count: number }) => {
    if (m.type === 'received') received = m.count;
  });
  const nodes = child('nodes', ['--port', String(tcp.port), '--nodes', args.nodes!, '--rate', args.rate!, '--form', args.form!]);
  let sent = 0;
  nodes.on('message', (m: { type: string; count: number }) => {
    if (m.type === 'sent') sent = m.count;
  });
  await nextMessage(nodes, 'ready');

  const warmupMs = Number(args.warmup) * 1000;
  const seconds = Number(args.seconds);
  console.log(`nodes=${args.nodes} rate/node=${args.rate}/s (offered ${Number(args.nodes) * Number(args.rate)}/s) batch=${args.batch} delay=${args.delay}ms form=${args.form}, warmup ${args.warmup}s, measure ${seconds}s`);
  await new Promise((r) => setTimeout(r, warmupMs));
  sub.send({ type: 'measure' });
  const start = { t: performance.now(), sent, committed, received, cpu: process.cpuUsage(), batches };
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  for (let s = 1; s <= seconds; s++) {
    const before = committed;
    await new Promise((r) => setTimeout(r, 1000));
    console.log(`  t=${s}s stored ${committed - before}, delivered ${received}, pending ${events.pendingCount}`);
  }
  const end = { t: performance.now(), sent, committed, received, cpu: process.cpuUsage(start.cpu), batches };
  lag.disable();
  const elapsed = (end.t - start.t) / 1000;

  nodes.send({ type: 'stop' });
  const stoppedNodes = await nextMessage<ChildStats>(nodes, 'stopped');
  // let the tail drain through the pipeline
  const drainDeadline = Date.now() + 15_000;
  while (Date.now() < drainDeadline && (committed < stoppedNodes.count || received < committed)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  sub.send({ type: 'stop' });
  const subStats = await nextMessage<ChildStats & { measured: number; p50: number; p90: number; p99: number; max: number }>(sub, 'stopped');

  const rate = (n: number) => Math.round(n / elapsed);
  const cpuPct = ((end.cpu.user + end.cpu.system) / 1000 / (elapsed * 1000)) * 100;
  const storedN = end.committed - start.committed;
  console.log('');
  console.log(`sent by nodes      ${rate(end.sent - start.sent)} events/s`);
  console.log(`stored (committed) ${rate(storedN)} events/s, avg batch ${Math.round(storedN / Math.max(1, end.batches - start.batches))}`);
  console.log(`delivered to sub   ${rate(end.received - start.received)} events/s`);
  console.log(`latency node->sub  p50 ${subStats.p50} ms, p90 ${subStats.p90} ms, p99 ${subStats.p99} ms, max ${subStats.max} ms (${subStats.measured} samples)`);
  console.log(`core CPU           ${cpuPct.toFixed(0)}% of one core; event-loop delay p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms max ${(lag.max / 1e6).toFixed(1)} ms; rss ${Math.round(process.memoryUsage().rss / 1048576)} MiB`);
  const commit = await registry.getSingleMetric('apiary_event_commit_seconds')!.get();
  const buckets = commit.values
    .filter((v) => (v as { metricName?: string }).metricName === 'apiary_event_commit_seconds_bucket')
    .map((v) => `${v.labels.le}:${v.value}`)
    .join(' ');
  console.log(`commit seconds     cumulative buckets ${buckets}`);
  const childCpu = (c: ChildStats) => `${(((c.cpu.user + c.cpu.system) / 1000 / c.ms) * 100).toFixed(0)}%`;
  console.log(`child CPU          nodes ${childCpu(stoppedNodes)}, subscriber ${childCpu(subStats)} (whole run)`);
  console.log(`totals             sent ${stoppedNodes.count}, stored ${committed}, delivered ${subStats.count}; db ${Math.round(statSync(dbPath).size / 1048576)} MiB`);

  await gateway.close();
  await events.close();
  await broker.close();
  db.close();
  dir.cleanup();
}

if (args.role === 'nodes') await runNodes();
else if (args.role === 'subscriber') await runSubscriber();
else await runCore();
