// The events writer thread's work with analytics on, on this thread: per writer batch, the INSERT of
// the events, JSON.parse of their data (as the writer's StoredEventView does) and the analytics
// hook, in one transaction; against the same without the hook. CPU µs per event of this thread, so
// the figure is the writer's own cost, less sensitive to a busy machine than a throughput run.
// The traffic is the simulator's (what bench/events.ts sends): cowrie sessions from --nodes nodes.
// Uses the buffered ingest with its default flush interval when the code has it (else per batch),
// so the same script A/B-tests older code.
//
//   node --import tsx bench/analytics-writer.ts [--events 300000] [--batch 150] [--nodes 10] [--rounds 3]
import Database from 'better-sqlite3';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import * as analytics from '../src/analytics/index.js';
import { openDatabase } from '../src/db/index.js';
import { AttackSession } from '../src/simulator/attacks.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '300000' },
    batch: { type: 'string', default: '150' },
    nodes: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
  },
});
const N = Number(args.events);
const BATCH = Number(args.batch);
const load = () => readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');

const nodes = Array.from({ length: Number(args.nodes) }, (_, i) => ({ name: `bench-node-${i}`, s: new AttackSession(`bench-node-${i}`) }));
const start = Date.now() - 3_600_000;
const rows: { node: string; type: string; ts: number; json: string }[] = [];
for (let i = 0; i < N; i++) {
  const n = nodes[i % nodes.length]!;
  const ts = start + Math.floor(i / 30);
  const a = n.s.next(ts);
  rows.push({ node: n.name, type: a.eventid, ts, json: JSON.stringify(a.data) });
}

type Hook = { onBatch(db: Database.Database, b: analytics.StoredEvent[]): void; flush(db: Database.Database): void };
function makeHook(): Hook {
  const mod = analytics as unknown as Record<string, unknown>;
  if (typeof mod.BufferedAttackIngest === 'function') {
    const B = mod.BufferedAttackIngest as new (s: object) => Hook;
    return new B({});
  }
  const ingest = analytics.createAttackIngest({});
  return { onBatch: (db, b) => ingest(db, b), flush: () => undefined };
}

function run(withHook: boolean): { usPerEvent: number; rate: number } {
  const dir = tempDir('apiary-bench-aw-');
  openDatabase(`${dir.path}/w.sqlite`).close();
  const db = new Database(`${dir.path}/w.sqlite`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const hook = withHook ? makeHook() : undefined;
  const insert = db.prepare('INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const tx = db.transaction((b: typeof rows) => {
    const ids: number[] = [];
    for (const r of b) ids.push(Number(insert.run(r.node, 'cowrie-01', 'cowrie', r.type, r.ts, r.json, r.ts).lastInsertRowid));
    if (hook === undefined) return;
    const events: analytics.StoredEvent[] = b.map((r, i) => ({ id: ids[i]!, node: r.node, potId: 'cowrie-01', potType: 'cowrie', eventType: r.type, timestamp: r.ts, data: JSON.parse(r.json) }));
    hook.onBatch(db, events);
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH) tx(rows.slice(i, i + BATCH));
  if (hook) db.transaction(() => hook.flush(db))();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  db.close();
  dir.cleanup();
  return { usPerEvent: (cpu.user + cpu.system) / N, rate: N / (ms / 1000) };
}

console.log(`# writer work, ${N} simulator events from ${args.nodes} nodes in batches of ${BATCH} (load ${load()})`);
for (let r = 0; r < Number(args.rounds); r++) {
  const base = run(false);
  const full = run(true);
  console.log(
    `round ${r + 1}: events only ${base.usPerEvent.toFixed(1)} µs CPU/event (${Math.round(base.rate).toLocaleString()}/s); ` +
      `+ analytics ${full.usPerEvent.toFixed(1)} µs CPU/event (${Math.round(full.rate).toLocaleString()}/s); analytics alone ${(full.usPerEvent - base.usPerEvent).toFixed(1)} µs  (load ${load()})`,
  );
}
