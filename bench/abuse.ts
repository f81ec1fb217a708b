// Abuse run: what honest traffic sees while unauthenticated or low-privilege peers attack the core.
// The composed core (buildCore, as `apiary serve` runs it) lives in this process; honest peers and
// attackers run in two child processes, so the core's RSS and event loop are its own.
//
// Honest traffic (child "honest"): nodes sending heartbeats and attack events, an hpfeeds
// subscriber receiving them (latency = receipt - the node's event timestamp, same clock), and a
// /healthz prober. Phases, one after the other, each attack running for --seconds:
//   baseline     honest traffic only
//   pot-types    one enrolled node sends --pot-types PotEvents with distinct pot_type values (row 1)
//   pre-auth     --preauth-nodes node-TCP connections each send 1 MiB without a newline before
//                registering, --preauth-hpfeeds hpfeeds connections each send 1 MiB of a PUBLISH
//                frame before AUTH (row 2)
//   stats        --stats-parallel viewers run GET /api/v1/events/stats over --seed-events rows in
//                a loop (row 3)
//   hpfeeds-auth --auth-attempts wrong hpfeeds AUTHs from one address (row 12)
// For each phase it prints the core's RSS (peak), event-loop delay p99, and honest p50/p99 latency
// of event delivery and /healthz, with the machine load.
//
//   node --import tsx bench/abuse.ts [--seconds 10] [--honest-nodes 5] [--rate 20] [--pot-types 50000]
//        [--preauth-nodes 1000] [--preauth-hpfeeds 400] [--stats-parallel 5] [--seed-events 200000]
//        [--auth-attempts 5000] [--phases baseline,pot-types,pre-auth,stats,hpfeeds-auth]
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildCore } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { openDatabase } from '../src/db/index.js';
import { encodeAuth, HpfeedsClient } from '../src/hpfeeds/index.js';
import { SimulatedNode } from '../src/simulator/index.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'core' },
    seconds: { type: 'string', default: '10' },
    'honest-nodes': { type: 'string', default: '5' },
    rate: { type: 'string', default: '20' },
    'pot-types': { type: 'string', default: '50000' },
    'preauth-nodes': { type: 'string', default: '1000' },
    'preauth-hpfeeds': { type: 'string', default: '400' },
    'stats-parallel': { type: 'string', default: '5' },
    'seed-events': { type: 'string', default: '200000' },
    'auth-attempts': { type: 'string', default: '5000' },
    phases: { type: 'string', default: 'baseline,pot-types,pre-auth,stats,hpfeeds-auth' },
    // set by the core for its children
    'api-port': { type: 'string', default: '0' },
    'node-port': { type: 'string', default: '0' },
    'hpfeeds-port': { type: 'string', default: '0' },
    token: { type: 'string', default: '' },
  },
});

const SUB_IDENT = 'abuse-subscriber';
const SUB_SECRET = 'abuse-subscriber-secret';
const MIB = 1024 * 1024;
const n = (name: keyof typeof args) => Number(args[name]);

type Msg = { type: string; [k: string]: unknown };
const send = (m: Msg) => process.send!(m);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Latency histogram in 0.1 ms steps up to 60 s. */
class Histogram {
  private readonly counts = new Uint32Array(600_001);
  count = 0;
  add(ms: number): void {
    this.counts[Math.max(0, Math.min(600_000, Math.round(ms * 10)))]!++;
    this.count++;
  }
  pct(p: number): number {
    if (this.count === 0) return NaN;
    const target = Math.ceil(this.count * p);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return i / 10;
    }
    return 60_000;
  }
  reset(): void {
    this.counts.fill(0);
    this.count = 0;
  }
}

