import Database from 'better-sqlite3';
import { aggregateBatch, emptyAggregate } from '/work/wt/ana12/src/analytics/aggregate.js';
import { createAggregateContext, SqliteAttackStore } from '/work/wt/ana12/src/analytics/index.js';
import { openDatabase } from '/work/wt/ana12/src/db/index.js';
import { AttackSession } from '/work/wt/ana12/src/simulator/attacks.js';
const nodes = Array.from({ length: 10 }, (_, i) => ({ name: `bench-node-${i}`, s: new AttackSession(`bench-node-${i}`) }));
const N = 150000; const start = Date.now() - 3_600_000;
const json: string[] = []; const meta: any[] = [];
for (let i = 0; i < N; i++) { const n = nodes[i % 10]!; const ts = start + Math.floor(i / 30); const a = n.s.next(ts); json.push(JSON.stringify(a.data)); meta.push({ id: i + 1, node: n.name, potId: 'cowrie-01', potType: 'cowrie', eventType: a.eventid, timestamp: ts }); }
const ctx = createAggregateContext({});
for (let round = 0; round < 3; round++) {
  const path = `/tmp/ana12/phase-${round}.sqlite`; try { (await import('node:fs')).rmSync(path); } catch {}
  openDatabase(path).close(); const db = new Database(path); db.pragma('journal_mode = WAL'); db.pragma('synchronous = NORMAL');
  const store = new SqliteAttackStore(db);
  let tp = 0, ta = 0, tw = 0;
  for (let c = 0; c < N; c += 30000) {
    let t = process.cpuUsage();
    const evs = meta.slice(c, c + 30000).map((m, i) => ({ ...m, data: JSON.parse(json[c + i]!) }));
    let u = process.cpuUsage(t); tp += u.user + u.system;
    t = process.cpuUsage();
    const agg = emptyAggregate();
    for (let b = 0; b < evs.length; b += 150) aggregateBatch(evs.slice(b, b + 150), ctx, agg);
    u = process.cpuUsage(t); ta += u.user + u.system;
    t = process.cpuUsage();
    db.transaction(() => store.write(agg))();
    u = process.cpuUsage(t); tw += u.user + u.system;
  }
  console.log(`parse ${(tp / N).toFixed(1)} aggregate ${(ta / N).toFixed(1)} write ${(tw / N).toFixed(1)} µs/event`);
  db.close();
}
