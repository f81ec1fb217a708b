// Pages filtered by node or event type go through the side tables events_by_node / events_by_type
// up to a watermark, and scan the newer rows (the tail) by id (src/events/side-index.ts, queries.ts).
// Every filtered page must equal what a brute-force filter of all rows gives: same rows, same order,
// whichever side of the watermark they are on, across catch-ups and after retention.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { openDatabase } from '../../src/db/index.js';
import type { NewEvent, SqliteEventStore } from '../../src/events/index.js';
import { EventQueries, type EventListQuery, type EventPage, type EventRow } from '../../src/events/queries.js';
import { EventSideIndex, type DeletedEvent } from '../../src/events/side-index.js';
import type { EventFilter } from '../../src/events/types.js';
import { seededRandom } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';
import { openTestStore, testDb, waitFor, type TestDb } from './helpers.js';

const NODES = ['n-a', 'n-b', 'n-c', 'n-d', 'n-e'];
const TYPES = ['login.failed', 'session.connect', 'command.input', 'file_download'];
const POTS = ['p-1', 'p-2', 'p-3'];
const T0 = Date.UTC(2026, 10, 1);

/** Events with skewed node and type volumes; received_at is not monotonic in id (clock steps). */
function makeEvents(rand: () => number, n: number, from: number): NewEvent[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.min(xs.length - 1, Math.floor(rand() ** 2 * xs.length))]!;
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      node: pick(NODES),
      potId: pick(POTS),
      potType: rand() < 0.8 ? 'cowrie' : 'dionaea',
      eventType: pick(TYPES),
      timestamp: T0 + i * 1000 + Math.floor(rand() * 5000),
      receivedAt: T0 + i * 1000 + Math.floor(rand() * 20_000),
      dataJson: JSON.stringify({ i }),
      fromStatus: false,
    };
  });
}

function insertDirect(sqlite: Database.Database, events: readonly NewEvent[]): void {
  const insert = sqlite.prepare('INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  sqlite.transaction(() => {
    for (const e of events) insert.run(e.node, e.potId, e.potType, e.eventType, e.timestamp, e.dataJson, e.receivedAt);
  })();
}

const FILTERS: EventFilter[] = [
  { node: 'n-a' },
  { node: 'n-e' },
  { eventType: 'login.failed' },
  { eventType: 'file_download' },
  { node: 'n-b', pot: 'p-2' },
  { node: 'n-a', eventType: 'command.input' },
  { node: 'n-c', potType: 'dionaea', until: T0 + 1_500_000 },
  { eventType: 'session.connect', since: T0 + 1_200_000 },
  { eventType: 'login.failed', pot: 'p-1', since: T0 + 300_000, until: T0 + 2_600_000 },
  { node: 'nobody' },
];

/** The ids of every page of `filter` in `order`, following next_cursor; checks each page against the brute-force answer. */
async function walk(list: (q: EventListQuery) => EventPage | Promise<EventPage>, all: readonly EventRow[], filter: EventFilter, order: 'asc' | 'desc', limit: number): Promise<number[]> {
  const want = all
    .filter(
      (r) =>
        (filter.node === undefined || r.node_name === filter.node) &&
        (filter.pot === undefined || r.pot_id === filter.pot) &&
        (filter.potType === undefined || r.pot_type === filter.potType) &&
        (filter.eventType === undefined || r.event_type === filter.eventType) &&
        (filter.since === undefined || r.timestamp >= filter.since) &&
        (filter.until === undefined || r.timestamp < filter.until),
    )
    .sort((a, b) => (order === 'asc' ? a.id - b.id : b.id - a.id));
  const seen: number[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await list({ ...filter, order, limit, ...(cursor !== undefined ? { cursor } : {}) });
    const expected = want.slice(seen.length, seen.length + limit);
    const label = `${JSON.stringify(filter)} ${order} after ${seen.length} rows`;
    assert.deepEqual(page.events.map((e) => e.id), expected.map((r) => r.id), label);
    for (const [k, e] of page.events.entries()) {
      const r = expected[k]!;
      assert.deepEqual([e.node, e.pot_id, e.pot_type, e.event_type, Date.parse(e.timestamp)], [r.node_name, r.pot_id, r.pot_type, r.event_type, r.timestamp], label);
    }
    seen.push(...page.events.map((e) => e.id));
    const more = seen.length < want.length;
    assert.equal(page.next_cursor !== null, more, `${label}: next_cursor`);
    if (!more) break;
    cursor = page.next_cursor!;
  }
  return seen;
}

