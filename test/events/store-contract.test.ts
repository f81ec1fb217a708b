// One EventStore contract, run against both implementations (SQLite: writer thread + read pool;
// PostgreSQL: day partitions). The same events appended to each give the same ids, the same pages
// (every filter, both orders, keyset cursors to the last page), the same stats and, after
// retention by age and by row count, the same rows left. Expected answers come from a model of
// the data computed here, so both stores are held to one answer, not merely to each other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { partitionName, dayOf, ReadPool } from '../../src/db/index.js';
import { eventQueryModules, PgEventStore, SqliteEventStore, type EventStore, type NewEvent } from '../../src/events/index.js';
import { rowToJson, STATS_TOP } from '../../src/events/queries.js';
import type { EventFilter, EventJson } from '../../src/events/types.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';

const DAY = 86_400_000;
const BASE = Date.UTC(2026, 0, 10);
const NODES = ['node-a', 'Node-B', '_x', 'node-a', 'node_c'];
const POT_TYPES = ['cowrie', 'dionaea', 'Cowrie'];
const EVENT_TYPES = ['cowrie.login.failed', 'cowrie.command.input', 'dionaea.connection', 'cowrie.login.failed'];

/** 60 events over three days of received_at, node timestamps out of id order, odd data. */
function dataset(): NewEvent[] {
  return Array.from({ length: 60 }, (_, i) => {
    const receivedAt = BASE + Math.floor((i * 3 * DAY) / 60) + 1;
    const data = i % 11 === 5 ? 'not json {' : i % 7 === 3 ? `{"i":${i},"big":123456789012345678901234,"s":"é\\u0000'"}` : JSON.stringify({ i, src_ip: `198.51.100.${i}` });
    return {
      node: NODES[i % NODES.length]!,
      potId: `pot-${i % 4}`,
      potType: POT_TYPES[i % POT_TYPES.length]!,
      eventType: EVENT_TYPES[(i * 7) % EVENT_TYPES.length]!,
      timestamp: BASE - ((i * 7919) % 97) * 3_600_000,
      receivedAt,
      dataJson: data,
      fromStatus: i % 9 === 0,
    };
  });
}

interface Stored extends NewEvent {
  id: number;
}

const toJson = (e: Stored): EventJson =>
  rowToJson({ id: e.id, node_name: e.node, pot_id: e.potId, pot_type: e.potType, event_type: e.eventType, timestamp: e.timestamp, data: e.dataJson, received_at: e.receivedAt });

function matches(e: Stored, f: EventFilter): boolean {
  return (
    (f.node === undefined || e.node === f.node) &&
    (f.pot === undefined || e.potId === f.pot) &&
    (f.potType === undefined || e.potType === f.potType) &&
    (f.eventType === undefined || e.eventType === f.eventType) &&
    (f.since === undefined || e.timestamp >= f.since) &&
    (f.until === undefined || e.timestamp < f.until)
  );
}

/** Byte order of UTF-8 text, as SQLite's BINARY collation compares. */
const byteCompare = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

function top(rows: Stored[], key: (e: Stored) => string): { k: string; c: number }[] {
  const counts = new Map<string, number>();
  for (const e of rows) counts.set(key(e), (counts.get(key(e)) ?? 0) + 1);
  return [...counts.entries()]
    .map(([k, c]) => ({ k, c }))
    .sort((a, b) => b.c - a.c || byteCompare(a.k, b.k))
    .slice(0, STATS_TOP);
}

const FILTERS: EventFilter[] = [
  {},
  { node: 'node-a' },
  { node: 'Node-B', potType: 'dionaea' },
  { pot: 'pot-1', eventType: 'cowrie.login.failed' },
  { potType: 'cowrie' },
  { since: BASE - 40 * 3_600_000, until: BASE - 3 * 3_600_000 },
  { node: 'node-a', since: BASE - 50 * 3_600_000 },
  { node: 'nobody' },
];

