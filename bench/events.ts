// Attack event pipeline throughput, end to end: simulated nodes (child processes) -> TCP -> node
// gateway -> event service (normalise, batch to the SQLite writer thread) -> in-process hpfeeds
// broker -> TCP -> HpfeedsClient subscriber (another child process). The core process runs only the
// core, so its CPU figures are its own: whole process (all threads), its main thread (the event
// loop) and the other threads (SQLite writer, read pool, GC, libuv) separately, per stored event.
// Latency = subscriber receipt time - the event's timestamp (PotEvent: the node's send time; the
// status and text forms carry no time of their own, so there it is the core's receive time).
// Latency and the stages count the events sent in the measured window; what was sent in the warm-up
// and arrives in the window is only counted (and its worst latency printed).
//
//   node --import tsx bench/events.ts [--nodes 10] [--rate 3000] [--seconds 10] [--warmup 2] [--catch-up 10] [--form potevent|status|text]
//                                     [--node-procs 2] [--batch 2000] [--delay 2] [--high-water 4000]
//                                     [--analytics on] [--analytics-flush-ms 1000] [--post-commit-slice 128 (0: whole batch in one go)]
//                                     [--wal-checkpointer on|off] [--malloc tuned|default] [--scavenges auto|parallel] [--pretenuring off|on] [--cpu-profile FILE]
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { analyticsQueryModules, analyticsWriterHook } from '../src/analytics/index.js';
import { stopPretenuring, tuneScavenges } from '../src/app/gc-tuning.js';
import { openDatabase, ReadPool, WalCheckpointer } from '../src/db/index.js';
import { createEventService, eventQueryModules, SqliteEventStore } from '../src/events/index.js';
import { Broker, HpfeedsClient, MemoryAuthStore } from '../src/hpfeeds/index.js';
import { createNodeGateway } from '../src/nodes/index.js';
import { SimulatedNode, type SimulatedNodeOptions } from '../src/simulator/index.js';
import { tempDir } from '../test/helpers/tmp.js';
import { nextMessage } from './ipc.js';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'core' },
    nodes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '3000' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    // Most seconds to wait after the warm-up for the core to catch up with what it sent (see below).
    'catch-up': { type: 'string', default: '10' },
    batch: { type: 'string', default: '2000' },
    delay: { type: 'string', default: '2' },
    'high-water': { type: 'string', default: '4000' },
    form: { type: 'string', default: 'potevent' },
    'node-procs': { type: 'string', default: '2' },
    first: { type: 'string', default: '0' },
    port: { type: 'string', default: '0' },
    channel: { type: 'string', default: 'apiary.events' },
    // The core runs attack analytics by default (ANALYTICS_ENABLED): --analytics on measures that.
    analytics: { type: 'string', default: 'off' },
    // ANALYTICS_FLUSH_MS: how often the folded analytics are written (the core's default 1000).
    'analytics-flush-ms': { type: 'string', default: '1000' },
    // Most committed events handed to republishing per slice (0: the whole batch in one go, as before).
    'post-commit-slice': { type: 'string', default: '128' },
    // The core copies the WAL back from a thread of its own (src/db/wal-checkpointer.ts); off: SQLite's default.
    'wal-checkpointer': { type: 'string', default: 'on' },
    // `apiary serve` picks serial scavenges on 2 cores or fewer (src/app/gc-tuning.ts): 'auto' does
    // the same here, 'parallel' keeps V8's default for an A/B.
    scavenges: { type: 'string', default: 'auto' },
    // `apiary serve` turns V8's allocation-site pretenuring off (src/app/gc-tuning.ts): 'off' does
    // the same here, 'on' keeps V8's default for an A/B.
    pretenuring: { type: 'string', default: 'off' },
    // The core is started with MALLOC_MMAP_THRESHOLD_=65536 (npm start, Dockerfile, the systemd unit;
    // see src/hpfeeds/idle-gc.ts): 'tuned' measures the core that way, 'default' with glibc's own.
    malloc: { type: 'string', default: 'tuned' },
    // Writes a V8 CPU profile of the core's main thread over the measured window (open it in Chrome's
    // DevTools); the profiler's own cost is in the figures of such a run.
    'cpu-profile': { type: 'string' },
  },
});

