// The buffered ingest (many writer batches folded in memory, written at once) and the per-day top-K
// summaries that answer long-window top-N: buffered writes equal per-batch writes row for row, and
// summarised answers hold their stated bound against brute-forced counts (exact when they say so).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { BufferedAttackIngest, createAggregateContext, createAttackIngest, DIMENSIONS, normaliseEvent, SqliteAttackStore, type Dimension, type StoredEvent } from '../../src/analytics/index.js';
import { tempDir } from '../helpers/tmp.js';
import { eventKey, randomEvents, rng, storeEvents } from './helpers.js';

const H = 3_600_000;
const D = 86_400_000;
const START = Date.parse('2026-11-01T05:17:00Z');
const SPAN = 6 * D;
const K = 3;
const ctx = createAggregateContext({});

let dir: ReturnType<typeof tempDir>;
let buffered: DatabaseHandle;
let direct: DatabaseHandle;
let store: SqliteAttackStore;
let events: StoredEvent[];

before(() => {
  dir = tempDir('apiary-analytics-top-');
  events = randomEvents(8000, START, SPAN, 99);
  buffered = openDatabase(`${dir.path}/buffered.sqlite`);
  // Written every 60 events or so (a flush per 2-3 batches of 25): enough writes to build every
  // (day, dim) summary, one per write, while events keep arriving out of time order (late days).
  const ingest = new BufferedAttackIngest({ flushMs: 3_600_000, flushMaxEvents: 60, topKeysPerDay: K }, ctx);
  storeEvents(buffered.sqlite, (db, batch) => ingest.onBatch(db, batch), events, 25);
  buffered.sqlite.transaction(() => ingest.flush(buffered.sqlite))();
  store = new SqliteAttackStore(buffered.sqlite, { topKeysPerDay: K });
  direct = openDatabase(`${dir.path}/direct.sqlite`);
  storeEvents(direct.sqlite, createAttackIngest({ topKeysPerDay: K }, ctx), events, 317);
});
after(() => {
  buffered.close();
  direct.close();
  dir.cleanup();
});

test('buffered ingest writes the same rollups, attackers, facts, sessions and steps as per-batch writes', () => {
  const queries = [
    'SELECT * FROM attack_rollup_hour ORDER BY dim, bucket, node, pot_type, key',
    'SELECT * FROM attack_minute ORDER BY bucket, node, pot_type',
    'SELECT * FROM attackers ORDER BY ip',
    'SELECT * FROM attacker_facts ORDER BY ip, kind, value',
    'SELECT node, pot_id, pot_type, session, src_ip, src_port, dest_ip, dest_port, protocol, started_at, last_seen, closed, events, logins_failed, username, password FROM attack_sessions ORDER BY node, pot_id, session',
    'SELECT s.node, s.pot_id, s.session, st.event_id, st.at, st.kind, st.value, st.detail FROM attack_session_steps st JOIN attack_sessions s ON s.id = st.session_id ORDER BY st.event_id',
  ];
  for (const sql of queries) {
    const a = buffered.sqlite.prepare(sql).all();
    assert.ok(a.length > 0, sql);
    assert.deepEqual(a, direct.sqlite.prepare(sql).all(), sql);
  }
  // Day rows: the same sums per (dim, day, node, pot type, key), however the folding was split.
  const days = 'SELECT dim, bucket, node, pot_type, key, sum(count) AS c FROM attack_rollup_day GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5';
  assert.deepEqual(buffered.sqlite.prepare(days).all(), direct.sqlite.prepare(days).all());
  assert.equal(buffered.sqlite.prepare("SELECT value FROM attack_meta WHERE key = 'ingested_until_event_id'").pluck().get(), events.length);
});

function brute(by: Dimension, since: number, until: number): Map<string, number> {
  const lo = Math.floor(since / H) * H;
  const hi = Math.ceil(until / H) * H;
  const counts = new Map<string, number>();
  for (const e of events) {
    if (e.timestamp < lo || e.timestamp >= hi) continue;
    if (normaliseEvent(e).src_ip !== null && ctx.ignore.match(normaliseEvent(e).src_ip!) !== undefined) continue;
    const k = eventKey(ctx, e, by);
    if (k !== null) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

test('long-window top-N from the day summaries stays within its stated bound, exact where it says so', () => {
  const summarised = buffered.sqlite.prepare('SELECT count(*) FROM attack_top_day_floor').pluck().get() as number;
  assert.ok(summarised >= 5 * 11, `summaries built (${summarised})`);
  const r = rng(11);
  let approx = 0;
  let exact = 0;
  for (let round = 0; round < 30; round++) {
    const since = START + Math.floor(r() * D);
    const until = since + 2 * D + Math.floor(r() * (SPAN - 3 * D));
    for (const by of DIMENSIONS) {
      const limit = 1 + Math.floor(r() * 6);
      const got = store.top({ by, since, until, limit });
      const truth = brute(by, since, until);
      const bound = got.max_undercount;
      assert.equal(got.exact, bound === 0);
      if (got.exact) {
        const expected = [...truth].map(([key, count]) => ({ key, count })).sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1)).slice(0, limit);
        assert.deepEqual(got.items.map((i) => ({ key: i.key, count: i.count })), expected, `${by} exact`);
        exact++;
        continue;
      }
      approx++;
      const listed = new Set(got.items.map((i) => i.key));
      for (const it of got.items) {
        const t = truth.get(it.key) ?? 0;
        assert.ok(it.count <= t && t <= it.count + bound, `${by} ${it.key}: ${it.count} <= ${t} <= ${it.count} + ${bound}`);
      }
      for (let i = 1; i < got.items.length; i++) assert.ok(got.items[i - 1]!.count >= got.items[i]!.count);
      const last = got.items.length === limit ? got.items.at(-1)!.count : 0;
      for (const [key, t] of truth) if (!listed.has(key)) assert.ok(t <= last + bound, `${by} unlisted ${key}: ${t} <= ${last} + ${bound}`);
    }
  }
  assert.ok(approx > 20 && exact > 20, `both kinds of answers were checked (approximate ${approx}, exact ${exact})`);
  // Short windows and filtered ones never use the summaries.
  const day = store.top({ by: 'src_ip', since: START + D, until: START + 2 * D, limit: 3 });
  assert.equal(day.exact, true);
  const filtered = store.top({ by: 'src_ip', since: START, until: START + SPAN, node: 'node-a', limit: 3 });
  assert.equal(filtered.exact, true);
});

test('retention deletes the summaries with the rollups', () => {
  const cutoff = START + 3 * D;
  while (!store.deleteOlderThan(cutoff, 500).done);
  assert.equal(buffered.sqlite.prepare('SELECT count(*) FROM attack_top_day WHERE bucket < ?').pluck().get(Math.floor(cutoff / D)), 0);
  assert.equal(buffered.sqlite.prepare('SELECT count(*) FROM attack_top_day_floor WHERE bucket < ?').pluck().get(Math.floor(cutoff / D)), 0);
  assert.ok((buffered.sqlite.prepare('SELECT count(*) FROM attack_top_day_floor').pluck().get() as number) > 0);
});
