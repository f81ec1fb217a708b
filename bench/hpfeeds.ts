// hpfeeds broker benchmark: fan-out shapes as fast as possible and at fixed rates.
//   node --import tsx bench/hpfeeds.ts [--shapes 1x1,1x10,10x10,1x100] [--seconds S] [--size BYTES]
//        [--lib PATH/src/hpfeeds/index.ts] [--compare PATH/src/hpfeeds/index.ts] [--json]
//
// Each shape gets a fresh broker in a child process (bench/hpfeeds-broker.ts, broker defaults),
// so its CPU time and RSS are its own; they are read from /proc/<pid>. Publishers and
// subscribers live in this process and are deliberately lean (raw sockets, a frame-length walker
// instead of a decoder), so the load generator is not the bottleneck: its CPU is printed next
// to the broker's, and a row where it is not below the broker's is flagged.
//
// Phases per shape:
//   max   publishers write as fast as their sockets accept (TCP back-pressure is all that slows
//         them) for S seconds; loss = messages a subscriber never received.
//   rate  a fixed total publish rate for S seconds: end-to-end latency p50/p99, measured on every
//         message of the first and the last subscriber (the broker writes to them first and last).
// RSS: before (idle, clients connected), peak (sampled every 20 ms in both phases), after
// (3.5 s idle after the drain: the broker collects garbage once it has been quiet for 2 s). `--compare` runs the same shapes against another build
// (e.g. `git worktree add /tmp/broker-old 3b0365e`) and prints both.
// Diagnostics (env): BENCH_MEMORY=1 prints the child's process.memoryUsage() after each shape;
// BENCH_CHILD_FLAGS adds node flags to the child (e.g. --max-semi-space-size=1); BENCH_IDLE_MS
// changes the idle time before "after" is read.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { encodeAuthFromSecret, encodePublish, encodeSubscribe } from '../src/hpfeeds/index.js';

interface Shape {
  name: string;
  pubs: number;
  subs: number;
  /** Total publishes per second in the fixed-rate phase. */
  rate: number;
}

const ALL_SHAPES: Record<string, Shape> = {
  '1x1': { name: '1x1', pubs: 1, subs: 1, rate: 10_000 },
  '1x10': { name: '1x10', pubs: 1, subs: 10, rate: 10_000 },
  '10x10': { name: '10x10', pubs: 10, subs: 10, rate: 10_000 },
  '1x100': { name: '1x100', pubs: 1, subs: 100, rate: 500 },
};

function parseArgs(argv: string[]) {
  const opts = { shapes: Object.keys(ALL_SHAPES), seconds: 3, size: 200, lib: '', compare: '', json: false };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (name === 'json') opts.json = true;
    else if (name === 'shapes') opts.shapes = argv[++i].split(',');
    else if (name === 'lib' || name === 'compare') opts[name] = argv[++i];
    else if (name === 'seconds' || name === 'size') opts[name] = Number(argv[++i]);
    else throw new Error(`unknown option ${argv[i]}`);
  }
  for (const s of opts.shapes) if (!ALL_SHAPES[s]) throw new Error(`unknown shape ${s}`);
  return opts;
}

// --- the broker child ----------------------------------------------------------------------------

interface Child {
  proc: ChildProcess;
  port: number;
}

async function startBroker(lib: string): Promise<Child> {
  const proc = fork(fileURLToPath(new URL('./hpfeeds-broker.ts', import.meta.url)), lib ? ['--lib', lib] : [], {
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_MEMORY ? ['--expose-gc'] : []), ...(process.env.BENCH_CHILD_FLAGS ?? '').split(' ').filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`broker child exited with ${code}`)));
    proc.on('message', (msg: { type: string; port?: number }) => {
      if (msg.type === 'ready') resolve(msg.port!);
    });
  });
  return { proc, port };
}

