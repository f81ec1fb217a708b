// One attack-analytics store contract, run against both implementations: the same random events go
// through the same ingest (PgAnalyticsIngest over each AttackWriteStore) into SQLite and PostgreSQL;
// each backend's answers are checked against brute-force counts of the events, and the two
// backends' answers to a battery of queries must be identical (session ids aside: they are each
// database's own).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AnalyticsQueryError,
  createAggregateContext,
  DIMENSIONS,
  directAttackReader,
  normaliseEvent,
  PgAnalyticsIngest,
  PgAttackStore,
  SqliteAttackStore,
  SqliteAttackWriteStore,
  type AttackReader,
  type AttackWriteStore,
  type SessionRow,
  type StoredEvent,
} from '../../src/analytics/index.js';
import { databaseBackends, type Backend, type OpenedBackend } from '../helpers/backends.js';
import { bruteTop, eventKey, OTHER_IPS, PUBLIC_IPS, randomEvents, rng } from './helpers.js';

const H = 3_600_000;
const D = 86_400_000;
const START = Date.parse('2026-11-01T05:17:00Z');
const SPAN = 4 * D;
const ctx = createAggregateContext({ ignoreCidrs: ['9.9.9.0/24'], scannerCidrs: ['1.1.1.0/24 cloudflare-probe'] });

/** Mostly in time order (as a live stream), then late events spread over the whole span. */
function streamEvents(): StoredEvent[] {
  const inOrder = randomEvents(3000, START, SPAN, 11).sort((a, b) => a.timestamp - b.timestamp);
  const late = randomEvents(400, START, SPAN, 12);
  return [...inOrder, ...late].map((e, i) => ({ ...e, id: i + 1 }));
}
const events = streamEvents();
const counted = events.filter((e) => {
  const ip = normaliseEvent(e).src_ip;
  return ip === null || ctx.ignore.match(ip) === undefined;
});

interface Prepared {
  opened: OpenedBackend;
  reader: AttackReader;
  write: AttackWriteStore;
}

const backends = await databaseBackends();
const prepared = new Map<string, Promise<Prepared>>();

function open(backend: Backend): Promise<Prepared> {
  let p = prepared.get(backend.name);
  if (p === undefined) {
    p = (async () => {
      const opened = await backend.open();
      let reader: AttackReader;
      let write: AttackWriteStore;
      if (opened.kind === 'sqlite') {
        const w = new SqliteAttackWriteStore(opened.database.sqlite, new SqliteAttackStore(opened.database.sqlite, { bruteforceMinFailures: 5 }));
        reader = directAttackReader(w.store);
        write = w;
      } else {
        const store = new PgAttackStore(opened.database, { bruteforceMinFailures: 5 });
        reader = store;
        write = store;
      }
      // Committed batches of 250, written every 4 batches (the flush interval, made explicit).
      const errors: unknown[] = [];
      const ingest = new PgAnalyticsIngest(write, { flushMs: 3_600_000 }, { ctx, onError: (e) => errors.push(e) });
      for (let i = 0, n = 0; i < events.length; i += 250, n++) {
        ingest.onCommitted(events.slice(i, i + 250));
        if (n % 4 === 3) await ingest.flush();
      }
      await ingest.close();
      assert.deepEqual(errors, []);
      assert.equal(ingest.pendingEvents, 0);
      return { opened, reader, write };
    })();
    prepared.set(backend.name, p);
  }
  return p;
}

after(async () => {
  for (const p of prepared.values()) await (await p.catch(() => undefined))?.opened.close();
});