// ------------------------------------------------------------------ honest peers (child)
async function runHonest(): Promise<void> {
  const events = new Histogram();
  const healthz = new Histogram();
  let healthzFailures = 0;
  const sub = new HpfeedsClient({ host: '127.0.0.1', port: n('hpfeeds-port'), ident: SUB_IDENT, secret: SUB_SECRET });
  const marker = Buffer.from('"timestamp":"');
  sub.on('message', (ident: string, _channel, payload: Buffer) => {
    if (!ident.startsWith('honest-')) return; // the flooder's events are not honest traffic
    const at = payload.indexOf(marker);
    if (at < 0) return;
    const ts = Date.parse(payload.toString('latin1', at + marker.length, at + marker.length + 24));
    if (Number.isFinite(ts)) events.add(Date.now() - ts);
  });
  sub.on('error', () => undefined);
  await sub.connect();
  sub.subscribe(['apiary.events']);
  const nodes: SimulatedNode[] = [];
  for (let i = 0; i < n('honest-nodes'); i++) {
    const node = new SimulatedNode({
      name: `honest-${i}`,
      host: '127.0.0.1',
      port: n('node-port'),
      eventsPerSecond: n('rate'),
      eventForm: 'potevent',
      heartbeatMs: 1000,
      pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }],
    });
    node.on('connectError', () => undefined);
    node.start();
    nodes.push(node);
  }
  await Promise.all(nodes.map((node) => (node.registered ? undefined : once(node, 'registered'))));
  let probing = true;
  void (async () => {
    while (probing) {
      const t0 = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${n('api-port')}/healthz`, { signal: AbortSignal.timeout(30_000) });
        await res.arrayBuffer();
        if (res.status === 200) healthz.add(performance.now() - t0);
        else healthzFailures++;
      } catch {
        healthzFailures++;
      }
      await sleep(100);
    }
  })();
  process.on('message', async (m: Msg) => {
    if (m.type === 'reset') {
      events.reset();
      healthz.reset();
      healthzFailures = 0;
    } else if (m.type === 'report') {
      const online = nodes.filter((node) => node.registered).length;
      send({ type: 'report', events: summary(events), healthz: summary(healthz), healthzFailures, online, nodes: nodes.length });
    } else if (m.type === 'stop') {
      probing = false;
      await Promise.all(nodes.map((node) => node.stop()));
      await sub.close();
      process.exit(0);
    }
  });
  send({ type: 'ready' });
}

function summary(h: Histogram): { count: number; p50: number; p99: number } {
  return { count: h.count, p50: h.pct(0.5), p99: h.pct(0.99) };
}

// ------------------------------------------------------------------ attackers (child)
async function potTypeFlood(deadline: number): Promise<string> {
  const node = new SimulatedNode({ name: 'flooder', host: '127.0.0.1', port: n('node-port'), heartbeatMs: 30_000, pots: [] });
  node.on('connectError', () => undefined);
  node.start();
  await once(node, 'registered');
  let sent = 0;
  while (sent < n('pot-types') && Date.now() < deadline) {
    for (let j = 0; j < 500 && sent < n('pot-types'); j++, sent++) {
      node.send({ type: 'PotEvent', node_id: node.nodeId, pot_id: 'p', pot_type: `invented-${sent}`, event_type: 'probe', timestamp: new Date().toISOString(), data: { sent } });
    }
    await sleep(5);
  }
  await sleep(Math.max(0, deadline - Date.now()));
  await node.stop();
  return `${sent} PotEvents with distinct pot types`;
}

function openSockets(port: number, count: number, write: (s: Socket) => void): Promise<Socket[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      new Promise<Socket>((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        s.once('connect', () => {
          write(s);
          resolve(s);
        });
        s.once('close', () => resolve(s));
      }),
    ),
  );
}

async function preAuthFlood(deadline: number): Promise<string> {
  const junk = Buffer.alloc(MIB, 0x61);
  const nodeSockets = await openSockets(n('node-port'), n('preauth-nodes'), (s) => s.write(junk));
  // A PUBLISH frame announcing 1 MiB + header, then its first 1 MiB, before any AUTH.
  const header = Buffer.alloc(5);
  header.writeUInt32BE(MIB + 64, 0);
  header[4] = 3;
  const hpSockets = await openSockets(n('hpfeeds-port'), n('preauth-hpfeeds'), (s) => s.write(Buffer.concat([header, junk])));
  await sleep(Math.max(0, deadline - Date.now()));
  const open = [...nodeSockets, ...hpSockets].filter((s) => !s.destroyed).length;
  for (const s of [...nodeSockets, ...hpSockets]) s.destroy();
  return `${nodeSockets.length} node + ${hpSockets.length} hpfeeds pre-auth connections x 1 MiB (${open} still open at the end)`;
}

async function statsFlood(deadline: number): Promise<string> {
  let done = 0;
  let failed = 0;
  const worker = async () => {
    while (Date.now() < deadline) {
      try {
        const since = new Date(Date.now() - 365 * 86_400_000).toISOString();
        const res = await fetch(`http://127.0.0.1:${n('api-port')}/api/v1/events/stats?since=${since}`, {
          headers: { authorization: `Bearer ${args.token}` },
          signal: AbortSignal.timeout(120_000),
        });
        await res.arrayBuffer();
        if (res.ok) done++;
        else failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: n('stats-parallel') }, worker));
  return `${done} stats queries done, ${failed} refused/failed, ${n('stats-parallel')} in parallel`;
}