async function stopBroker(child: Child): Promise<void> {
  child.proc.removeAllListeners('exit');
  const exited = new Promise((r) => child.proc.once('exit', r));
  child.proc.send({ type: 'stop' });
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function brokerCounters(child: Child): Promise<{ deliveries: number; dropped: number; disconnects: number }> {
  return new Promise((resolve) => {
    const onMessage = (msg: { type: string; deliveries: number; dropped: number; disconnects: number }) => {
      if (msg.type !== 'stats') return;
      child.proc.off('message', onMessage);
      resolve(msg);
    };
    child.proc.on('message', onMessage);
    child.proc.send({ type: 'stats' });
  });
}

const CLOCK_TICKS = 100; // USER_HZ on Linux
function procCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}
function procRssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
function selfCpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

// --- lean clients --------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Connects, reads OP_INFO, authenticates (plus `then` frames in the same write). */
async function login(port: number, ident: string, secret: string, then: Buffer[]): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  const info = await new Promise<Buffer>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 5 && buf.length >= buf.readUInt32BE(0)) {
        socket.off('data', onData);
        resolve(buf);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
  const nameLength = info[5];
  const nonce = info.subarray(6 + nameLength, info.readUInt32BE(0));
  socket.write(Buffer.concat([encodeAuthFromSecret(nonce, ident, secret), ...then]));
  return socket;
}

/**
 * Counts messages by bytes (every frame has the same length), so a subscriber costs one add per
 * read. Samplers (the first and the last subscriber, which the broker writes to first and last)
 * also walk the frames of the rate phase and record each one's latency.
 */
class LeanSubscriber {
  private bytes = 0;
  private carry: Buffer | undefined;
  sampling = false;
  constructor(
    readonly socket: Socket,
    private readonly frameLength: number,
    private readonly sampler: boolean,
    private readonly onLatency: (ms: number) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
  }

  get received(): number {
    return Math.floor(this.bytes / this.frameLength);
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.sampler) return;
    let buf = chunk;
    if (this.carry !== undefined) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = undefined;
    }
    // Frames are all frameLength long: the first starts where the previous chunk's last ended.
    const len = this.frameLength;
    let off = 0;
    if (this.sampling) {
      const now = performance.timeOrigin + performance.now();
      for (; off + len <= buf.length; off += len) this.onLatency(now - buf.readDoubleLE(off + len - this.payloadBytes));
    } else {
      off = buf.length - (buf.length % len);
    }
    if (off < buf.length) this.carry = Buffer.from(buf.subarray(off));
  }

  payloadBytes = 0;
}

// --- one shape -------------------------------------------------------------------------------------

interface PhaseResult {
  phase: 'max' | 'rate';
  published: number;
  publishedPerSecond: number;
  deliveriesPerSecond: number;
  lossPercent: number;
  brokerDropped: number;
  brokerDisconnects: number;
  p50Ms: number;
  p99Ms: number;
  brokerCpuMicrosPerDelivery: number;
  brokerCpuPercent: number;
  loadgenCpuPercent: number;
  rssPeakMiB: number;
}