for (const backend of await databaseBackends()) {
  describe(`EventStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedBackend;
    let store: EventStore;
    let pool: ReadPool | undefined;
    let model: Stored[] = [];
    const commits: number[] = [];

    before(async () => {
      opened = await backend.open();
      if (opened.kind === 'sqlite') {
        pool = new ReadPool({ dbPath: opened.database.path, modules: eventQueryModules(), size: 1 });
        store = new SqliteEventStore({ dbPath: opened.database.path, readPool: pool });
      } else {
        store = new PgEventStore(opened.database, { partitions: { aheadDays: 0 } });
      }
      store.observe?.({ commitSeconds: (s) => commits.push(s), hookFailed: () => undefined, writerError: () => undefined });
    });
    after(async () => {
      await store?.close();
      await pool?.close();
      await opened?.close();
    });

    it('append: ids from 1 in batch order; batches appended together commit in call order', async () => {
      const events = dataset();
      const batches = [events.slice(0, 25), events.slice(25, 26), events.slice(26, 40), events.slice(40)];
      const ids = await Promise.all(batches.map((b) => store.append(b)));
      assert.deepEqual(ids.map((a) => Array.from(a)), batches.map((b, k) => b.map((_, i) => batches.slice(0, k).reduce((n, x) => n + x.length, 0) + i + 1)));
      model = events.map((e, i) => ({ ...e, id: i + 1 }));
      assert.deepEqual(Array.from(await store.append([])), []);
      assert.ok(commits.length >= 4, 'each commit is reported to the observer');
    });

    it('get: every column back, inexact numbers as strings, non-JSON data as raw; a missing id is undefined', async () => {
      for (const e of model) assert.deepEqual(await store.get(e.id), toJson(e), `event ${e.id}`);
      assert.equal(await store.get(61), undefined);
      assert.equal(await store.get(0), undefined);
      const odd = (await store.get(4))!;
      assert.deepEqual(odd.data, { i: 3, big: '123456789012345678901234', s: "é\u0000'" });
      assert.deepEqual((await store.get(6))!.data, { raw: 'not json {' });
    });

    it('list: every filter, both orders, walked to the last page by keyset cursor', async () => {
      for (const f of FILTERS) {
        for (const order of ['desc', 'asc'] as const) {
          const expected = model.filter((e) => matches(e, f)).sort((a, b) => (order === 'desc' ? b.id - a.id : a.id - b.id));
          const seen: EventJson[] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await store.list({ ...f, order, limit: 7, cursor });
            assert.ok(page.events.length <= 7);
            seen.push(...page.events);
            cursor = page.next_cursor ?? undefined;
            pages++;
          } while (cursor !== undefined && pages < 50);
          assert.deepEqual(seen, expected.map(toJson), `${JSON.stringify(f)} ${order}`);
          assert.equal(pages, Math.max(1, Math.ceil(expected.length / 7)), 'no empty last page');
        }
      }
      const first = await store.list({});
      assert.equal(first.events.length, 60, 'default page size 100');
      assert.equal(first.next_cursor, null);
      assert.equal((await store.list({ limit: 5000 })).events.length, 60);
      assert.deepEqual((await store.list({ limit: 0 })).events.map((e) => e.id), [60], 'limit is at least 1');
      await assert.rejects(store.list({ cursor: 'bogus' }), (err: Error) => err.name === 'QueryError');
    });

    it('stats: total, top groups (ties in byte order), buckets by hour and by day', async () => {
      for (const f of FILTERS) {
        for (const bucket of ['hour', 'day'] as const) {
          const since = f.since ?? BASE - 200 * 3_600_000;
          const until = f.until ?? BASE + 3_600_000;
          const rows = model.filter((e) => matches(e, { ...f, since, until }));
          const size = bucket === 'hour' ? 3_600_000 : DAY;
          const buckets = new Map<number, number>();
          for (const e of rows) buckets.set(Math.trunc(e.timestamp / size) * size, (buckets.get(Math.trunc(e.timestamp / size) * size) ?? 0) + 1);
          assert.deepEqual(
            await store.stats({ ...f, since, until, bucket }),
            {
              since: new Date(since).toISOString(),
              until: new Date(until).toISOString(),
              bucket,
              total: rows.length,
              by_event_type: top(rows, (e) => e.eventType).map((r) => ({ event_type: r.k, count: r.c })),
              by_node: top(rows, (e) => e.node).map((r) => ({ node: r.k, count: r.c })),
              by_pot_type: top(rows, (e) => e.potType).map((r) => ({ pot_type: r.k, count: r.c })),
              buckets: [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([b, c]) => ({ start: new Date(b).toISOString(), count: c })),
            },
            `${JSON.stringify(f)} ${bucket}`,
          );
        }
      }
      await assert.rejects(store.stats({ since: 10, until: 10 }), (err: Error) => err.name === 'QueryError');
    });

    it('retention by age: steps of at most `limit` rows (whole days at once on PostgreSQL) until nothing is left to delete', async () => {
      const cutoff = BASE + DAY + DAY / 2;
      let deleted = 0;
      for (let i = 0; i < 100; i++) {
        const step = await store.retentionStep({ receivedBefore: cutoff, maxRows: 0, limit: 7 });
        assert.equal(step.rows, 0);
        if (step.age === 0) break;
        if (opened.kind === 'sqlite') assert.ok(step.age <= 7);
        deleted += step.age;
      }
      const kept = model.filter((e) => e.receivedAt >= cutoff);
      assert.equal(deleted, model.length - kept.length);
      assert.deepEqual((await store.list({ order: 'asc', limit: 1000 })).events, kept.map(toJson));
      if (opened.kind === 'pg') {
        const { rows } = await opened.database.pool.query<{ n: string }>("SELECT relname AS n FROM pg_class WHERE relkind = 'r' AND relname LIKE 'events_p2026011%' ORDER BY 1");
        assert.deepEqual(rows.map((r) => r.n), [partitionName(dayOf(cutoff)), partitionName(dayOf(cutoff) + 1)], 'the first day was dropped whole');
      }
      model = kept;
    });

    it('retention by row count keeps the newest ids; age and count together', async () => {
      let deleted = 0;
      for (let i = 0; i < 100; i++) {
        const step = await store.retentionStep({ receivedBefore: 0, maxRows: 12, limit: 4 });
        assert.equal(step.age, 0);
        if (step.rows === 0) break;
        if (opened.kind === 'sqlite') assert.ok(step.rows <= 4);
        deleted += step.rows;
      }
      const kept = model.slice(-12);
      assert.equal(deleted, model.length - 12);
      assert.deepEqual((await store.list({ order: 'asc', limit: 1000 })).events, kept.map(toJson));
      // Both limits in one step: age first, then the row count from what is left.
      const step = await store.retentionStep({ receivedBefore: kept[2]!.receivedAt, maxRows: 5, limit: 1000 });
      assert.deepEqual(step, { age: 2, rows: 5 });
      assert.deepEqual((await store.list({ order: 'asc', limit: 1000 })).events, kept.slice(-5).map(toJson));
      assert.deepEqual(await store.retentionStep({ receivedBefore: kept[2]!.receivedAt, maxRows: 5, limit: 1000 }), { age: 0, rows: 0 });
    });

    it('appends after retention continue the ids', async () => {
      const [id] = Array.from(await store.append([{ ...dataset()[0]!, receivedAt: BASE + 2 * DAY + 5 }]));
      assert.equal(id, 61);
      assert.equal((await store.get(61))?.node, 'node-a');
    });
  });
}
