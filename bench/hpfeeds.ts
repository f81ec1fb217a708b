// hpfeeds broker benchmark.
//   node --import tsx bench/hpfeeds.ts [--pubs N] [--subs M] [--seconds S] [--rate R] [--size BYTES] [--json] [--cpuprof DIR]
// The broker runs in a child process (bench/hpfeeds-broker.ts) so its CPU is measured alone;
// publishers and subscribers are HpfeedsClients in this process, all on one channel.
// Phase 1: maximum throughput (publishers keep a bounded window of undelivered messages, so the
//          broker never has to drop). Phase 2: fixed total publish rate, end-to-end latency.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HpfeedsClient } from '../src/hpfeeds/index.js';

interface BrokerStats {
  cpuMicros: number;
  rss: number;
  deliveries: number;
  dropped: number;
}

function parseArgs(argv: string[]) {
  const opts = { pubs: 1, subs: 10, seconds: 5, rate: 10_000, size: 200, window: 4000, json: false, cpuprof: '' };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (name === 'json') {
      opts.json = true;
      continue;
    }
    if (name === 'cpuprof') {
      opts.cpuprof = argv[++i];
      continue;
    }
    if (!(name in opts)) throw new Error(`unknown option ${argv[i]}`);
    (opts as unknown as Record<string, number>)[name] = Number(argv[++i]);
  }
  return opts;
}

function startBrokerChild(cpuprofDir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(new URL('./hpfeeds-broker.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx', ...(cpuprofDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuprofDir}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`broker child exited with ${code}`)));
    child.on('message', (msg: { type: string; port?: number }) => {
      if (msg.type === 'ready') resolve({ child, port: msg.port! });
    });
  });
}

