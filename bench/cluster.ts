// Several cores side by side: events/s and CPU per event for 1, 2 and 3 `apiary serve` processes on
// PostgreSQL and one Redis, next to one core on its embedded SQLite file. Each core is a real
// process started as a person starts it (bin/apiary.js serve), on free ports of 127.0.0.1; the
// simulated nodes (child processes of bench/events.ts) are spread over the cores round robin; one
// hpfeeds subscriber on the first core receives every core's events (cross-core fan-out), so
// "delivered" counts what crossed instances too. CPU is read from /proc for each core process (all
// its threads) and for every PostgreSQL server process (the database's own cost per event).
//
//   node --import tsx bench/cluster.ts [--setups sqlite:1,pg:1,pg:2,pg:3] [--nodes 12] [--rate 1500]
//                                      [--seconds 10] [--warmup 3] [--analytics on|off]
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createTestPgDatabase, type TestPgDatabase } from '../test/helpers/pg.js';
import { startTestRedis } from '../test/helpers/redis.js';
import { tempDir } from '../test/helpers/tmp.js';
import { nextMessage } from './ipc.js';

const { values: args } = parseArgs({
  options: {
    setups: { type: 'string', default: 'sqlite:1,pg:1,pg:2,pg:3' },
    nodes: { type: 'string', default: '12' },
    rate: { type: 'string', default: '1500' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    analytics: { type: 'string', default: 'off' },
  },
});

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const eventsBench = fileURLToPath(new URL('./events.ts', import.meta.url));
const SUB_IDENT = 'bench-subscriber';
const SUB_SECRET = 'bench-subscriber-secret';
const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim() || 100);

const load = () => readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');

/** utime + stime of a process (all its threads), µs; NaN once it is gone. */
function processCpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return NaN;
  }
}

/** CPU µs of every PostgreSQL server process (the postmaster and its backends, all databases). */
function postgresCpuUs(): number {
  let sum = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (!stat.includes('(postgres)')) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += (Number(f[11]) + Number(f[12])) * TICK_US;
    } catch {
      // Gone between the listing and the read.
    }
  }
  return sum;
}

interface Core {
  child: ChildProcess;
  nodePort: number;
  hpfeedsPort: number;
  dataDir: string;
}

function startCore(index: number, env: Record<string, string>): Promise<Core> {
  const dir = tempDir(`apiary-bench-cluster-${index}-`);
  const flags = ['--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'];
  const childEnv: Record<string, string | undefined> = {
    ...process.env,
    APIARY_DATA_DIR: dir.path,
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    ENROLLMENT_MODE: 'open',
    ANALYTICS_ENABLED: args.analytics === 'on' ? 'true' : 'false',
    [`HPFEEDS_${SUB_IDENT.toUpperCase()}_SECRET`]: SUB_SECRET,
    [`HPFEEDS_${SUB_IDENT.toUpperCase()}_SUBCHANS`]: 'apiary.events,probe',
    [`HPFEEDS_${SUB_IDENT.toUpperCase()}_PUBCHANS`]: 'probe',
    ...env,
  };
  delete childEnv.NODE_OPTIONS;
  const child = spawn(process.execPath, ['bin/apiary.js', 'serve', ...flags], { cwd: repoRoot, env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let partial = '';
    const onData = (d: Buffer) => {
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        let r: { msg?: string; level?: number; nodeTcp?: { port: number }; hpfeeds?: { port: number }[] };
        try {
          r = JSON.parse(line);
        } catch {
          continue;
        }
        if ((r.level ?? 0) >= 50) console.error(`core ${index}: ${line}`);
        if (r.msg === 'apiary is ready') {
          resolve({ child, nodePort: r.nodeTcp!.port, hpfeedsPort: r.hpfeeds![0]!.port, dataDir: dir.path });
        }
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`core ${index} exited (${code}) before it was ready`)));
  });
}