const SUB_IDENT = 'bench-subscriber';
const LAG_RESOLUTION_MS = 10;
const SUB_SECRET = 'bench-subscriber-secret';

function send(msg: unknown): void {
  process.send!(msg);
}

// ------------------------------------------------------------------ node simulators (child)
async function runNodes(): Promise<void> {
  const port = Number(args.port);
  const nodes: SimulatedNode[] = [];
  // The form is one flag handed to the simulator: 'text' is the real node's cowrie text lines
  // (PotStatusUpdate with the human message), through the simulator's cowrieText option.
  const form = args.form === 'potevent' ? 'potevent' : 'status';
  const textOption: Record<string, unknown> = args.form === 'text' ? { cowrieText: true } : {};
  const first = Number(args.first);
  for (let i = first; i < first + Number(args.nodes); i++) {
    const node = new SimulatedNode({
      name: `bench-node-${i}`,
      host: '127.0.0.1',
      port,
      eventsPerSecond: Number(args.rate),
      eventForm: form,
      heartbeatMs: 30_000,
      pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }],
      ...textOption,
    } as SimulatedNodeOptions);
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
  // Events the nodes sent before the measured window (the warm-up) are not in the figures, only
  // counted: a backlog built while the core was still compiling its hot paths is the warm-up's.
  let since = Infinity;
  let early = 0;
  let earlyMaxMs = 0;
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
    if (ts < since) {
      early++;
      earlyMaxMs = Math.max(earlyMaxMs, lat);
      return;
    }
    hist[Math.min(100_000, Math.max(0, Math.round(lat * 10)))]!++;
    measured++;
  });
  await client.connect();
  client.subscribe([args.channel!, 'probe']);
  client.publish('probe', 'x');
  const timer = setInterval(() => send({ type: 'received', count: received }), 250);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  process.on('message', async (m: { type: string; since?: number }) => {
    if (m.type === 'measure') {
      measuring = true;
      since = m.since!;
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
      send({ type: 'stopped', cpu: process.cpuUsage(cpu0), ms: performance.now() - t0, count: received, measured, early, earlyMaxMs, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: pct(1) });
      await client.close();
      process.exit(0);
    }
  });
}

// ------------------------------------------------------------------ core (this process)
function post(session: Session, method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))));
}

function child(role: string, extra: string[]): ChildProcess {
  return fork(fileURLToPath(import.meta.url), ['--role', role, ...extra], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}


interface ChildStats {
  count: number;
  cpu: NodeJS.CpuUsage;
  ms: number;
}

const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim() || 100);

/** CPU µs of one thread of this process, from /proc (utime + stime). */
function threadCpuUs(tid: number): number {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return NaN;
  }
}

/** CPU µs of every thread of this process, by thread id. */
function allThreadsCpuUs(): Map<number, number> {
  const m = new Map<number, number>();
  for (const t of readdirSync('/proc/self/task')) m.set(Number(t), threadCpuUs(Number(t)));
  return m;
}

function load(): string {
  return readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');
}

