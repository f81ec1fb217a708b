// The events writer thread's work with analytics on, on this thread and timed by phase: the batch
// INSERT of events, JSON.parse of their data, normalise + aggregate, and the store's upserts. The
// traffic is the simulator's (what bench/events.ts sends): cowrie sessions from many nodes, in
// batches of --batch events (bench/events.ts at 30k/s offered sees ~100-600 event batches).
// Answers "where do the writer's µs per event go" without the main thread's noise.
//
//   node --import tsx bench/analytics-writer.ts [--events 300000] [--batch 300] [--nodes 30] [--profile]
import Database from 'better-sqlite3';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { aggregateBatch } from '../src/analytics/aggregate.js';
import { createAggregateContext, SqliteAttackStore, type StoredEvent } from '../src/analytics/index.js';
import { openDatabase } from '../src/db/index.js';
import { AttackSession } from '../src/simulator/attacks.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '300000' },
    batch: { type: 'string', default: '300' },
    nodes: { type: 'string', default: '30' },
  },
});
const N = Number(args.events);
const BATCH = Number(args.batch);
const load = () => readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');

const dir = tempDir('apiary-bench-aw-');
openDatabase(`${dir.path}/w.sqlite`).close();
const db = new Database(`${dir.path}/w.sqlite`);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');

const nodes = Array.from({ length: Number(args.nodes) }, (_, i) => ({ name: `bench-node-${i}`, s: new AttackSession(`bench-node-${i}`) }));
const start = Date.now() - 3_600_000;
const rows: { node: string; type: string; ts: number; json: string }[] = [];
for (let i = 0; i < N; i++) {
  const n = nodes[i % nodes.length]!;
  const ts = start + Math.floor(i / 10);
  const a = n.s.next(ts);
  rows.push({ node: n.name, type: a.eventid, ts, json: JSON.stringify(a.data) });
}

const ctx = createAggregateContext({});
const store = new SqliteAttackStore(db);
const insert = db.prepare('INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
const t = { insert: 0, parse: 0, aggregate: 0, write: 0, commit: 0 };
const tx = db.transaction((b: typeof rows) => {
  let p = performance.now();
  const ids: number[] = [];
  for (const r of b) ids.push(Number(insert.run(r.node, 'cowrie-01', 'cowrie', r.type, r.ts, r.json, r.ts).lastInsertRowid));
  let q = performance.now();
  t.insert += q - p;
  p = q;
  const events: StoredEvent[] = b.map((r, i) => ({ id: ids[i]!, node: r.node, potId: 'cowrie-01', potType: 'cowrie', eventType: r.type, timestamp: r.ts, data: JSON.parse(r.json) }));
  q = performance.now();
  t.parse += q - p;
  p = q;
  const agg = aggregateBatch(events, ctx);
  q = performance.now();
  t.aggregate += q - p;
  p = q;
  store.write(agg);
  t.write += performance.now() - p;
});
const loadBefore = load();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < N; i += BATCH) {
  const c = performance.now();
  tx(rows.slice(i, i + BATCH));
  t.commit += performance.now() - c;
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const us = (x: number) => ((x * 1000) / N).toFixed(1);
console.log(`writer work, ${N} events in batches of ${BATCH}: ${Math.round(N / (ms / 1000)).toLocaleString()} events/s, ${((cpu.user + cpu.system) / N).toFixed(1)} µs CPU/event`);
console.log(`  per event (wall µs): insert ${us(t.insert)}, JSON.parse ${us(t.parse)}, aggregate ${us(t.aggregate)}, store.write ${us(t.write)}, commit+other ${us(t.commit - t.insert - t.parse - t.aggregate - t.write)}`);
console.log(`  load ${loadBefore} before, ${load()} after`);
db.close();
dir.cleanup();