function benchChild(role: string, extra: string[]): ChildProcess {
  return fork(eventsBench, ['--role', role, ...extra], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}


interface Result {
  setup: string;
  offered: number;
  sent: number;
  stored: number;
  delivered: number;
  coreUsPerEvent: number;
  pgUsPerEvent: number;
  p50: number;
  p99: number;
  load: string;
}

async function storedCount(kind: string, database: TestPgDatabase | undefined, sqlitePath: string | undefined): Promise<number> {
  if (kind === 'pg') {
    const client = new pg.Client({ connectionString: database!.url });
    await client.connect();
    try {
      return Number((await client.query('SELECT count(*) AS n FROM events')).rows[0].n);
    } finally {
      await client.end();
    }
  }
  const db = new Database(sqlitePath!, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM events').pluck().get() as number;
  } finally {
    db.close();
  }
}

async function runSetup(kind: 'sqlite' | 'pg', instances: number): Promise<Result> {
  const redis = await startTestRedis({ appendOnly: false });
  const database = kind === 'pg' ? await createTestPgDatabase() : undefined;
  const cores: Core[] = [];
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < instances; i++) {
      const env: Record<string, string> = { REDIS_URL: redis.url };
      if (database) env.DATABASE_URL = database.url;
      if (instances > 1) Object.assign(env, { CLUSTER_ENABLED: 'true', INSTANCE_ID: `core-${i}` });
      // One at a time: the first migrates the database.
      cores.push(await startCore(i, env));
    }
    const sub = benchChild('subscriber', ['--port', String(cores[0]!.hpfeedsPort), '--channel', 'apiary.events']);
    children.push(sub);
    await nextMessage(sub, 'ready');
    const nodes = Number(args.nodes);
    const nodeProcs: ChildProcess[] = [];
    for (let i = 0; i < instances; i++) {
      const count = Math.floor(nodes / instances) + (i < nodes % instances ? 1 : 0);
      const first = Math.floor(nodes / instances) * i + Math.min(i, nodes % instances);
      const p = benchChild('nodes', ['--port', String(cores[i]!.nodePort), '--nodes', String(count), '--first', String(first), '--rate', args.rate!, '--form', 'potevent']);
      nodeProcs.push(p);
      children.push(p);
    }
    await Promise.all(nodeProcs.map((p) => nextMessage(p, 'ready')));
    await new Promise((r) => setTimeout(r, Number(args.warmup) * 1000));
    const latest = { sent: 0, received: 0 };
    const sentBy = new Map<ChildProcess, number>();
    for (const p of nodeProcs) p.on('message', (m: { type: string; count: number }) => m.type === 'sent' && sentBy.set(p, m.count));
    sub.on('message', (m: { type: string; count: number }) => m.type === 'received' && (latest.received = m.count));
    await new Promise((r) => setTimeout(r, 300));
    const sent0 = [...sentBy.values()].reduce((a, b) => a + b, 0);
    const received0 = latest.received;
    const cpu0 = cores.map((c) => processCpuUs(c.child.pid!));
    const pg0 = kind === 'pg' ? postgresCpuUs() : 0;
    const loadAt = load();
    sub.send({ type: 'measure' });
    const seconds = Number(args.seconds);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const sent1 = [...sentBy.values()].reduce((a, b) => a + b, 0);
    const received1 = latest.received;
    const coreUs = cores.reduce((s, c, i) => s + processCpuUs(c.child.pid!) - cpu0[i]!, 0);
    const pgUs = kind === 'pg' ? postgresCpuUs() - pg0 : 0;
    for (const p of nodeProcs) p.send({ type: 'stop' });
    const nodeStats = await Promise.all(nodeProcs.map((p) => nextMessage<{ count: number }>(p, 'stopped')));
    const totalSent = nodeStats.reduce((s, n) => s + n.count, 0);
    // Everything sent is committed within a few seconds once the nodes stop.
    const deadline = Date.now() + 30_000;
    let stored = 0;
    const sqlitePath = kind === 'sqlite' ? join(cores[0]!.dataDir, 'apiary.sqlite') : undefined;
    while (Date.now() < deadline) {
      stored = await storedCount(kind, database, sqlitePath);
      if (stored >= totalSent) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    sub.send({ type: 'stop' });
    const subStats = await nextMessage<{ p50: number; p99: number; count: number }>(sub, 'stopped');
    const delivered = received1 - received0;
    const inWindow = sent1 - sent0;
    return {
      setup: `${kind === 'pg' ? 'PostgreSQL' : 'SQLite'} × ${instances}`,
      offered: nodes * Number(args.rate),
      sent: inWindow / seconds,
      stored: stored === totalSent ? inWindow / seconds : NaN,
      delivered: delivered / seconds,
      coreUsPerEvent: coreUs / Math.max(1, delivered),
      pgUsPerEvent: pgUs / Math.max(1, delivered),
      p50: subStats.p50,
      p99: subStats.p99,
      load: `${loadAt} -> ${load()}${stored === totalSent ? '' : ` (stored ${stored} of ${totalSent} sent)`}`,
    };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(
      cores.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.child.exitCode !== null) return resolve();
            c.child.once('exit', () => resolve());
            c.child.kill('SIGTERM');
          }),
      ),
    );
    await database?.drop();
    await redis.dispose();
  }
}

const setups = args.setups!.split(',').map((s) => {
  const [kind, n] = s.split(':');
  if ((kind !== 'sqlite' && kind !== 'pg') || !/^[1-9]$/.test(n ?? '')) throw new Error(`--setups takes sqlite:N or pg:N, got "${s}"`);
  if (kind === 'sqlite' && n !== '1') throw new Error('SQLite is one core only (the embedded default)');
  return { kind: kind as 'sqlite' | 'pg', instances: Number(n) };
});
console.log(`# ${args.nodes} nodes × ${args.rate} events/s, measured ${args.seconds}s after ${args.warmup}s, analytics ${args.analytics}; machine load before: ${load()}`);
console.log('| setup | offered/s | sent/s | stored/s | delivered/s (one subscriber, all cores) | cores CPU µs/event | PostgreSQL CPU µs/event | node→sub p50 / p99 ms | load |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const s of setups) {
  const r = await runSetup(s.kind, s.instances);
  const k = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
  console.log(
    `| ${r.setup} | ${k(r.offered)} | ${k(r.sent)} | ${k(r.stored)} | ${k(r.delivered)} | ${r.coreUsPerEvent.toFixed(1)} | ${s.kind === 'pg' ? r.pgUsPerEvent.toFixed(1) : '-'} | ${r.p50} / ${r.p99} | ${r.load} |`,
  );
}