function brokerStats(child: ChildProcess): Promise<BrokerStats> {
  return new Promise((resolve) => {
    const onMessage = (msg: { type: string } & BrokerStats) => {
      if (msg.type !== 'stats') return;
      child.off('message', onMessage);
      resolve(msg);
    };
    child.on('message', onMessage);
    child.send({ type: 'stats' });
  });
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { child, port } = await startBrokerChild(opts.cpuprof);
  const idle = await brokerStats(child);
  const connect = (ident: string, secret: string) =>
    new HpfeedsClient({ host: '127.0.0.1', port, ident, secret, reconnect: false, maxBufferedBytes: 64 * 1024 * 1024 });

  const received = new Array<number>(opts.subs).fill(0);
  let latencies = new Float64Array(0);
  let latencyCount = 0;
  let recordLatency = false;
  const subs = Array.from({ length: opts.subs }, (_, i) => {
    const c = connect('bench-sub', 'sub-secret');
    c.subscribe('bench');
    c.on('message', (_ident, _channel, payload) => {
      received[i]++;
      if (recordLatency && latencyCount < latencies.length) latencies[latencyCount++] = performance.now() - payload.readDoubleLE(0);
    });
    return c;
  });
  const pubs = Array.from({ length: opts.pubs }, () => connect('bench-pub', 'pub-secret'));
  await Promise.all([...subs, ...pubs].map((c) => c.connect()));

  const payload = Buffer.alloc(opts.size, 0x78);
  let published = 0;
  const minReceived = () => Math.min(...received);
  const publishOne = (pub: HpfeedsClient) => {
    payload.writeDoubleLE(performance.now(), 0);
    pub.publish('bench', payload);
    published++;
  };
  // Warm up (also proves every subscription is active before measuring).
  while (minReceived() < 2000) {
    for (const pub of pubs) publishOne(pub);
    if (published % 200 === 0) await tick();
  }
  while (minReceived() < published) await sleep(5);

  const drain = async () => {
    const deadline = Date.now() + 15_000;
    while (minReceived() < published && Date.now() < deadline) await sleep(2);
  };

  // Phase 1: maximum throughput.
  let stats0 = await brokerStats(child);
  const received0 = received.reduce((a, b) => a + b, 0);
  let started = performance.now();
  const endAt = started + opts.seconds * 1000;
  while (performance.now() < endAt) {
    let burst = 0;
    while (published - minReceived() < opts.window && burst < 512) {
      publishOne(pubs[published % pubs.length]);
      burst++;
    }
    await tick();
  }
  const elapsed = (performance.now() - started) / 1000;
  const deliveredInPhase = received.reduce((a, b) => a + b, 0) - received0;
  await drain();
  let stats1 = await brokerStats(child);
  const throughput = {
    deliveredPerSecond: Math.round(deliveredInPhase / elapsed),
    publishedPerSecond: Math.round(deliveredInPhase / opts.subs / elapsed),
    brokerCpuMicrosPerDelivery: (stats1.cpuMicros - stats0.cpuMicros) / (stats1.deliveries - stats0.deliveries),
    brokerCpuPercent: ((stats1.cpuMicros - stats0.cpuMicros) / 1e6 / elapsed) * 100,
  };

  // Phase 2: fixed rate.
  latencies = new Float64Array(Math.ceil(opts.rate * opts.seconds * opts.subs * 1.1));
  latencyCount = 0;
  recordLatency = true;
  stats0 = await brokerStats(child);
  started = performance.now();
  let sentAtRate = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const due = Math.min(opts.rate * opts.seconds, Math.floor(((now - started) / 1000) * opts.rate));
      while (sentAtRate < due) {
        publishOne(pubs[sentAtRate % pubs.length]);
        sentAtRate++;
      }
      if (sentAtRate >= opts.rate * opts.seconds) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await drain();
  recordLatency = false;
  stats1 = await brokerStats(child);
  const sorted = latencies.slice(0, latencyCount).sort();
  const fixedRate = {
    rate: opts.rate,
    latencyP50Ms: percentile(sorted, 50),
    latencyP99Ms: percentile(sorted, 99),
    latencyMaxMs: sorted[sorted.length - 1],
    samples: latencyCount,
    brokerCpuMicrosPerDelivery: (stats1.cpuMicros - stats0.cpuMicros) / (stats1.deliveries - stats0.deliveries),
  };

  const result = {
    pubs: opts.pubs,
    subs: opts.subs,
    payloadBytes: opts.size,
    throughput,
    fixedRate,
    brokerRssIdleMiB: idle.rss / 1024 / 1024,
    brokerRssMiB: stats1.rss / 1024 / 1024,
    dropped: stats1.dropped,
  };
  if (opts.json) {
    console.log(JSON.stringify(result));
  } else {
    const f = (n: number, d = 2) => n.toFixed(d);
    console.log(`hpfeeds bench: ${opts.pubs} publisher(s) x ${opts.subs} subscriber(s), ${opts.size}-byte payloads`);
    console.log(`  max throughput   ${throughput.deliveredPerSecond.toLocaleString('en')} deliveries/s (${throughput.publishedPerSecond.toLocaleString('en')} publishes/s), broker CPU ${f(throughput.brokerCpuPercent, 0)}%`);
    console.log(`  broker CPU       ${f(throughput.brokerCpuMicrosPerDelivery, 3)} µs/delivery at max throughput, ${f(fixedRate.brokerCpuMicrosPerDelivery, 3)} µs/delivery at ${opts.rate} msg/s`);
    console.log(`  latency @ ${opts.rate}/s  p50 ${f(fixedRate.latencyP50Ms, 3)} ms, p99 ${f(fixedRate.latencyP99Ms, 3)} ms, max ${f(fixedRate.latencyMaxMs, 3)} ms (${latencyCount} samples)`);
    console.log(`  broker RSS       ${f(result.brokerRssMiB, 1)} MiB after the run (${f(result.brokerRssIdleMiB, 1)} MiB idle, tsx loader included), dropped ${result.dropped}`);
  }

  await Promise.all([...subs, ...pubs].map((c) => c.close(1000)));
  child.send({ type: 'stop' });
  child.removeAllListeners('exit');
  await new Promise((r) => child.once('exit', r));
}

await main();