/** Stats of a filter against counts over all rows. */
function checkStats(q: EventQueries, all: readonly EventRow[], filter: EventFilter): void {
  const since = filter.since ?? T0;
  const until = filter.until ?? T0 + 4_000_000;
  const rows = all.filter(
    (r) =>
      (filter.node === undefined || r.node_name === filter.node) &&
      (filter.pot === undefined || r.pot_id === filter.pot) &&
      (filter.potType === undefined || r.pot_type === filter.potType) &&
      (filter.eventType === undefined || r.event_type === filter.eventType) &&
      r.timestamp >= since &&
      r.timestamp < until,
  );
  const count = (key: (r: EventRow) => string | number) => {
    const m: Record<string, number> = {};
    for (const r of rows) m[key(r)] = (m[key(r)] ?? 0) + 1;
    return m;
  };
  const stats = q.stats({ ...filter, since, until, bucket: 'hour' });
  const label = JSON.stringify(filter);
  assert.equal(stats.total, rows.length, label);
  assert.deepEqual(Object.fromEntries(stats.by_node.map((x) => [x.node, x.count])), count((r) => r.node_name), label);
  assert.deepEqual(Object.fromEntries(stats.by_event_type.map((x) => [x.event_type, x.count])), count((r) => r.event_type), label);
  assert.deepEqual(Object.fromEntries(stats.by_pot_type.map((x) => [x.pot_type, x.count])), count((r) => r.pot_type), label);
  const hours = count((r) => new Date(Math.floor(r.timestamp / 3_600_000) * 3_600_000).toISOString());
  assert.deepEqual(Object.fromEntries(stats.buckets.map((x) => [x.start, x.count])), hours, label);
}

async function checkAll(list: (q: EventListQuery) => EventPage | Promise<EventPage>, sqlite: Database.Database): Promise<void> {
  const all = sqlite.prepare('SELECT * FROM events ORDER BY id').all() as EventRow[];
  const q = new EventQueries(sqlite);
  for (const filter of FILTERS) {
    for (const order of ['desc', 'asc'] as const) await walk(list, all, filter, order, 37);
    // Stats too read the side tables for a node or type filter.
    checkStats(q, all, filter);
  }
}

const watermarkOf = (sqlite: Database.Database): number =>
  sqlite.prepare("SELECT value FROM events_side_state WHERE key = 'indexed_through'").pluck().get() as number;
const maxIdOf = (sqlite: Database.Database): number => sqlite.prepare('SELECT max(id) FROM events').pluck().get() as number;

/**
 * The side tables hold exactly the (key, id) of the events up to the watermark. Read in one
 * transaction, one snapshot: the writer thread may commit a catch-up between two statements.
 */
function assertSideExact(sqlite: Database.Database): void {
  sqlite.transaction(() => {
    const wm = watermarkOf(sqlite);
    for (const [table, col] of [['events_by_node', 'node_name'], ['events_by_type', 'event_type']] as const) {
      const side = sqlite.prepare(`SELECT ${col} AS k, id FROM ${table} ORDER BY id`).all();
      const want = sqlite.prepare(`SELECT ${col} AS k, id FROM events WHERE id <= ? ORDER BY id`).all(wm);
      assert.deepEqual(side, want, table);
    }
  })();
}

