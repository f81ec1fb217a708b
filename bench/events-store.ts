// The events table's costs on the current schema (the migrations in drizzle/), without nodes or
// sockets: what a stored event costs the writer, and how the API's reads run on a large table.
//
//  1. insert: SqliteEventStore.append of the simulator's cowrie events in batches of --batch, one
//     batch at a time (as EventWriter sends them), CPU of the whole process (main thread + writer
//     thread) per event. Fewer or cheaper indexes and fewer statements per row show here.
//  2. reads (--rows > 0): a table of --rows events (100 nodes with skewed volumes, 30 days, a few
//     rare event types) is filled directly, then each list and stats shape the API runs is timed
//     (median of 3) with its EXPLAIN QUERY PLAN: a "USE TEMP B-TREE FOR ORDER BY" on a filtered
//     page means every matching row is sorted before the page is cut. The newest --tail rows are
//     left out of the side index tables (src/events/side-index.ts), as just before a catch-up.
//
//   node --import tsx bench/events-store.ts [--insert-events 200000] [--batch 100] [--rounds 3] [--rows 4000000] [--tail 3999]
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openDatabase, ReadPool } from '../src/db/index.js';
import { eventQueryModules, SqliteEventStore, type NewEvent } from '../src/events/index.js';
import { EventQueries, encodeCursor } from '../src/events/queries.js';
import { CATCH_UP_ROWS, EventSideIndex } from '../src/events/side-index.js';
import { AttackSession } from '../src/simulator/attacks.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values: args } = parseArgs({
  options: {
    'insert-events': { type: 'string', default: '200000' },
    batch: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    rows: { type: 'string', default: '4000000' },
    // Rows left above the side tables' watermark for the reads (CATCH_UP_ROWS - 1: the longest tail).
    tail: { type: 'string', default: String(CATCH_UP_ROWS - 1) },
  },
});
const load = () => readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');
const DAY = 86_400_000;
const TICK_US = 10_000; // USER_HZ 100

/** CPU time of the main thread (the one that builds and sends the batches), from /proc. */
function mainThreadCpuUs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

async function insertCost(): Promise<void> {
  const n = Number(args['insert-events']);
  const batchSize = Number(args.batch);
  const nodes = Array.from({ length: 10 }, (_, i) => ({ name: `bench-node-${i}`, s: new AttackSession(`bench-node-${i}`) }));
  const t0 = Date.now() - 3_600_000;
  const events: NewEvent[] = [];
  for (let i = 0; i < n; i++) {
    const node = nodes[i % nodes.length]!;
    const ts = t0 + Math.floor(i / 40);
    const a = node.s.next(ts);
    events.push({ node: node.name, potId: 'cowrie-01', potType: 'cowrie', eventType: a.eventid, timestamp: ts, receivedAt: ts + 3, dataJson: JSON.stringify(a.data), fromStatus: false });
  }
  for (let round = 1; round <= Number(args.rounds); round++) {
    const dir = tempDir('apiary-bench-events-store-');
    const dbPath = `${dir.path}/core.db`;
    openDatabase(dbPath).close();
    const readPool = new ReadPool({ dbPath, modules: eventQueryModules(), size: 1 });
    const store = new SqliteEventStore({ dbPath, readPool });
    await store.append(events.slice(0, 10)); // thread up
    const before = load();
    const cpu0 = process.cpuUsage();
    const main0 = mainThreadCpuUs();
    const w0 = performance.now();
    for (let i = 10; i < n; i += batchSize) await store.append(events.slice(i, Math.min(n, i + batchSize)));
    const cpu = process.cpuUsage(cpu0);
    const main = mainThreadCpuUs() - main0;
    const wall = performance.now() - w0;
    const stored = n - 10;
    console.log(
      `insert round ${round}: ${((cpu.user + cpu.system) / stored).toFixed(2)} µs CPU/event (user ${(cpu.user / stored).toFixed(2)}, system ${(cpu.system / stored).toFixed(2)}; main thread ${(main / stored).toFixed(2)}), ` +
        `${((wall * 1000) / stored).toFixed(2)} µs wall/event, batch ${batchSize}; load ${before} -> ${load()}`,
    );
    await store.close();
    await readPool.close();
    dir.cleanup();
  }
}

