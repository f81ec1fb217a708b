// PostgreSQL event ingest: PgEventWriter (one multi-row INSERT over unnest() per batch into the day
// partitions) on a fresh database, created here and dropped at the end. For each batch size it
// appends --events events --runs times (a fresh table each run) and prints events/s and µs per
// event: each run, and the median; with the load average, since the machine may be shared.
//
//   node --import tsx bench/pg-events.ts [--events 100000] [--batches 500,2000] [--runs 3]
//   (server: APIARY_TEST_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres)
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { openPgDatabase } from '../src/db/index.js';
import { PgEventWriter } from '../src/events/index.js';
import type { NewEvent } from '../src/events/store.js';
import { createTestPgDatabase } from '../test/helpers/pg.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '100000' }, batches: { type: 'string', default: '500,2000' }, runs: { type: 'string', default: '3' } } });
const total = Number(values.events);
const batchSizes = values.batches.split(',').map(Number);
const runs = Number(values.runs);

/** A cowrie login attempt of the usual size (~300 bytes of JSON). */
function event(i: number, now: number): NewEvent {
  const data = {
    eventid: 'cowrie.login.failed',
    src_ip: `198.51.${(i >> 8) & 255}.${i & 255}`,
    src_port: 40000 + (i % 20000),
    dst_ip: '192.0.2.10',
    dst_port: 22,
    session: `s${(i / 7) | 0}`,
    username: 'root',
    password: `pw${i % 997}`,
    protocol: 'ssh',
    message: `login attempt [root/pw${i % 997}] failed`,
    sensor: 'honeypot-01',
  };
  return { node: `node-${i % 10}`, potId: 'cowrie-1', potType: 'cowrie', eventType: 'cowrie.login.failed', timestamp: now, receivedAt: now, dataJson: JSON.stringify(data), fromStatus: false };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

const testDb = await createTestPgDatabase();
const database = await openPgDatabase(testDb.url, { max: 2 });
try {
  const writer = new PgEventWriter(database);
  await writer.partitions.ensureAhead();
  const now = Date.now();
  const events = Array.from({ length: total }, (_, i) => event(i, now));
  console.log(`pg-events: ${total} events per run, ${runs} runs per batch size; load average at start: ${load()}`);
  for (const size of batchSizes) {
    const rates: number[] = [];
    for (let r = 0; r < runs; r++) {
      await database.pool.query('TRUNCATE events');
      const t0 = process.hrtime.bigint();
      // Batches one after another, as the event service hands them over.
      for (let i = 0; i < total; i += size) await writer.append(events.slice(i, i + size));
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      rates.push(total / seconds);
      console.log(`  batch ${size} run ${r + 1}: ${Math.round(total / seconds)} events/s, ${((seconds * 1e6) / total).toFixed(1)} µs/event (load ${load()})`);
    }
    const m = median(rates);
    console.log(`batch ${size}: median ${Math.round(m)} events/s, ${(1e6 / m).toFixed(1)} µs/event`);
  }
  const { rows } = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
  if (rows[0]!.n !== total) throw new Error(`expected ${total} rows after the last run, found ${rows[0]!.n}`);
  console.log(`load average at end: ${load()}`);
  await writer.close();
} finally {
  await database.close();
  await testDb.drop();
}