describe('side index tables: filtered pages equal a brute-force filter', () => {
  let db: TestDb;
  before(() => {
    db = testDb();
  });
  after(() => db.cleanup());

  it('with the watermark behind the newest rows, before and after a catch-up', async () => {
    const sqlite = db.handle.sqlite;
    const rand = seededRandom(13);
    const q = new EventQueries(sqlite);
    insertDirect(sqlite, makeEvents(rand, 2000, 0));
    // No idle timer in this test; a catch-up indexes at most 1500 rows.
    const side = new EventSideIndex(sqlite, { catchUpRows: 1e9, idleMs: 3_600_000, maxCatchUpRows: 1500 });
    try {
      assert.equal(side.pendingRows, 2000);
      await checkAll((x) => q.list(x), sqlite); // all in the tail
      sqlite.transaction(() => side.catchUp())();
      assert.equal(watermarkOf(sqlite), 1500);
      assert.equal(side.pendingRows, 500);
      insertDirect(sqlite, makeEvents(rand, 700, 2000));
      assertSideExact(sqlite);
      await checkAll((x) => q.list(x), sqlite);
      sqlite.transaction(() => side.catchUp())();
      assert.equal(watermarkOf(sqlite), 2700);
      insertDirect(sqlite, makeEvents(rand, 300, 2700));
      assertSideExact(sqlite);
      await checkAll((x) => q.list(x), sqlite);
    } finally {
      side.close();
    }
    // close() indexed the tail.
    assert.equal(watermarkOf(sqlite), 3000);
    assertSideExact(sqlite);
  });

  it('a cursor taken before a catch-up continues without a gap or a repeat', () => {
    const sqlite = db.handle.sqlite;
    const q = new EventQueries(sqlite);
    const side = new EventSideIndex(sqlite, { catchUpRows: 1e9, idleMs: 3_600_000 });
    try {
      insertDirect(sqlite, makeEvents(seededRandom(5), 400, 3000));
      const all = sqlite.prepare("SELECT id FROM events WHERE node_name = 'n-a' ORDER BY id DESC").pluck().all() as number[];
      const first = q.list({ node: 'n-a', limit: 50 });
      sqlite.transaction(() => side.catchUp())();
      const second = q.list({ node: 'n-a', limit: 50, cursor: first.next_cursor! });
      assert.deepEqual([...first.events, ...second.events].map((e) => e.id), all.slice(0, 100));
      const firstAsc = q.list({ eventType: 'file_download', order: 'asc', limit: 20, cursor: first.next_cursor! });
      const want = sqlite.prepare("SELECT id FROM events WHERE event_type = 'file_download' AND id > ? ORDER BY id LIMIT 20").pluck().all(first.events.at(-1)!.id);
      assert.deepEqual(firstAsc.events.map((e) => e.id), want);
    } finally {
      side.close();
    }
  });
});

/** Inserts as the writer does (one transaction, ids consecutive) and tells the side index, as the writer does. */
function appendAs(sqlite: Database.Database, side: EventSideIndex, events: readonly NewEvent[]): void {
  sqlite.transaction(() => {
    insertDirect(sqlite, events);
    const last = maxIdOf(sqlite);
    const ids = events.map((_, i) => last - events.length + 1 + i);
    side.afterAppend(ids, (i) => events[i]!.node, (i) => events[i]!.eventType);
  })();
}