async function hpfeedsAuthFlood(deadline: number): Promise<string> {
  let attempts = 0;
  const worker = async () => {
    while (attempts < n('auth-attempts') && Date.now() < deadline) {
      attempts++;
      await new Promise<void>((resolve) => {
        const s = connect(n('hpfeeds-port'), '127.0.0.1');
        const done = () => {
          s.destroy();
          resolve();
        };
        s.on('error', done);
        s.once('close', done);
        s.once('data', () => s.write(encodeAuth('honest-0', Buffer.alloc(20, attempts & 0xff)), () => setTimeout(done, 50)));
        setTimeout(done, 5000);
      });
    }
  };
  await Promise.all(Array.from({ length: 50 }, worker));
  await sleep(Math.max(0, deadline - Date.now()));
  return `${attempts} wrong AUTHs`;
}

async function runAttacker(): Promise<void> {
  const attacks: Record<string, (deadline: number) => Promise<string>> = {
    'pot-types': potTypeFlood,
    'pre-auth': preAuthFlood,
    stats: statsFlood,
    'hpfeeds-auth': hpfeedsAuthFlood,
  };
  process.on('message', async (m: Msg) => {
    if (m.type === 'attack') {
      const attack = attacks[m.name as string];
      const what = attack ? await attack(Date.now() + (m.ms as number)) : 'no attack';
      send({ type: 'attacked', what });
    } else if (m.type === 'stop') process.exit(0);
  });
  send({ type: 'ready' });
}

// ------------------------------------------------------------------ core (main process)
function child(role: string, extra: string[]): ChildProcess {
  return fork(fileURLToPath(import.meta.url), ['--role', role, ...extra], { execArgv: ['--import', 'tsx'] });
}

function next(cp: ChildProcess, type: string): Promise<Msg> {
  return new Promise((resolve) => {
    const on = (m: Msg) => {
      if (m.type !== type) return;
      cp.off('message', on);
      resolve(m);
    };
    cp.on('message', on);
  });
}

