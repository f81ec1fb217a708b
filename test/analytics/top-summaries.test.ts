// The buffered ingest (many writer batches folded in memory, written at once) and the per-day top-K
// summaries that answer long-window top-N: buffered writes equal per-batch writes row for row, and
// summarised answers (hour and day summaries) hold their stated bound against brute-forced counts
// (exact when they say so), with exact counts for the keys they list.
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
/** Keys kept per hour: small, so most hours leave keys out. */
const KH = 2;
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
  const ingest = new BufferedAttackIngest({ flushMs: 3_600_000, flushMaxEvents: 60, topKeysPerDay: K, topKeysPerHour: KH }, ctx);
  storeEvents(buffered.sqlite, (db, batch) => ingest.onBatch(db, batch), events, 25);
  buffered.sqlite.transaction(() => ingest.flush(buffered.sqlite))();
  store = new SqliteAttackStore(buffered.sqlite, { topKeysPerDay: K, topKeysPerHour: KH });
  direct = openDatabase(`${dir.path}/direct.sqlite`);
  storeEvents(direct.sqlite, createAttackIngest({ topKeysPerDay: K, topKeysPerHour: KH }, ctx), events, 317);
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

/**
 * Checks one top-N answer against the brute-forced counts: exact answers are the true top; others
 * hold their stated bound. Listed counts are exact whenever the answer could read them (limit small
 * enough), which is every case here but the large-limit one.
 */
function checkTop(by: Dimension, since: number, until: number, limit: number, opts: { listedExact: boolean }): boolean {
  const got = store.top({ by, since, until, limit });
  const truth = brute(by, since, until);
  const bound = got.max_undercount;
  const what = `${by} [${since}, ${until}) limit ${limit}`;
  if (got.exact) {
    assert.equal(bound, 0, what);
    const expected = [...truth].map(([key, count]) => ({ key, count })).sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1)).slice(0, limit);
    assert.deepEqual(got.items.map((i) => ({ key: i.key, count: i.count })), expected, `${what} exact`);
    return true;
  }
  const listed = new Set(got.items.map((i) => i.key));
  for (const it of got.items) {
    const t = truth.get(it.key) ?? 0;
    if (opts.listedExact) assert.equal(it.count, t, `${what} ${it.key}: listed counts are exact`);
    assert.ok(it.count <= t && t <= it.count + bound, `${what} ${it.key}: ${it.count} <= ${t} <= ${it.count} + ${bound}`);
  }
  for (let i = 1; i < got.items.length; i++) assert.ok(got.items[i - 1]!.count >= got.items[i]!.count);
  const last = got.items.length === limit ? got.items.at(-1)!.count : 0;
  for (const [key, t] of truth) if (!listed.has(key)) assert.ok(t <= last + bound, `${what} unlisted ${key}: ${t} <= ${last} + ${bound}`);
  return false;
}

test('top-N from the hour and day summaries stays within its stated bound, exact where it says so', () => {
  const days = buffered.sqlite.prepare('SELECT count(*) FROM attack_top_day_floor').pluck().get() as number;
  assert.ok(days >= 5 * 11, `day summaries built (${days})`);
  const hours = buffered.sqlite.prepare('SELECT count(*) FROM attack_top_hour_floor WHERE floor > 0').pluck().get() as number;
  assert.ok(hours >= 100, `hour summaries built, with keys left out (${hours})`);
  const r = rng(11);
  let approx = 0;
  let exact = 0;
  for (let round = 0; round < 40; round++) {
    const since = START + Math.floor(r() * (SPAN - 2 * D));
    // Half the windows are hours long (hour summaries only), half span days (day summaries too).
    const until = round % 2 === 0 ? since + 1 + Math.floor(r() * 30 * H) : since + D + Math.floor(r() * (SPAN - 2 * D));
    for (const by of DIMENSIONS) {
      if (checkTop(by, since, until, 1 + Math.floor(r() * 6), { listedExact: true })) exact++;
      else approx++;
    }
  }
  assert.ok(approx > 20 && exact > 20, `both kinds of answers were checked (approximate ${approx}, exact ${exact})`);
  // A limit too large to read each key's count: the summaries' own bound.
  for (const by of ['src_ip', 'credential', 'command'] as const) checkTop(by, START + 5 * H, START + 4 * D, 2000, { listedExact: false });
  // Filtered ones never use the summaries.
  const filtered = store.top({ by: 'src_ip', since: START, until: START + SPAN, node: 'node-a', limit: 3 });
  assert.equal(filtered.exact, true);
});

test('hour timelines split by a dimension count each key exactly, from summaries that leave keys out', () => {
  const r = rng(5);
  let points = 0;
  for (let round = 0; round < 12; round++) {
    const since = START + Math.floor(r() * (SPAN - 2 * D));
    const until = since + H + Math.floor(r() * 40 * H);
    for (const by of ['src_ip', 'password', 'credential', 'country'] as const) {
      const got = store.timeline({ bucket: 'hour', since, until, by, limit: 4 });
      for (const series of got.series) {
        const expected = new Map<number, number>();
        for (const e of events) {
          if (e.timestamp < got.since || e.timestamp >= got.until || eventKey(ctx, e, by) !== series.key) continue;
          const ip = normaliseEvent(e).src_ip;
          if (ip !== null && ctx.ignore.match(ip) !== undefined) continue;
          const b = Math.floor(e.timestamp / H) * H;
          expected.set(b, (expected.get(b) ?? 0) + 1);
        }
        const want = [...expected].sort((a, b) => a[0] - b[0]).map(([start, count]) => ({ start, count }));
        assert.deepEqual(series.points, want, `${by} ${series.key} [${since}, ${until})`);
        points += want.length;
      }
    }
  }
  assert.ok(points > 200, `points checked (${points})`);
});

