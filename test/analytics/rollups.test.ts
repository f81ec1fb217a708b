import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import {
  createAggregateContext,
  createAttackIngest,
  DIMENSIONS,
  normaliseEvent,
  SqliteAttackStore,
  type Dimension,
  type StoredEvent,
} from '../../src/analytics/index.js';
import { tempDir } from '../helpers/tmp.js';
import { eventKey, randomEvents, rng, storeEvents } from './helpers.js';

const H = 3_600_000;
const D = 86_400_000;
const START = Date.parse('2026-11-01T05:17:00Z');
const SPAN = 4 * D;
const IGNORED = '9.9.9.0/24';
const SCANNER = '1.1.1.0/24 cloudflare-probe';

let dir: ReturnType<typeof tempDir>;
let db: DatabaseHandle;
let store: SqliteAttackStore;
let events: StoredEvent[];
const ctx = createAggregateContext({ ignoreCidrs: [IGNORED], scannerCidrs: [SCANNER] });

before(() => {
  dir = tempDir('apiary-analytics-');
  db = openDatabase(`${dir.path}/a.sqlite`);
  const ingest = createAttackIngest({ bruteforceMinFailures: 5 }, ctx);
  events = randomEvents(6000, START, SPAN, 42);
  storeEvents(db.sqlite, ingest, events, 317);
  store = new SqliteAttackStore(db.sqlite, { bruteforceMinFailures: 5 });
  // The writer builds hour summaries within a time budget per write; here every folded hour gets
  // its own, so the queries below read them (complete summaries: the answers must be exact).
  db.sqlite.transaction(() => store.summariseFolded('hour'))();
  assert.ok((db.sqlite.prepare('SELECT count(*) FROM attack_top_hour_floor').pluck().get() as number) > 80 * 11);
});
after(() => {
  db.close();
  dir.cleanup();
});

let countedEvents: StoredEvent[] | undefined;
const counted = () =>
  (countedEvents ??= events.filter((e) => {
    const ip = normaliseEvent(e).src_ip;
    return ip === null || ctx.ignore.match(ip) === undefined;
  }));

const keyOf = (e: StoredEvent, by: Dimension) => eventKey(ctx, e, by);