describe('side index catch-up from the appended ids', () => {
  it('inserts the ids the appends held when they are the whole tail, and reads events otherwise', async () => {
    const db = testDb();
    const sqlite = db.handle.sqlite;
    const rand = seededRandom(61);
    const side = new EventSideIndex(sqlite, { catchUpRows: 1e9, idleMs: 3_600_000, maxCatchUpRows: 1000 });
    const catchUp = (): number => sqlite.transaction(() => side.catchUp())();
    let next = 0;
    const events = (n: number): NewEvent[] => makeEvents(rand, n, (next += n) - n);
    try {
      // Appends only, from an empty tail: the held ids are the tail.
      for (let i = 0; i < 5; i++) appendAs(sqlite, side, events(60));
      catchUp();
      assert.equal(side.catchUpsFromAppends, 1);
      assert.equal(watermarkOf(sqlite), 300);
      assertSideExact(sqlite);

      // A row from another connection in the tail: the held ids are not all of it.
      appendAs(sqlite, side, events(40));
      insertDirect(sqlite, events(3));
      appendAs(sqlite, side, events(40));
      catchUp();
      assert.equal(side.catchUpsFromAppends, 1, 'read events');
      assert.equal(watermarkOf(sqlite), 383);
      assertSideExact(sqlite);

      // Caught up to the newest row: appends are held again.
      appendAs(sqlite, side, events(50));
      catchUp();
      assert.equal(side.catchUpsFromAppends, 2);
      assertSideExact(sqlite);

      // A failed append drops what was held (its ids come again with the next batch).
      appendAs(sqlite, side, events(20));
      side.appendFailed();
      appendAs(sqlite, side, events(20));
      catchUp();
      assert.equal(side.catchUpsFromAppends, 2, 'read events after a failed append');
      assertSideExact(sqlite);

      // Retention deleting inside the tail: no side rows for the deleted events.
      appendAs(sqlite, side, events(30));
      appendAs(sqlite, side, events(30));
      const doomed = sqlite.prepare('DELETE FROM events WHERE id > ? AND id % 3 = 0 RETURNING id, node_name, event_type').all(watermarkOf(sqlite)) as DeletedEvent[];
      assert.ok(doomed.length > 0);
      side.forget(doomed);
      catchUp();
      assert.equal(side.catchUpsFromAppends, 2, 'read events after retention in the tail');
      assertSideExact(sqlite);

      // More than one catch-up takes: not held; the first catch-up stops short, the next finishes.
      appendAs(sqlite, side, events(700));
      appendAs(sqlite, side, events(700));
      catchUp();
      assert.equal(side.pendingRows, 400);
      appendAs(sqlite, side, events(10));
      catchUp();
      assert.equal(side.catchUpsFromAppends, 2, 'read events for a long tail');
      assert.equal(watermarkOf(sqlite), maxIdOf(sqlite));
      assertSideExact(sqlite);
      appendAs(sqlite, side, events(10));
      catchUp();
      assert.equal(side.catchUpsFromAppends, 3);
      assertSideExact(sqlite);
      await checkAll((x) => new EventQueries(sqlite).list(x), sqlite);
    } finally {
      side.close();
      db.cleanup();
    }
  });
});

describe('side index tables through the writer thread and retention', () => {
  let db: TestDb;
  let opened: ReturnType<typeof openTestStore>;
  let store: SqliteEventStore;
  before(async () => {
    db = testDb();
    // Catch-ups every ~500 rows; batches of 47 leave the watermark between batches.
    opened = openTestStore(db, { sideIndex: { catchUpRows: 500, idleMs: 3_600_000 } });
    store = opened.store;
    await opened.readPool.started();
  });
  after(async () => {
    await opened.close();
    db.cleanup();
  });

  it('pages equal the brute-force answer while appending, and after retention by age and by rows', async () => {
    const sqlite = db.handle.sqlite;
    const rand = seededRandom(29);
    const events = makeEvents(rand, 3000, 0);
    for (let i = 0; i < events.length; i += 47) await store.append(events.slice(i, i + 47));
    const wm = watermarkOf(sqlite);
    assert.ok(wm > 2000 && wm < maxIdOf(sqlite), `watermark ${wm} behind the newest id ${maxIdOf(sqlite)}`);
    assertSideExact(sqlite);
    await checkAll((x) => store.list(x), sqlite);

    // By age: received_at is not in id order, so the deleted ids are not a prefix.
    const aged = await store.retentionStep({ receivedBefore: T0 + 900_000, maxRows: 0, limit: 600 });
    assert.ok(aged.age > 500, `deleted ${aged.age} by age`);
    const left = sqlite.prepare('SELECT count(*) FROM events WHERE received_at < ?').pluck().get(T0 + 900_000) as number;
    assert.ok(left > 0, 'some old rows were left for the next step');
    assertSideExact(sqlite);
    await checkAll((x) => store.list(x), sqlite);

    await store.retentionStep({ receivedBefore: 0, maxRows: 1800, limit: 10_000 });
    assert.equal(sqlite.prepare('SELECT count(*) FROM events').pluck().get(), 1800);
    assertSideExact(sqlite);
    await checkAll((x) => store.list(x), sqlite);

    // More rows after retention, then close: the tail is indexed at close.
    for (let i = 0; i < 300; i += 47) await store.append(makeEvents(rand, 47, 3000 + i));
    await checkAll((x) => store.list(x), sqlite);
    await store.close();
    assert.equal(watermarkOf(sqlite), maxIdOf(sqlite));
    assertSideExact(sqlite);
  });
});