/** Fills `path` (already migrated) with `rows` events straight through SQLite. */
function fill(path: string, rows: number): { minTs: number; maxTs: number } {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insert = db.prepare('INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  // 100 nodes, node i carrying a share proportional to 1/(i+1): a few busy nodes, a long tail.
  const nodes = Array.from({ length: 100 }, (_, i) => ({ name: `node-${i}`, s: new AttackSession(`node-${i}`), w: 1 / (i + 1) }));
  const total = nodes.reduce((a, x) => a + x.w, 0);
  let acc = 0;
  const cumulative = nodes.map((x) => (acc += x.w / total));
  const minTs = Date.now() - 30 * DAY;
  const step = (30 * DAY) / rows;
  const chunk = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const r = Math.random();
      const k = Math.max(0, cumulative.findIndex((c) => c >= r));
      const node = nodes[k]!;
      const ts = Math.floor(minTs + i * step);
      const u = Math.random();
      if (u < 0.2) {
        const type = u < 0.0005 ? 'dionaea.download' : 'dionaea.connection';
        insert.run(node.name, 'dionaea-01', 'dionaea', type, ts, JSON.stringify({ src_ip: `192.0.2.${i % 250}`, dst_port: 445, note: 'x'.repeat(150) }), ts + 5);
      } else {
        const a = node.s.next(ts);
        const type = u > 0.9995 ? 'cowrie.session.file_download' : a.eventid;
        insert.run(node.name, k % 3 === 0 ? 'cowrie-02' : 'cowrie-01', 'cowrie', type, ts, JSON.stringify(a.data), ts + 5);
      }
    }
  });
  for (let i = 0; i < rows; i += 10_000) chunk(i, Math.min(rows, i + 10_000));
  // The side index tables as the events writer leaves them just before a catch-up: all but the
  // newest --tail rows indexed (in one transaction here; the writer does it a few thousand at a time).
  const tail = Math.min(rows, Number(args.tail));
  if (rows > tail) db.transaction(() => new EventSideIndex(db, { idleMs: 3_600_000, maxCatchUpRows: rows - tail }).catchUp())();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return { minTs, maxTs: Math.floor(minTs + (rows - 1) * step) };
}

function reads(): void {
  const rows = Number(args.rows);
  const dir = tempDir('apiary-bench-events-reads-');
  const path = `${dir.path}/core.db`;
  openDatabase(path).close();
  const f0 = performance.now();
  const { minTs, maxTs } = fill(path, rows);
  console.log(`\nfilled ${rows} events (${Math.min(rows, Number(args.tail))} not in the side tables) in ${((performance.now() - f0) / 1000).toFixed(0)} s; load ${load()}`);
  const db = new Database(path, { readonly: true });
  // EventQueries prepares each shape's SQL once; recording it gives the plan of exactly what ran.
  let lastSql = '';
  let lastParams: unknown[] = [];
  const bound = <T extends object>(target: T, prop: string | symbol): unknown => {
    const v = Reflect.get(target, prop, target) as unknown;
    return typeof v === 'function' ? v.bind(target) : v;
  };
  const recording = new Proxy(db, {
    get(target, prop) {
      if (prop !== 'prepare') return bound(target, prop);
      return (text: string) =>
        new Proxy(target.prepare(text), {
          get(stmt, p) {
            if (p === 'all') return (...a: unknown[]) => ((lastSql = text), (lastParams = a), stmt.all(...a));
            return bound(stmt, p);
          },
        });
    },
  });
  const maxId = db.prepare('SELECT max(id) FROM events').pluck().get() as number;
  const median = (f: () => unknown) => {
    const t: number[] = [];
    for (let i = 0; i < 3; i++) {
      const a = performance.now();
      f();
      t.push(performance.now() - a);
    }
    return t.sort((a, b) => a - b)[1]!;
  };
  const plan = () => (db.prepare(`EXPLAIN QUERY PLAN ${lastSql}`).all(...lastParams) as { detail: string }[]).map((r) => r.detail).join(' | ');
  const oldDay = { since: minTs + DAY, until: minTs + 2 * DAY };
  const lists: [string, Record<string, unknown>][] = [
    ['newest', {}],
    ['node (busiest)', { node: 'node-0' }],
    ['node (quiet)', { node: 'node-99' }],
    ['node + pot', { node: 'node-99', pot: 'cowrie-02' }],
    ['node + its rarer pot', { node: 'node-3', pot: 'dionaea-01' }],
    ['node, next page', { node: 'node-0', cursor: maxId - 5000 }],
    ['pot alone', { pot: 'dionaea-01' }],
    ['pot that does not exist', { pot: 'nope' }],
    ['event type (common)', { eventType: 'cowrie.login.failed' }],
    ['event type (rare)', { eventType: 'cowrie.session.file_download' }],
    ['pot type', { potType: 'dionaea' }],
    ['node, last day', { node: 'node-0', since: maxTs - DAY }],
    ['node, a day a month ago', { node: 'node-50', ...oldDay }],
    ['rare type, a day a month ago', { eventType: 'cowrie.session.file_download', ...oldDay }],
    ['a day a month ago', oldDay],
  ];
  for (const [name, filter] of lists) {
    const { cursor, ...rest } = filter as { cursor?: number };
    const query = { ...rest, ...(cursor !== undefined ? { cursor: encodeCursor(cursor) } : {}), limit: 100 };
    const ms = median(() => new EventQueries(recording).list(query));
    console.log(`list  ${name.padEnd(30)} ${ms.toFixed(1).padStart(8)} ms  ${plan()}`);
  }
  const lastDay = { since: maxTs - DAY, until: maxTs + 1 };
  const stats: [string, Record<string, unknown>][] = [
    ['last day', lastDay],
    ['last day, one event type', { ...lastDay, eventType: 'cowrie.login.failed' }],
    ['last day, busiest node', { ...lastDay, node: 'node-0' }],
    ['last day, quiet node', { ...lastDay, node: 'node-99' }],
  ];
  const q = new EventQueries(db);
  for (const [name, filter] of stats) console.log(`stats ${name.padEnd(30)} ${median(() => q.stats(filter as never)).toFixed(1).padStart(8)} ms`);
  db.close();
  dir.cleanup();
}

await insertCost();
if (Number(args.rows) > 0) reads();