function bruteTop(by: Dimension, since: number, until: number, node?: string, potType?: string) {
  const lo = Math.floor(since / H) * H;
  const hi = Math.ceil(until / H) * H;
  const counts = new Map<string, number>();
  for (const e of counted()) {
    if (e.timestamp < lo || e.timestamp >= hi) continue;
    if (node !== undefined && e.node !== node) continue;
    if (potType !== undefined && e.potType !== potType) continue;
    const k = keyOf(e, by);
    if (k !== null) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => ({ key, count })).sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

test('top-N for every dimension equals the brute-force count over random windows and filters', () => {
  const r = rng(7);
  let checked = 0;
  for (let round = 0; round < 40; round++) {
    const since = START - D + Math.floor(r() * (SPAN + D));
    const until = since + 1 + Math.floor(r() * (round % 2 === 0 ? 30 * H : 3 * D));
    const node = r() < 0.3 ? 'node-b' : undefined;
    const potType = r() < 0.3 ? 'cowrie' : undefined;
    for (const by of DIMENSIONS) {
      const expected = bruteTop(by, since, until, node, potType).slice(0, 20);
      const got = store.top({ by, since, until, node, potType, limit: 20 });
      assert.deepEqual(got.items.map((i) => ({ key: i.key, count: i.count })), expected, `${by} ${since} ${until} ${node} ${potType}`);
      checked += expected.length;
    }
  }
  assert.ok(checked > 1000, 'the windows held data');
  const asn = store.top({ by: 'asn', since: START, until: START + SPAN, limit: 50 });
  assert.ok(asn.items.some((i) => i.key === '15169' && i.as_org === 'Google LLC'), 'AS organisation joined');
  const cred = store.top({ by: 'credential', since: START, until: START + SPAN, limit: 1 });
  assert.equal(typeof cred.items[0]!.username, 'string');
});

test('timelines (minute, hour, day; total and split) equal brute-force bucket counts', () => {
  for (const [bucket, unit, span] of [['minute', 60_000, 3 * H], ['hour', H, 2 * D], ['day', D, SPAN]] as const) {
    const since = START + 7 * 60_000 + 13;
    const until = since + span;
    const lo = Math.floor(since / unit) * unit;
    const hi = Math.ceil(until / unit) * unit;
    const total = new Map<number, number>();
    for (const e of counted()) if (e.timestamp >= lo && e.timestamp < hi) {
      const b = Math.floor(e.timestamp / unit) * unit;
      total.set(b, (total.get(b) ?? 0) + 1);
    }
    const got = store.timeline({ bucket, since, until, limit: 5 });
    assert.equal(got.series.length, 1);
    assert.deepEqual(got.series[0]!.points, [...total].sort((a, b) => a[0] - b[0]).map(([start, count]) => ({ start, count })), bucket);

    const by: Dimension = bucket === 'minute' ? 'node' : 'src_ip';
    const split = store.timeline({ bucket, since, until, by, limit: 3 });
    const topKeys = bruteTop(by, lo, hi).slice(0, 3).map((t) => t.key);
    if (bucket !== 'minute') assert.deepEqual(split.series.map((s) => s.key), topKeys);
    for (const s of split.series) {
      const exp = new Map<number, number>();
      for (const e of counted()) if (e.timestamp >= lo && e.timestamp < hi && keyOf(e, by) === s.key) {
        const b = Math.floor(e.timestamp / unit) * unit;
        exp.set(b, (exp.get(b) ?? 0) + 1);
      }
      assert.deepEqual(s.points, [...exp].sort((a, b) => a[0] - b[0]).map(([start, count]) => ({ start, count })), `${bucket} ${s.key}`);
    }
  }
  assert.throws(() => store.timeline({ bucket: 'minute', since: START, until: START + 30 * D, limit: 1 }), /range too large/);
  assert.throws(() => store.timeline({ bucket: 'minute', since: START, until: START + H, by: 'src_ip', limit: 1 }), /node or pot_type/);
});

test('attacker profiles equal brute-force facts; tags from behaviour and the scanner list', () => {
  for (const ip of ['8.8.8.8', '1.1.1.1', '10.0.0.7', '8.8.4.4', '2a00:1450:4001::1']) {
    const mine = counted().filter((e) => normaliseEvent(e).src_ip === ip);
    const p = store.attacker(ip, 1000)!;
    assert.ok(p, ip);
    assert.equal(p.events, mine.length, ip);
    assert.equal(p.first_seen, Math.min(...mine.map((e) => e.timestamp)));
    assert.equal(p.last_seen, Math.max(...mine.map((e) => e.timestamp)));
    const creds = new Map<string, number>();
    const cmds = new Set<string>();
    let failed = 0;
    for (const e of mine) {
      const c = keyOf(e, 'credential');
      if (c !== null) creds.set(c, (creds.get(c) ?? 0) + 1);
      if (normaliseEvent(e).login === 'failed') failed++;
      const cmd = keyOf(e, 'command');
      if (cmd !== null) cmds.add(cmd);
    }
    assert.deepEqual(new Map(p.credentials.map((c) => [JSON.stringify([c.username, c.password]), c.count])), creds);
    assert.deepEqual(new Set(p.commands.map((c) => c.value)), cmds);
    assert.equal(p.tags.includes('bruteforce'), failed >= 5);
    assert.equal(p.tags.includes('scanner'), ip === '1.1.1.1');
    assert.equal(p.tags.includes('ran_commands'), cmds.size > 0);
    const sessions = new Set(mine.filter((e) => e.potType === 'cowrie').map((e) => `${e.node}/${(e.data as { session: string }).session}`));
    assert.equal(new Set(p.sessions.map((s) => `${s.node}/${s.session}`)).size, Math.min(sessions.size, 1000));
  }
  assert.equal(store.attacker('1.1.1.1', 10)!.scanner, 'cloudflare-probe');
  assert.equal(store.attacker('10.0.0.7', 10)!.geo.scope, 'private');
  assert.equal(store.attacker('8.8.4.4', 10)!.geo.country, 'US', 'mapped address folded and enriched');
  assert.equal(store.attacker('9.9.9.9', 10), undefined, 'IGNORE_CIDRS sources are not attackers');
  const ignored = events.filter((e) => normaliseEvent(e).src_ip === '9.9.9.9').length;
  assert.ok(ignored > 0);
  assert.equal(store.ignoredCount(START - D, START + SPAN + D), ignored);
});

test('sessions: one row per (node, pot, session) with its steps in event order', () => {
  const groups = new Map<string, StoredEvent[]>();
  for (const e of counted()) {
    const s = normaliseEvent(e).session;
    if (s === null) continue;
    const k = `${e.node}\u0000${e.potId}\u0000${s}`;
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  let all: { id: number; node: string; pot_id: string; session: string; events: number; started_at: number }[] = [];
  let after: { startedAt: number; id: number } | undefined;
  for (;;) {
    const page = store.sessions({ limit: 100, after });
    all = all.concat(page);
    if (page.length < 100) break;
    for (let i = 1; i < page.length; i++) {
      const [a, b] = [page[i - 1]!, page[i]!];
      assert.ok(a.started_at > b.started_at || (a.started_at === b.started_at && a.id > b.id), 'newest first');
    }
    after = { startedAt: page.at(-1)!.started_at, id: page.at(-1)!.id };
  }
  assert.equal(all.length, groups.size);
  for (const s of all.slice(0, 50)) {
    const evs = groups.get(`${s.node}\u0000${s.pot_id}\u0000${s.session}`)!;
    assert.equal(s.events, evs.length);
    const detail = store.session(s.id)!;
    const expectedSteps = evs
      .map((e) => normaliseEvent(e))
      .filter((r) => r.login !== null || r.command !== null || r.url !== null)
      .map((r) => r.event_id);
    assert.deepEqual(detail.steps.map((x) => x.event_id), expectedSteps.sort((a, b) => a - b));
    const success = evs.filter((e) => e.eventType === 'cowrie.login.success').sort((a, b) => a.id - b.id).at(-1);
    if (success !== undefined) assert.equal(detail.username, (success.data as { username: string }).username);
  }
});

test('intel IPs: min_count, tag filter and most frequent port agree with the attackers', () => {
  const rows = store.intelIps({ since: START, minCount: 50, limit: 100 });
  assert.ok(rows.length > 0);
  for (const r of rows) {
    assert.ok(r.events >= 50);
    const p = store.attacker(r.ip, 100)!;
    assert.equal(String(r.port), p.ports[0]!.value);
  }
  const scanners = store.intelIps({ since: 0, minCount: 1, tag: 'scanner', limit: 100 });
  assert.deepEqual(scanners.map((r) => r.ip), ['1.1.1.1']);
});

test('day rows equal the sum of their hour rows for every folded day (folding plus late events)', () => {
  const until = store.dayRollupUntilHour()!;
  assert.ok(until > Math.floor(START / H), 'hours were folded');
  const foldedDay = Math.floor(until / 24);
  const hourSums = `SELECT dim, bucket / 24 AS d, node, pot_type, key, sum(count) AS c FROM attack_rollup_hour WHERE bucket < ${foldedDay * 24} GROUP BY dim, d, node, pot_type, key`;
  const days = `SELECT dim, bucket AS d, node, pot_type, key, count AS c FROM attack_rollup_day WHERE bucket < ${foldedDay}`;
  const count = (sql: string) => db.sqlite.prepare(`SELECT count(*) FROM (${sql})`).pluck().get() as number;
  assert.ok(count(days) > 0);
  assert.equal(count(`${hourSums} EXCEPT ${days}`), 0);
  assert.equal(count(`${days} EXCEPT ${hourSums}`), 0);
});

test('retention deletes rollups, attackers, facts and sessions older than the cutoff, in chunks', () => {
  const cutoff = START + 2 * D;
  let total = 0;
  for (let i = 0; i < 1000; i++) {
    const r = store.deleteOlderThan(cutoff, 500);
    total += r.deleted;
    if (r.done) break;
  }
  assert.ok(total > 0);
  const left = (sql: string, ...p: unknown[]) => db.sqlite.prepare(sql).pluck().get(...p) as number;
  assert.equal(left('SELECT count(*) FROM attack_rollup_hour WHERE bucket < ?', Math.floor(cutoff / H)), 0);
  assert.equal(left('SELECT count(*) FROM attack_rollup_day WHERE bucket < ?', Math.floor(cutoff / D)), 0);
  assert.equal(left('SELECT count(*) FROM attackers WHERE last_seen < ?', cutoff), 0);
  assert.equal(left('SELECT count(*) FROM attack_sessions WHERE last_seen < ?', cutoff), 0);
  assert.equal(left('SELECT count(*) FROM attack_session_steps WHERE session_id NOT IN (SELECT id FROM attack_sessions)'), 0);
  const since = cutoff + D;
  assert.deepEqual(store.top({ by: 'src_ip', since, until: START + SPAN, limit: 5 }).items.map((i) => ({ key: i.key, count: i.count })), bruteTop('src_ip', since, START + SPAN).slice(0, 5));
});