test('the current hour, not summarised yet, is read from the rollups', () => {
  // A fresh store over the same rollups with the hour summaries' progress held back: the newest
  // hours are then unsummarised and must still be counted exactly.
  const last = buffered.sqlite.prepare("SELECT value FROM attack_meta WHERE key = 'top_hour_progress'").pluck().get() as number;
  buffered.sqlite.prepare("UPDATE attack_meta SET value = ? WHERE key = 'top_hour_progress'").run(last - 16 * 30);
  try {
    const until = START + SPAN;
    for (const by of ['src_ip', 'password', 'event_type'] as const) checkTop(by, until - 26 * H, until, 3, { listedExact: true });
  } finally {
    buffered.sqlite.prepare("UPDATE attack_meta SET value = ? WHERE key = 'top_hour_progress'").run(last);
  }
});

test('retention deletes the summaries with the rollups', () => {
  const cutoff = START + 3 * D;
  while (!store.deleteOlderThan(cutoff, 500).done);
  assert.equal(buffered.sqlite.prepare('SELECT count(*) FROM attack_top_day WHERE bucket < ?').pluck().get(Math.floor(cutoff / D)), 0);
  assert.equal(buffered.sqlite.prepare('SELECT count(*) FROM attack_top_day_floor WHERE bucket < ?').pluck().get(Math.floor(cutoff / D)), 0);
  assert.equal(buffered.sqlite.prepare('SELECT count(*) FROM attack_top_hour WHERE bucket < ?').pluck().get(Math.floor(cutoff / H)), 0);
  assert.equal(buffered.sqlite.prepare('SELECT count(*) FROM attack_top_hour_floor WHERE bucket < ?').pluck().get(Math.floor(cutoff / H)), 0);
  assert.ok((buffered.sqlite.prepare('SELECT count(*) FROM attack_top_hour_floor').pluck().get() as number) > 0);
  assert.ok((buffered.sqlite.prepare('SELECT count(*) FROM attack_top_day_floor').pluck().get() as number) > 0);
});

test('a key never kept in any hour summary is still within the stated bound, and the bound is tight', () => {
  // One key kept per hour. In each of 3 hours another user leads by one event while "b" is second
  // every time: the summaries never hold "b", whose window count (6) is the highest of all.
  const d = tempDir('apiary-analytics-hidden-');
  const handle = openDatabase(`${d.path}/h.sqlite`);
  try {
    const h0 = Math.floor(START / H) + 1;
    const evs: StoredEvent[] = [];
    const login = (hour: number, username: string) => {
      const id = evs.length + 1;
      evs.push({ id, node: 'node-a', potId: 'cowrie-1', potType: 'cowrie', eventType: 'cowrie.login.failed', timestamp: hour * H + id * 1000,
        data: { eventid: 'cowrie.login.failed', session: `s${id}`, src_ip: '8.8.8.8', username, password: 'x' } });
    };
    for (const [i, lead] of ['a', 'c', 'd'].entries()) {
      for (let n = 0; n < 3; n++) login(h0 + i, lead);
      for (let n = 0; n < 2; n++) login(h0 + i, 'b');
    }
    login(h0 + 5, 'later'); // moves the stream on, so the three hours are folded and summarised
    storeEvents(handle.sqlite, createAttackIngest({ topKeysPerHour: 1 }, ctx), evs, 1000);
    const s = new SqliteAttackStore(handle.sqlite, { topKeysPerHour: 1 });
    const got = s.top({ by: 'username', since: h0 * H, until: (h0 + 3) * H, limit: 1 });
    // Listed: "a" with its exact 3; any other key is at most 3 + 3 = the 6 of "b".
    assert.deepEqual(got.items.map((i) => [i.key, i.count]), [['a', 3]]);
    assert.equal(got.exact, false);
    assert.equal(got.max_undercount, 3);
    // Fewer keys listed than asked for: any other key is at most the floor (2) of the one hour.
    const one = s.top({ by: 'username', since: h0 * H, until: (h0 + 1) * H, limit: 2 });
    assert.deepEqual(one.items.map((i) => [i.key, i.count]), [['a', 3]]);
    assert.equal(one.max_undercount, 2);
    // Kept whole, the same hours answer exactly.
    const exact = new SqliteAttackStore(handle.sqlite, { topKeysPerHour: 1 }).top({ by: 'username', since: h0 * H, until: (h0 + 3) * H, node: 'node-a', limit: 2 });
    assert.deepEqual(exact.items.map((i) => [i.key, i.count]), [['b', 6], ['a', 3]]);
    assert.equal(exact.exact, true);
  } finally {
    handle.close();
    d.cleanup();
  }
});