interface ShapeResult {
  shape: string;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  phases: PhaseResult[];
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function runShape(shape: Shape, opts: ReturnType<typeof parseArgs>, lib: string): Promise<ShapeResult> {
  const child = await startBroker(lib);
  const pid = child.proc.pid!;
  let latencies = new Float64Array(16);
  let latencyCount = 0;
  let sampling = false;
  const onLatency = (ms: number) => {
    if (sampling && latencyCount < latencies.length) latencies[latencyCount++] = ms;
  };
  const frame = encodePublish('bench-pub', 'bench', Buffer.alloc(opts.size, 0x78));
  const stampAt = frame.length - opts.size;
  const subs: LeanSubscriber[] = [];
  for (let i = 0; i < shape.subs; i++) {
    const socket = await login(child.port, 'bench-sub', 'sub-secret', [encodeSubscribe('bench-sub', 'bench')]);
    const sub = new LeanSubscriber(socket, frame.length, i === 0 || i === shape.subs - 1, onLatency);
    sub.payloadBytes = opts.size;
    subs.push(sub);
  }
  const pubs: Socket[] = [];
  for (let i = 0; i < shape.pubs; i++) {
    const s = await login(child.port, 'bench-pub', 'pub-secret', []);
    s.on('error', () => {});
    s.resume();
    pubs.push(s);
  }
  let published = 0;
  /** Writes `count` frames to `pub` in one write, each stamped with the current time. */
  const publishBatch = (pub: Socket, count: number) => {
    const batch = Buffer.allocUnsafe(frame.length * count);
    const now = performance.timeOrigin + performance.now();
    for (let i = 0; i < count; i++) {
      frame.copy(batch, i * frame.length);
      batch.writeDoubleLE(now, i * frame.length + stampAt);
    }
    pub.write(batch);
    published += count;
  };
  const minReceived = () => subs.reduce((m, s) => Math.min(m, s.received), Infinity);
  const totalReceived = () => subs.reduce((sum, s) => sum + s.received, 0);
  /** Waits until every subscriber has everything, or until nothing moved for 3 s. */
  const drain = async () => {
    let last = -1;
    let stillSince = Date.now();
    while (minReceived() < published && Date.now() - stillSince < 3000) {
      const total = totalReceived();
      if (total !== last) {
        last = total;
        stillSince = Date.now();
      }
      await sleep(20);
    }
  };

  // Warm-up; also proves every subscription is active.
  for (let i = 0; i < 10; i++) publishBatch(pubs[i % pubs.length], 100);
  await drain();
  await sleep(300);
  const rssBeforeMiB = procRssMiB(pid);

  let rssPeak = 0;
  const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, procRssMiB(pid))), 20);
  const phases: PhaseResult[] = [];
  for (const phase of ['max', 'rate'] as const) {
    rssPeak = procRssMiB(pid);
    const published0 = published;
    const received0 = subs.map((s) => s.received);
    const counters0 = await brokerCounters(child);
    const cpu0 = procCpuMicros(pid);
    const self0 = selfCpuMicros();
    latencyCount = 0;
    sampling = phase === 'rate';
    for (const sub of subs) sub.sampling = sampling;
    const started = performance.now();
    const endAt = started + opts.seconds * 1000;
    if (phase === 'max') {
      // Each publisher keeps ~256 KiB in its socket; TCP back-pressure decides the pace.
      const perWrite = Math.max(1, Math.floor(16384 / frame.length));
      while (performance.now() < endAt) {
        for (const pub of pubs) while (pub.writableLength < 256 * 1024) publishBatch(pub, perWrite);
        await new Promise<void>((r) => setImmediate(r));
      }
    } else {
      let sent = 0;
      const total = shape.rate * opts.seconds;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * shape.rate));
        // What is due is spread over the publishers, one write each per step, as clients that
        // flush once per event-loop turn do.
        const step = due - sent;
        for (let p = 0; p < pubs.length; p++) {
          const n = Math.floor(step / pubs.length) + (p < step % pubs.length ? 1 : 0);
          if (n > 0) publishBatch(pubs[(p + sent) % pubs.length], n);
        }
        sent = due;
        await sleep(2);
      }
    }
    const elapsed = (performance.now() - started) / 1000;
    await drain();
    const cpu1 = procCpuMicros(pid);
    const self1 = selfCpuMicros();
    const counters1 = await brokerCounters(child);
    const wall = (performance.now() - started) / 1000;
    const inPhase = published - published0;
    const expected = inPhase * subs.length;
    const got = subs.reduce((sum, s, i) => sum + (s.received - received0[i]), 0);
    const deliveries = counters1.deliveries - counters0.deliveries;
    const sorted = latencies.subarray(0, latencyCount).sort();
    phases.push({
      phase,
      published: inPhase,
      publishedPerSecond: Math.round(inPhase / elapsed),
      deliveriesPerSecond: Math.round(got / elapsed),
      lossPercent: expected === 0 ? 0 : (100 * (expected - got)) / expected,
      brokerDropped: counters1.dropped - counters0.dropped,
      brokerDisconnects: counters1.disconnects - counters0.disconnects,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      brokerCpuMicrosPerDelivery: (cpu1 - cpu0) / Math.max(1, deliveries),
      brokerCpuPercent: ((cpu1 - cpu0) / 1e6 / wall) * 100,
      loadgenCpuPercent: ((self1 - self0) / 1e6 / wall) * 100,
      rssPeakMiB: rssPeak,
    });
    if (phase === 'max') latencies = new Float64Array(Math.ceil(shape.rate * opts.seconds * 2 * 1.1));
  }
  clearInterval(rssTimer);
  await sleep(Number(process.env.BENCH_IDLE_MS ?? 3500));
  const rssAfterMiB = procRssMiB(pid);
  if (process.env.BENCH_MEMORY) {
    child.proc.send({ type: 'memory' });
    const m = await new Promise((r) => child.proc.once('message', r));
    console.log(shape.name, 'after', JSON.stringify(m));
  }
  for (const s of [...subs.map((s) => s.socket), ...pubs]) s.destroy();
  await stopBroker(child);
  return { shape: shape.name, rssBeforeMiB, rssAfterMiB, phases };
}