for (const backend of backends) {
  describe(`AttackStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let s: Prepared;
    before(async () => {
      s = await open(backend);
    });

    it('records the watermark: the highest event id written', async () => {
      assert.equal(await s.write.ingestedUntil(), events.length);
    });

    it('top-N of every dimension equals the brute-force count over random windows and filters', async () => {
      const r = rng(3);
      let checked = 0;
      for (let round = 0; round < 12; round++) {
        const since = START - D + Math.floor(r() * (SPAN + D));
        const until = since + 1 + Math.floor(r() * (round % 2 === 0 ? 30 * H : 3 * D));
        const node = r() < 0.3 ? 'node-b' : undefined;
        const potType = r() < 0.3 ? 'cowrie' : undefined;
        for (const by of DIMENSIONS) {
          const expected = bruteTop(ctx, counted, by, since, until, node, potType).slice(0, 10);
          const got = await s.reader.top({ by, since, until, node, potType, limit: 10 });
          assert.equal(got.exact, true);
          assert.deepEqual(got.items.map((i) => ({ key: i.key, count: i.count })), expected, `${by} ${since} ${until} ${node} ${potType}`);
          checked += expected.length;
        }
      }
      assert.ok(checked > 300, 'the windows held data');
      const asn = await s.reader.top({ by: 'asn', since: START, until: START + SPAN, limit: 50 });
      assert.ok(asn.items.some((i) => i.key === '15169' && i.as_org === 'Google LLC'), 'AS organisation joined');
    });

    it('timelines (minute, hour, day) equal brute-force bucket counts', async () => {
      for (const [bucket, unit, span] of [['minute', 60_000, 3 * H], ['hour', H, 2 * D], ['day', D, SPAN]] as const) {
        const since = START + D + 7 * 60_000 + 13;
        const until = since + span;
        const lo = Math.floor(since / unit) * unit;
        const hi = Math.ceil(until / unit) * unit;
        const total = new Map<number, number>();
        for (const e of counted) if (e.timestamp >= lo && e.timestamp < hi) {
          const b = Math.floor(e.timestamp / unit) * unit;
          total.set(b, (total.get(b) ?? 0) + 1);
        }
        const got = await s.reader.timeline({ bucket, since, until, limit: 5 });
        assert.deepEqual(got.series[0]!.points, [...total].sort((a, b) => a[0] - b[0]).map(([start, count]) => ({ start, count })), bucket);
        if (bucket === 'minute') continue;
        const split = await s.reader.timeline({ bucket, since, until, by: 'credential', limit: 2 });
        assert.deepEqual(split.series.map((x) => x.key), bruteTop(ctx, counted, 'credential', lo, hi).slice(0, 2).map((t) => t.key));
        for (const x of split.series) {
          const exp = new Map<number, number>();
          for (const e of counted) if (e.timestamp >= lo && e.timestamp < hi && eventKey(ctx, e, 'credential') === x.key) {
            const b = Math.floor(e.timestamp / unit) * unit;
            exp.set(b, (exp.get(b) ?? 0) + 1);
          }
          assert.deepEqual(x.points, [...exp].sort((a, b) => a[0] - b[0]).map(([start, count]) => ({ start, count })), `${bucket} ${x.key}`);
        }
      }
    });

    it('attackers, sessions with their steps, ignored count equal the events', async () => {
      for (const ip of ['8.8.8.8', '1.1.1.1', '10.0.0.7', '8.8.4.4']) {
        const mine = counted.filter((e) => normaliseEvent(e).src_ip === ip);
        const p = (await s.reader.attacker(ip, 1000))!;
        assert.equal(p.events, mine.length, ip);
        assert.equal(p.first_seen, Math.min(...mine.map((e) => e.timestamp)));
        assert.equal(p.tags.includes('scanner'), ip === '1.1.1.1');
      }
      assert.equal(await s.reader.attacker('9.9.9.9', 10), undefined);
      const ignored = events.filter((e) => normaliseEvent(e).src_ip === '9.9.9.9').length;
      assert.equal(await s.reader.ignoredCount(START - D, START + SPAN + D), ignored);

      const groups = new Map<string, StoredEvent[]>();
      for (const e of counted) {
        const sid = normaliseEvent(e).session;
        if (sid !== null) groups.set(`${e.node}/${e.potId}/${sid}`, [...(groups.get(`${e.node}/${e.potId}/${sid}`) ?? []), e]);
      }
      const all = await s.reader.sessions({ limit: 100_000 });
      assert.equal(all.length, groups.size);
      for (const row of all.slice(0, 20)) {
        const evs = groups.get(`${row.node}/${row.pot_id}/${row.session}`)!;
        assert.equal(row.events, evs.length);
        const detail = (await s.reader.session(row.id))!;
        const steps = evs.map((e) => normaliseEvent(e)).filter((r) => r.login !== null || r.command !== null || r.url !== null).map((r) => r.event_id);
        assert.deepEqual(detail.steps.map((x) => x.event_id), steps.sort((a, b) => a - b));
      }
    });

    it('rejects the windows the API refuses', async () => {
      await assert.rejects(s.reader.top({ by: 'src_ip', since: START, until: START, limit: 1 }), AnalyticsQueryError);
      await assert.rejects(s.reader.timeline({ bucket: 'minute', since: START, until: START + 30 * D, limit: 1 }), /range too large/);
      await assert.rejects(s.reader.timeline({ bucket: 'minute', since: START, until: START + H, by: 'src_ip', limit: 1 }), /node or pot_type/);
    });
  });
}

/** A session without its id (each database numbers its own), keyed like the store keys it. */
const sessionKey = (r: SessionRow) => `${r.node}/${r.pot_id}/${r.session}`;
const withoutId = <T extends { id: number }>(r: T): Omit<T, 'id'> => {
  const { id: _id, ...rest } = r;
  return rest;
};

/** The same query battery on a reader (windows starting at `from` or later): every answer, session ids dropped. */
async function battery(reader: AttackReader, from = 0): Promise<unknown[]> {
  const out: unknown[] = [];
  const r = rng(5);
  const windows: [number, number][] = [[START, START + SPAN], [START + 13 * H + 5, START + 2 * D + 7 * H], [START + 2 * D, START + 2 * D + 3 * H]];
  for (let i = 0; i < 4; i++) {
    const since = START + Math.floor(r() * SPAN);
    windows.push([since, since + 1 + Math.floor(r() * 2 * D)]);
  }
  for (const [s0, u0] of windows) {
    const since = Math.max(s0, from);
    const until = Math.max(u0, since + H);
    for (const by of DIMENSIONS) {
      out.push(await reader.top({ by, since, until, limit: 7 }));
      out.push(await reader.top({ by, since, until, node: 'node-a', potType: 'cowrie', limit: 3 }));
    }
    for (const bucket of ['hour', 'day'] as const) {
      out.push(await reader.timeline({ bucket, since, until, limit: 3 }));
      out.push(await reader.timeline({ bucket, since, until, by: 'src_ip', limit: 3 }));
      out.push(await reader.timeline({ bucket, since, until, by: 'node', node: 'node-c', limit: 3 }));
      out.push(await reader.timeline({ bucket, since, until, by: 'command', potType: 'cowrie', limit: 2 }));
    }
    out.push(await reader.indicators('url', since, until, 10));
    out.push(await reader.indicators('hash', since, until, 2));
    out.push(await reader.ignoredCount(since, until));
  }
  out.push(await reader.timeline({ bucket: 'minute', since: START + D, until: START + D + 5 * H, limit: 1 }));
  out.push(await reader.timeline({ bucket: 'minute', since: START + D, until: START + D + 5 * H, by: 'node', limit: 1 }));
  out.push(await reader.timeline({ bucket: 'minute', since: START + D, until: START + D + 5 * H, by: 'pot_type', node: 'node-b', limit: 1 }));
  for (const ip of [...PUBLIC_IPS, ...OTHER_IPS, '8.8.4.4', '203.0.113.200']) {
    for (const limit of [2, 1000]) {
      const p = await reader.attacker(ip === '::ffff:8.8.4.4' ? '8.8.4.4' : ip, limit);
      out.push(p === undefined ? p : { ...p, sessions: p.sessions.map(withoutId) });
    }
  }
  // Every session page by page, and filtered lists; then each session's steps.
  const pages: Omit<SessionRow, 'id'>[][] = [];
  let afterKey: { startedAt: number; id: number } | undefined;
  for (;;) {
    const page = await reader.sessions({ limit: 37, after: afterKey });
    pages.push(page.map(withoutId));
    if (page.length < 37) break;
    afterKey = { startedAt: page.at(-1)!.started_at, id: page.at(-1)!.id };
  }
  out.push(pages);
  out.push((await reader.sessions({ srcIp: '8.8.8.8', limit: 50 })).map(withoutId));
  out.push((await reader.sessions({ node: 'node-b', since: START + D, until: START + 2 * D, limit: 50 })).map(withoutId));
  const details = new Map<string, unknown>();
  for (const row of await reader.sessions({ limit: 60 })) {
    const d = (await reader.session(row.id))!;
    details.set(sessionKey(row), withoutId(d));
  }
  out.push([...details]);
  out.push(await reader.session(-1));
  for (const tag of [undefined, 'scanner', 'bruteforce', 'logged_in', 'downloaded', 'ran_commands'] as const) {
    out.push(await reader.intelIps({ since: START, minCount: 1, tag, limit: 100 }));
  }
  out.push(await reader.intelIps({ since: START + 3 * D, minCount: 40, limit: 3 }));
  return out;
}

const pg = backends.find((b) => b.name === 'PostgreSQL')!;
const sqlite = backends.find((b) => b.name === 'SQLite')!;

describe('AttackStore contract: SQLite and PostgreSQL answer alike', { skip: pg.skip }, () => {
  let a: Prepared;
  let b: Prepared;
  before(async () => {
    [a, b] = await Promise.all([open(sqlite), open(pg)]);
  });

  it('the same answers to every query of the battery', async () => {
    const [x, y] = await Promise.all([battery(a.reader), battery(b.reader)]);
    assert.equal(x.length, y.length);
    for (let i = 0; i < x.length; i++) assert.deepEqual(y[i], x[i], `query ${i}`);
  });

  it('retention in chunks leaves the same answers, and nothing before the cutoff', async () => {
    const cutoff = START + 2 * D + 5 * H;
    for (const s of [a, b]) {
      let total = 0;
      for (let i = 0; i < 1000; i++) {
        const r = await s.write.deleteOlderThan(cutoff, 300);
        total += r.deleted;
        if (r.done) break;
      }
      assert.ok(total > 0);
      const early = await s.reader.top({ by: 'event_type', since: START - D, until: cutoff - H, limit: 5 });
      assert.deepEqual(early.items, []);
      assert.equal((await s.reader.sessions({ until: cutoff - 2 * H, limit: 100 })).filter((r) => r.last_seen < cutoff).length, 0);
    }
    // Windows from the first whole day after the cutoff: a window over the cutoff's own day is
    // answered by SQLite from its hours or from its day row (whether the day is summarised yet),
    // which retention left in different states.
    const from = (Math.floor(cutoff / D) + 1) * D;
    const [x, y] = await Promise.all([battery(a.reader, from), battery(b.reader, from)]);
    for (let i = 0; i < x.length; i++) assert.deepEqual(y[i], x[i], `query ${i}`);
  });
});