function seedEvents(dbPath: string, count: number): void {
  const db = openDatabase(dbPath);
  const insert = db.sqlite.prepare('INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const now = Date.now();
  const types = ['cowrie.login.failed', 'cowrie.session.connect', 'cowrie.command.input', 'cowrie.session.closed'];
  db.sqlite.transaction(() => {
    for (let i = 0; i < count; i++) {
      const t = now - Math.floor((i / count) * 20 * 86_400_000);
      insert.run(`seed-${i % 50}`, 'cowrie-01', 'cowrie', types[i % 4], t, `{"src_ip":"10.0.${(i >> 8) & 255}.${i & 255}"}`, t);
    }
  })();
  db.close();
}

async function runCore(): Promise<void> {
  const dir = tempDir('apiary-abuse-');
  const phases = args.phases!.split(',').filter(Boolean);
  const seconds = n('seconds');
  process.stdout.write(`abuse run: ${seconds} s per phase; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  if (phases.includes('stats')) {
    const t0 = performance.now();
    seedEvents(join(dir.path, 'apiary.sqlite'), n('seed-events'));
    process.stdout.write(`seeded ${n('seed-events')} events in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const config = loadConfig(
    ['--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'],
    { APIARY_DATA_DIR: dir.path, LOG_LEVEL: 'silent', ENROLLMENT_MODE: 'open', EVENT_RETENTION_DAYS: '365' },
  );
  const core = await buildCore(config);
  const children: ChildProcess[] = [];
  try {
    await core.authkeys.create({ ident: SUB_IDENT, secret: SUB_SECRET, subchans: ['apiary.events'] });
    const token = (await core.tokens.create('abuse-viewer', 'viewer')).token;
    const ports = [
      '--api-port', String(core.addresses.api.port),
      '--node-port', String(core.addresses.nodeTcp.port),
      '--hpfeeds-port', String(core.addresses.hpfeeds[0]!.port),
      '--token', token,
    ];
    const passthrough = Object.entries(args)
      .filter(([k]) => !['role', 'api-port', 'node-port', 'hpfeeds-port', 'token'].includes(k))
      .flatMap(([k, v]) => [`--${k}`, String(v)]);
    const honest = child('honest', [...ports, ...passthrough]);
    const attacker = child('attacker', [...ports, ...passthrough]);
    children.push(honest, attacker);
    await Promise.all([next(honest, 'ready'), next(attacker, 'ready')]);
    await sleep(1000);

    const rows: string[] = [];
    for (const phase of phases) {
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      honest.send({ type: 'reset' });
      let peakRss = process.memoryUsage().rss;
      const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
      const attacked = phase === 'baseline' ? sleep(seconds * 1000).then(() => ({ type: 'attacked', what: 'honest traffic only' }) as Msg) : (attacker.send({ type: 'attack', name: phase, ms: seconds * 1000 }), next(attacker, 'attacked'));
      const { what } = await attacked;
      honest.send({ type: 'report' });
      const report = await next(honest, 'report');
      clearInterval(rssTimer);
      loop.disable();
      const ev = report.events as ReturnType<typeof summary>;
      const hz = report.healthz as ReturnType<typeof summary>;
      const row =
        `${phase.padEnd(13)} rss peak ${(peakRss / MIB).toFixed(0).padStart(5)} MiB  loop p99 ${(loop.percentile(99) / 1e6).toFixed(1).padStart(7)} ms  ` +
        `events n=${ev.count} p50 ${ev.p50.toFixed(1)} p99 ${ev.p99.toFixed(1)} ms  /healthz n=${hz.count} p50 ${hz.p50.toFixed(1)} p99 ${hz.p99.toFixed(1)} ms` +
        ` (failed ${report.healthzFailures})  honest nodes online ${report.online}/${report.nodes}  load ${loadavg()[0]!.toFixed(2)}  | ${what}`;
      process.stdout.write(row + '\n');
      rows.push(row);
      // let the core settle between phases
      await sleep(1000);
    }
  } finally {
    for (const c of children) c.send({ type: 'stop' });
    await Promise.all(children.map((c) => (c.exitCode === null ? Promise.race([once(c, 'exit'), sleep(10_000)]) : undefined)));
    for (const c of children) if (c.exitCode === null) c.kill();
    await core.close();
    dir.cleanup();
  }
}

const role = args.role;
if (role === 'honest') await runHonest();
else if (role === 'attacker') await runAttacker();
else await runCore();