describe('side index catch-up after appends', () => {
  it('runs after the answer of the append that made it due: a failing catch-up fails no append and is reported', async () => {
    const db = testDb();
    const opened = openTestStore(db, { sideIndex: { catchUpRows: 200, idleMs: 3_600_000 } });
    const store = opened.store;
    const failures: { hook: string; error: string }[] = [];
    store.observe({ hookFailed: (hook, error) => failures.push({ hook, error }), writerError: () => undefined, commitSeconds: () => undefined });
    const sqlite = db.handle.sqlite;
    try {
      sqlite.exec("CREATE TRIGGER side_broken BEFORE INSERT ON events_by_node BEGIN SELECT RAISE(ABORT, 'side index broken'); END");
      // Crosses catchUpRows: in the append's own transaction the trigger would have failed the batch.
      const ids = await store.append(makeEvents(seededRandom(43), 250, 0));
      assert.equal(ids.length, 250);
      assert.equal(maxIdOf(sqlite), 250);
      // The failed catch-up is reported with the next append's answer; that append succeeds too.
      assert.equal((await store.append(makeEvents(seededRandom(47), 1, 250))).length, 1);
      assert.equal(failures.length, 1, 'the failed catch-up was reported');
      assert.equal(failures[0]!.hook, 'events side index');
      assert.match(failures[0]!.error, /side index broken/);
      assert.equal(maxIdOf(sqlite), 251);
      assert.equal(watermarkOf(sqlite) ?? 0, 0);
      sqlite.exec('DROP TRIGGER side_broken');
      // Past the mark again whatever ran in between: the next catch-up indexes up to the newest row.
      await store.append(makeEvents(seededRandom(53), 250, 251));
      await waitFor(() => watermarkOf(sqlite) === 501, 10_000, 'the catch-up once the trigger was gone');
      assertSideExact(sqlite);
    } finally {
      await opened.close();
      db.cleanup();
    }
  });
});

describe('side index catch-up on idle', () => {
  it('indexes the tail once appends pause, a long tail over several transactions', async () => {
    const db = testDb();
    // No catch-up on appends; on idle, at most 100 rows per transaction.
    const opened = openTestStore(db, { sideIndex: { catchUpRows: 1e9, idleMs: 100, maxCatchUpRows: 100 } });
    const store = opened.store;
    try {
      await store.append(makeEvents(seededRandom(41), 450, 0));
      await waitFor(() => watermarkOf(db.handle.sqlite) === 450, 10_000, 'the idle catch-up');
      assertSideExact(db.handle.sqlite);
    } finally {
      await opened.close();
      db.cleanup();
    }
  });
});

describe('migration 0013 on a database with events', () => {
  it('fills the side tables from the existing rows and sets the watermark to the newest id', async () => {
    const dir = tempDir('apiary-side-migration-');
    try {
      // The migrations up to 0012, then events, then openDatabase applies 0013.
      const folder = join(dir.path, 'drizzle');
      cpSync(new URL('../../drizzle', import.meta.url), folder, { recursive: true });
      rmSync(join(folder, '0013_events_side_index.sql'));
      const journalPath = join(folder, 'meta', '_journal.json');
      const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { tag: string }[] };
      journal.entries = journal.entries.filter((e) => e.tag !== '0013_events_side_index');
      writeFileSync(journalPath, JSON.stringify(journal));
      const path = join(dir.path, 'core.db');
      const old = new Sqlite(path);
      migrate(drizzle(old), { migrationsFolder: folder });
      assert.ok(old.prepare("SELECT 1 FROM sqlite_master WHERE name = 'events_node_id_idx'").get(), 'at 0012');
      insertDirect(old, makeEvents(seededRandom(3), 1500, 0));
      old.close();
      const h = openDatabase(path);
      try {
        assert.equal(watermarkOf(h.sqlite), 1500);
        assertSideExact(h.sqlite);
        assert.equal(h.sqlite.prepare("SELECT count(*) FROM sqlite_master WHERE name IN ('events_node_id_idx', 'events_type_id_idx')").pluck().get(), 0);
        await checkAll((x) => new EventQueries(h.sqlite).list(x), h.sqlite);
      } finally {
        h.close();
      }
    } finally {
      dir.cleanup();
    }
  });
});