// --- output ----------------------------------------------------------------------------------------

function uptime(): string {
  return `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')}`;
}

function printTable(label: string, results: ShapeResult[]): void {
  const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  console.log(`\n${label}`);
  console.log(
    'shape  phase  pub/s     deliv/s    loss%   p50ms   p99ms   µs/deliv  broker%  loadgen%  RSS MiB before/peak/after',
  );
  for (const r of results) {
    for (const p of r.phases) {
      const flag =
        p.loadgenCpuPercent >= 85
          ? '  (!) load generator saturated: figures are its limit'
          : p.phase === 'max' && p.loadgenCpuPercent >= p.brokerCpuPercent
            ? '  (!) load generator CPU >= broker CPU'
            : '';
      console.log(
        `${r.shape.padEnd(6)} ${p.phase.padEnd(5)}  ${String(p.publishedPerSecond).padStart(7)}  ${String(p.deliveriesPerSecond).padStart(9)}  ${f(p.lossPercent, 2).padStart(6)}  ${f(p.p50Ms, 2).padStart(6)}  ${f(p.p99Ms, 2).padStart(6)}  ${f(p.brokerCpuMicrosPerDelivery, 2).padStart(8)}  ${f(p.brokerCpuPercent, 0).padStart(7)}  ${f(p.loadgenCpuPercent, 0).padStart(8)}  ${f(r.rssBeforeMiB)}/${f(p.rssPeakMiB)}/${f(r.rssAfterMiB)}${flag}`,
      );
    }
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const runs: Array<{ label: string; lib: string }> = [{ label: opts.lib ? `broker from ${opts.lib}` : 'broker: this checkout', lib: opts.lib }];
  if (opts.compare) runs.push({ label: `broker from ${opts.compare}`, lib: opts.compare });
  const out: Array<{ label: string; results: ShapeResult[] }> = [];
  if (!opts.json) {
    console.log(`hpfeeds bench: ${opts.size}-byte payloads, ${opts.seconds} s per phase, shapes ${opts.shapes.join(' ')}; ${uptime()} (2 cores shared: compare rows of one run)`);
  }
  for (const run of runs) {
    const results: ShapeResult[] = [];
    for (const name of opts.shapes) results.push(await runShape(ALL_SHAPES[name], opts, run.lib));
    out.push({ label: run.label, results });
    if (!opts.json) printTable(`${run.label} (${uptime()})`, results);
  }
  if (opts.json) console.log(JSON.stringify({ load: loadavg(), runs: out }));
  else {
    console.log(
      '\nloss%: messages published in the phase that a subscriber never got. µs/deliv: broker CPU per message written to a subscriber.',
    );
    console.log('broker%/loadgen%: CPU of the broker child and of this process, % of one core over the phase and its drain.');
    console.log('  max rows are flagged when the load generator is not below the broker; any row when it is saturated (>= 85%).');
    console.log('  At fixed rates the receiving side makes one read per delivery, as the broker makes one write: similar CPU is expected there.');
  }
}

await main();