async function runCore(): Promise<void> {
  const scavenges = args.scavenges === 'parallel' ? 'parallel' : tuneScavenges();
  if (args.pretenuring !== 'on') stopPretenuring();
  const loadBefore = load();
  const dir = tempDir('apiary-bench-events-');
  const dbPath = `${dir.path}/core.db`;
  // --wal-checkpointer off: SQLite's default, a checkpoint inside whichever commit passes 1000 pages.
  const ownCheckpointer = args['wal-checkpointer'] !== 'off';
  const db = openDatabase(dbPath, { autoCheckpoint: !ownCheckpointer });
  const checkpointer = ownCheckpointer ? new WalCheckpointer({ dbPath }) : undefined;
  const logger = pino({ level: 'warn' }) as unknown as FastifyBaseLogger;
  const registry = new Registry();
  const broker = new Broker({
    logger,
    authStore: new MemoryAuthStore([{ ident: SUB_IDENT, owner: 'bench', secret: SUB_SECRET, pubchans: ['probe'], subchans: [args.channel!, 'probe'] }]),
  });
  const hp = await broker.listen('tcp:port=0:interface=127.0.0.1');
  const gateway = await createNodeGateway({ db, logger, registry, enrollment: 'open' });
  // Composed like src/app.ts: writer thread + read pool, back-pressure from the events to the gateway.
  const analytics = args.analytics === 'on';
  const readPool = new ReadPool({ dbPath, modules: { ...eventQueryModules(), ...(analytics ? analyticsQueryModules() : {}) }, size: 1 });
  const store = new SqliteEventStore({
    dbPath,
    readPool,
    batchHooks: analytics ? [{ url: analyticsWriterHook(), options: { flushMs: Number(args['analytics-flush-ms']) } }] : [],
    walCheckpointer: ownCheckpointer,
  });
  const events = createEventService({
    store,
    logger,
    registry,
    publisher: broker,
    batch: {
      maxSize: Number(args.batch),
      maxDelayMs: Number(args.delay),
      highWaterMark: Number(args['high-water']),
      ...(args['post-commit-slice'] === '0' ? { postCommitSlice: Number.MAX_SAFE_INTEGER, postCommitBudgetMs: Infinity } : { postCommitSlice: Number(args['post-commit-slice']) }),
    },
    retention: { maxAgeDays: 0, maxRows: 0 },
  });
  events.attach(gateway);
  let pausedMs = 0;
  let pausedAt = 0;
  events.onFlow((saturated) => {
    gateway.setInputPaused(saturated);
    if (saturated) pausedAt = performance.now();
    else pausedMs += performance.now() - pausedAt;
  });
  let committed = 0;
  let batches = 0;
  // Where the time goes, per stage, in the same 0.1 ms histograms as the subscriber's latency: the
  // node's timestamp to the core's receipt (socket, framing), to the commit being known (batch wait,
  // writer queue, commit), to the hand-over to the broker (post-commit slicing). One clock read per
  // batch or slice. The subscriber's total minus the last stage is the broker's queue and socket.
  const stages = { received: new Uint32Array(100_001), committed: new Uint32Array(100_001), published: new Uint32Array(100_001) };
  let staging = false;
  let windowStart = Infinity;
  // The worst node->receipt lag of each second, printed with that second: says when a backlog
  // formed (a stall of the core) and how long it took to drain.
  let secondMaxReceivedMs = 0;
  const note = (h: Uint32Array, ms: number) => h[Math.min(100_000, Math.max(0, Math.round(ms * 10)))]!++;
  events.onBatchCommitted((b) => {
    batches++;
    if (!staging) return;
    const now = Date.now();
    for (let i = 0; i < b.length; i++) {
      if (b[i]!.timestamp < windowStart) continue;
      const receivedMs = b[i]!.receivedAt - b[i]!.timestamp;
      if (receivedMs > secondMaxReceivedMs) secondMaxReceivedMs = receivedMs;
      note(stages.received, receivedMs);
      note(stages.committed, now - b[i]!.timestamp);
    }
  });
  // Worst node->broker lag of the events handed to the broker since the last catch-up check.
  let catchingUp = false;
  let catchUpLagMs = 0;
  events.onCommitted((b) => {
    committed += b.length;
    if (catchingUp) {
      const now = Date.now();
      for (let i = 0; i < b.length; i++) catchUpLagMs = Math.max(catchUpLagMs, now - b[i]!.timestamp);
    }
    if (!staging) return;
    const now = Date.now();
    for (let i = 0; i < b.length; i++) if (b[i]!.timestamp >= windowStart) note(stages.published, now - b[i]!.timestamp);
  });
  const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });

  const sub = child('subscriber', ['--port', String(hp.port), '--channel', args.channel!]);
  await nextMessage(sub, 'ready');
  let received = 0;
  sub.on('message', (m: { type: string; count: number }) => {
    if (m.type === 'received') received = m.count;
  });
  const procs = Math.max(1, Number(args['node-procs']));
  const totalNodes = Number(args.nodes);
  const nodeProcs: ChildProcess[] = [];
  const sentBy: number[] = [];
  for (let p = 0, first = 0; p < procs; p++) {
    const n = Math.floor(totalNodes / procs) + (p < totalNodes % procs ? 1 : 0);
    if (n === 0) continue;
    const proc = child('nodes', ['--port', String(tcp.port), '--nodes', String(n), '--first', String(first), '--rate', args.rate!, '--form', args.form!]);
    first += n;
    const idx = nodeProcs.length;
    sentBy.push(0);
    proc.on('message', (m: { type: string; count: number }) => {
      if (m.type === 'sent') sentBy[idx] = m.count;
    });
    nodeProcs.push(proc);
  }
  const sent = () => sentBy.reduce((a, b) => a + b, 0);
  await Promise.all(nodeProcs.map((p) => nextMessage(p, 'ready')));

  const warmupMs = Number(args.warmup) * 1000;
  const seconds = Number(args.seconds);
  console.log(
    `nodes=${totalNodes} in ${nodeProcs.length} processes, rate/node=${args.rate}/s (offered ${totalNodes * Number(args.rate)}/s), form=${args.form}, ` +
      `batch=${args.batch} delay=${args.delay}ms post-commit-slice=${args['post-commit-slice']} high-water=${args['high-water']} analytics=${args.analytics} malloc=${args.malloc} wal-checkpointer=${args['wal-checkpointer']} scavenges=${scavenges} pretenuring=${args.pretenuring === 'on' ? 'on' : 'off'}, warmup ${args.warmup}s, measure ${seconds}s`,
  );
  await new Promise((r) => setTimeout(r, warmupMs));
  // The warm-up sends at the full rate into a core whose hot paths are not compiled yet, so it
  // usually ends with a backlog (most of a second at 40k/s). The window measures the steady state:
  // it starts once the core has caught up, i.e. after a quarter second in which no event reached the
  // broker more than 50 ms after the node sent it, and at most --catch-up seconds after the warm-up.
  // How long that took is printed; a core that never catches up is measured with its backlog.
  catchingUp = true;
  const catchUpFrom = performance.now();
  let caughtUpMs: number | undefined;
  while (performance.now() - catchUpFrom < Number(args['catch-up']) * 1000) {
    const seen = committed;
    catchUpLagMs = 0;
    await new Promise((r) => setTimeout(r, 250));
    if (committed > seen && catchUpLagMs <= 50) {
      caughtUpMs = performance.now() - catchUpFrom;
      break;
    }
  }
  catchingUp = false;
  console.log(
    caughtUpMs === undefined
      ? `warm-up backlog   not caught up within ${args['catch-up']} s: the window starts with it`
      : `warm-up backlog   caught up ${(caughtUpMs / 1000).toFixed(2)} s after the warm-up (a quarter second with every event at the broker within 50 ms)`,
  );
  windowStart = Date.now();
  sub.send({ type: 'measure', since: windowStart });
  staging = true;
  const profiler = args['cpu-profile'] === undefined ? undefined : new Session();
  if (profiler) {
    profiler.connect();
    await post(profiler, 'Profiler.enable');
    await post(profiler, 'Profiler.setSamplingInterval', { interval: 200 });
    await post(profiler, 'Profiler.start');
  }
  const mainTid = process.pid;
  const threadsBefore = allThreadsCpuUs();
  const start = { t: performance.now(), sent: sent(), committed, received, cpu: process.cpuUsage(), main: threadCpuUs(mainTid), batches, pausedMs };
  // GC pauses of the main thread (wall ms): young-generation scavenges are what per-event garbage costs.
  const gcPauses: { ms: number; kind: number }[] = [];
  const gcObs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauses.push({ ms: e.duration, kind: ((e as { detail?: { kind?: number } }).detail)?.kind ?? 0 });
  });
  gcObs.observe({ entryTypes: ['gc'] });
  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  lag.enable();
  for (let s = 1; s <= seconds; s++) {
    const before = committed;
    const gcBefore = gcPauses.length;
    secondMaxReceivedMs = 0;
    await new Promise((r) => setTimeout(r, 1000));
    const gcMs = gcPauses.slice(gcBefore).reduce((sum, g) => sum + g.ms, 0);
    console.log(
      `  t=${s}s stored ${committed - before}, delivered ${received}, pending ${events.pendingCount}, worst node->receipt ${secondMaxReceivedMs} ms, ` +
        `gc ${gcPauses.length - gcBefore} pauses ${Math.round(gcMs)} ms, heap ${Math.round(process.memoryUsage().heapUsed / 1048576)} MiB` +
        `${gateway.inputPaused ? ' (input paused)' : ''}`,
    );
  }
  staging = false;
  if (profiler) {
    const { profile } = (await post(profiler, 'Profiler.stop')) as { profile: unknown };
    writeFileSync(args['cpu-profile']!, JSON.stringify(profile));
    profiler.disconnect();
  }
  const end = { t: performance.now(), sent: sent(), committed, received, cpu: process.cpuUsage(start.cpu), main: threadCpuUs(mainTid), batches, pausedMs: pausedMs + (gateway.inputPaused ? performance.now() - pausedAt : 0) };
  const threadsAfter = allThreadsCpuUs();
  lag.disable();
  gcObs.disconnect();
  const elapsed = (end.t - start.t) / 1000;
  const loadAfter = load();

  for (const p of nodeProcs) p.send({ type: 'stop' });
  const nodeStats = await Promise.all(nodeProcs.map((p) => nextMessage<ChildStats>(p, 'stopped')));
  const totalSent = nodeStats.reduce((a, b) => a + b.count, 0);
  // let the tail drain through the pipeline
  const drainDeadline = Date.now() + 30_000;
  while (Date.now() < drainDeadline && (committed < totalSent || received < committed)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  sub.send({ type: 'stop' });
  const subStats = await nextMessage<ChildStats & { measured: number; early: number; earlyMaxMs: number; p50: number; p90: number; p99: number; max: number }>(sub, 'stopped');

  const rate = (n: number) => Math.round(n / elapsed);
  const storedN = end.committed - start.committed;
  const cpuUs = end.cpu.user + end.cpu.system;
  const mainUs = end.main - start.main;
  const pct = (us: number) => `${((us / 1000 / (elapsed * 1000)) * 100).toFixed(0)}%`;
  const perEvent = (us: number) => (storedN > 0 ? (us / storedN).toFixed(1) : 'n/a');
  console.log('');
  console.log(`machine load       ${loadBefore} before, ${loadAfter} after (1/5/15 min; 2 cores)`);
  console.log(`sent by nodes      ${rate(end.sent - start.sent)} events/s (input paused ${((end.pausedMs - start.pausedMs) / 10 / elapsed).toFixed(0)}% of the time)`);
  console.log(`stored (committed) ${rate(storedN)} events/s, avg batch ${Math.round(storedN / Math.max(1, end.batches - start.batches))}`);
  console.log(`delivered to sub   ${rate(end.received - start.received)} events/s`);
  const stagePct = (h: Uint32Array, p: number) => {
    let n = 0;
    for (let i = 0; i < h.length; i++) n += h[i]!;
    const want = Math.ceil(n * p);
    for (let i = 0, acc = 0; i < h.length; i++) if ((acc += h[i]!) >= want) return i / 10;
    return NaN;
  };
  const stageLine = (h: Uint32Array) => `p50 ${stagePct(h, 0.5)} / p99 ${stagePct(h, 0.99)} / max ${stagePct(h, 1)}`;
  console.log(
    `stages (ms from the node's timestamp) received ${stageLine(stages.received)}; committed ${stageLine(stages.committed)}; ` +
      `handed to broker ${stageLine(stages.published)}`,
  );
  console.log(`latency node->sub  p50 ${subStats.p50} ms, p90 ${subStats.p90} ms, p99 ${subStats.p99} ms, max ${subStats.max} ms (${subStats.measured} samples: ` +
      `events sent in the window; ${subStats.early} sent in the warm-up and delivered in it, max ${subStats.earlyMaxMs} ms, are not in the figures)`);
  console.log(
    `core CPU           ${pct(cpuUs)} of one core = ${perEvent(cpuUs)} µs/event (main thread ${pct(mainUs)} = ${perEvent(mainUs)} µs/event; ` +
      `other threads: SQLite writer, GC, I/O ${perEvent(cpuUs - mainUs)} µs/event)`,
  );
  // The other threads one by one (the busiest first; worker threads are all named "node", so by id):
  // the SQLite writer is normally the busiest, then the WAL checkpointer, GC helpers and libuv.
  const others = [...threadsAfter]
    .filter(([tid]) => tid !== mainTid)
    .map(([tid, us]) => [tid, us - (threadsBefore.get(tid) ?? 0)] as const)
    .filter(([, us]) => us > 0)
    .sort((a, b) => b[1] - a[1]);
  console.log(`other threads      ${others.slice(0, 6).map(([tid, us]) => `${tid}: ${perEvent(us)}`).join(', ')} µs/event (${others.length} busy)`);
  // monitorEventLoopDelay records the whole interval between its 10 ms timer's runs, so an idle loop
  // reads ~10 ms: the figures are printed as recorded (as in earlier reports), then minus the interval.
  const late = (ns: number) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS).toFixed(1);
  console.log(
    `event loop         delay p50 ${(lag.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, max ${(lag.max / 1e6).toFixed(1)} ms ` +
      `(${LAG_RESOLUTION_MS} ms sampling interval included; beyond it: p99 ${late(lag.percentile(99))} ms, max ${late(lag.max)} ms); rss ${Math.round(process.memoryUsage().rss / 1048576)} MiB`,
  );
  const gcLine = (kind: number, name: string) => {
    const d = gcPauses.filter((g) => g.kind === kind).map((g) => g.ms).sort((x, y) => x - y);
    if (d.length === 0) return `${name} none`;
    const sum = d.reduce((x, y) => x + y, 0);
    return `${name} ${d.length} (p50 ${d[d.length >> 1]!.toFixed(1)} ms, max ${d[d.length - 1]!.toFixed(1)} ms, total ${sum.toFixed(0)} ms)`;
  };
  console.log(`gc pauses          ${gcLine(perfConstants.NODE_PERFORMANCE_GC_MINOR, 'scavenges')}, ${gcLine(perfConstants.NODE_PERFORMANCE_GC_MAJOR, 'mark-compact')}`);
  const commit = await registry.getSingleMetric('apiary_event_commit_seconds')!.get();
  const buckets = commit.values
    .filter((v) => (v as { metricName?: string }).metricName === 'apiary_event_commit_seconds_bucket')
    .map((v) => `${v.labels.le}:${v.value}`)
    .join(' ');
  console.log(`commit seconds     cumulative buckets ${buckets}`);
  if (checkpointer !== undefined) {
    const t = checkpointer.totals;
    console.log(`wal checkpoints    ${t.runs} runs, ${t.frames} pages copied back, ${t.busyRuns} could not restart the WAL, ${t.walFrames} pages in it after the last (whole run)`);
  }
  const childCpu = (c: ChildStats) => `${(((c.cpu.user + c.cpu.system) / 1000 / c.ms) * 100).toFixed(0)}%`;
  console.log(`child CPU          node processes ${nodeStats.map(childCpu).join(' + ')} of a core, subscriber ${childCpu(subStats)} (whole run)`);
  // A simulated node counts an event as sent when it hands it to its socket; stop() destroys the
  // socket, so what a paused core had not read yet (up to 1 MiB per node) is discarded by the node.
  console.log(`totals             sent ${totalSent} (incl. what the nodes still buffered at stop), stored ${committed}, delivered ${subStats.count}; db ${Math.round(statSync(dbPath).size / 1048576)} MiB`);

  await gateway.close();
  await events.close();
  await store.close();
  await readPool.close();
  await checkpointer?.close();
  await broker.close();
  db.close();
  dir.cleanup();
}

/**
 * glibc reads MALLOC_MMAP_THRESHOLD_ at start only: the core role runs again, in a child started
 * with the environment the core is started with, when this process was not.
 */
async function coreWithItsMalloc(): Promise<void> {
  const wanted = args.malloc === 'tuned' ? '65536' : undefined;
  if (process.env.MALLOC_MMAP_THRESHOLD_ === wanted || process.env.APIARY_BENCH_CORE === '1') return runCore();
  const env: NodeJS.ProcessEnv = { ...process.env, APIARY_BENCH_CORE: '1' };
  delete env.MALLOC_MMAP_THRESHOLD_;
  if (wanted !== undefined) env.MALLOC_MMAP_THRESHOLD_ = wanted;
  const core = fork(fileURLToPath(import.meta.url), process.argv.slice(2), { env, execArgv: process.execArgv, stdio: 'inherit' });
  const [code] = (await once(core, 'exit')) as [number | null];
  process.exit(code ?? 1);
}

if (args.role === 'nodes') await runNodes();
else if (args.role === 'subscriber') await runSubscriber();
else await coreWithItsMalloc();
