// The events table keeps few secondary indexes (each one costs the writer on every insert); these
// cases hold the reads to plans that stay fast on a large table. A page filtered by node or event
// type must walk its side table (events_by_node / events_by_type, src/events/side-index.ts) in id
// order, merged with the unindexed tail scanned by id, and stop after the page (no "USE TEMP B-TREE
// FOR ORDER BY": that sorted every matching row, 1.5 s for a busy node at 4 M rows), and stats must
// not walk a column's index just to save the GROUP BY sort (a table lookup per row of the range).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3';
import { EventQueries } from '../../src/events/queries.js';
import { EventSideIndex } from '../../src/events/side-index.js';
import { testDb, type TestDb } from './helpers.js';

/** EventQueries over a connection that records the SQL it prepares. */
function recordingQueries(sqlite: Database.Database): { q: EventQueries; sql: string[] } {
  const sql: string[] = [];
  const spy = new Proxy(sqlite, {
    get(target, prop) {
      if (prop === 'prepare') {
        return (text: string) => {
          sql.push(text);
          return target.prepare(text);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { q: new EventQueries(spy), sql };
}

describe('events query plans', () => {
  let db: TestDb;
  const now = Date.now();
  before(() => {
    db = testDb();
    const insert = db.handle.sqlite.prepare(
      'INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const types = ['cowrie.login.failed', 'cowrie.session.connect', 'cowrie.command.input', 'cowrie.session.closed'];
    db.handle.sqlite.transaction(() => {
      for (let i = 0; i < 20_000; i++) {
        const ts = now - (20_000 - i) * 1000;
        insert.run(`node-${i % 20}`, `pot-${i % 3}`, 'cowrie', types[i % types.length], ts, '{}', ts);
      }
    })();
    // The writer's catch-up; the last 500 rows stay in the tail, as between two catch-ups.
    const side = new EventSideIndex(db.handle.sqlite, { idleMs: 3_600_000, maxCatchUpRows: 19_500 });
    db.handle.sqlite.transaction(() => side.catchUp())();
    side.close = () => undefined;
  });
  after(() => db.cleanup());

  const plan = (sqlite: Database.Database, sql: string, params: unknown[]) =>
    (sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join(' | ');

  const filtered: [string, Record<string, unknown>, string][] = [
    ['node', { node: 'node-3' }, 'node_name'],
    ['node and pot', { node: 'node-3', pot: 'pot-1' }, 'node_name'],
    ['event type', { eventType: 'cowrie.command.input' }, 'event_type'],
    ['node and time range', { node: 'node-3', since: now - 3_600_000, until: now }, 'node_name'],
    ['event type and time range', { eventType: 'cowrie.command.input', since: now - 3_600_000 }, 'event_type'],
    ['node and event type', { node: 'node-2', eventType: 'cowrie.command.input' }, 'node_name'],
  ];
  /** The plan's lines, each "depth detail" so the arms of the merge can be told apart. */
  const planTree = (sqlite: Database.Database, sql: string, params: unknown[]): string[] => {
    const rows = sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { id: number; parent: number; detail: string }[];
    const depth = new Map<number, number>([[0, -1]]);
    return rows.map((r) => {
      const d = (depth.get(r.parent) ?? 0) + 1;
      depth.set(r.id, d);
      return `${d} ${r.detail}`;
    });
  };
  /**
   * A side-table page's plan: the tail and the side table merged in id order, each arm a range
   * search (tail by rowid, side table by its key) and no sort anywhere.
   */
  const assertMergedPlan = (lines: string[], table: string, key: string, bound: RegExp): void => {
    const text = lines.join(' | ');
    assert.match(lines[0]!, /^0 MERGE \(UNION ALL\)$/, text);
    assert.ok(lines.some((l) => /^2 SEARCH events USING INTEGER PRIMARY KEY \(rowid>\?/.test(l)), text);
    assert.ok(lines.some((l) => new RegExp(`^2 SEARCH s USING PRIMARY KEY \\(${key}=\\? AND ${bound.source}\\)$`).test(l)), `${table}: ${text}`);
    assert.ok(lines.some((l) => /^2 SEARCH e USING INTEGER PRIMARY KEY \(rowid=\?\)$/.test(l)), text);
    assert.doesNotMatch(text, /TEMP B-TREE/, text);
    assert.doesNotMatch(text, /SCAN (events|s|e)\b/, text);
  };
  const tableOf = (key: string) => (key === 'node_name' ? 'events_by_node' : 'events_by_type');
  for (const [name, filter, key] of filtered) {
    it(`a page filtered by ${name} walks ${tableOf(key)} in id order, merged with the tail, with no sort`, () => {
      const { q, sql } = recordingQueries(db.handle.sqlite);
      for (const order of ['desc', 'asc'] as const) {
        sql.length = 0;
        const page = q.list({ ...filter, order, limit: 50 });
        assert.equal(page.events.length, 50);
        const ids = page.events.map((e) => e.id);
        assert.deepEqual(ids, [...ids].sort((a, b) => (order === 'desc' ? b - a : a - b)));
        const listSql = sql.find((s) => s.startsWith('SELECT id,'))!;
        assert.match(listSql, new RegExp(`FROM ${tableOf(key)} s`));
        const params = [...Object.values(filter), key === 'node_name' ? filter.node : filter.eventType, ...Object.values(filter).slice(1), 51];
        assertMergedPlan(planTree(db.handle.sqlite, listSql, params), tableOf(key), key, /id<\?/);
      }
    });
  }

  it('a plan that sorts every match fails these checks', () => {
    // The same union, ordered by an expression the side table does not deliver: SQLite sorts.
    const sorting =
      "SELECT id FROM events WHERE id > 19500 AND node_name = ? UNION ALL SELECT e.id FROM events_by_node s CROSS JOIN events e ON e.id = s.id WHERE s.node_name = ? AND s.id <= 19500 ORDER BY 1 DESC LIMIT ?";
    assert.throws(() => assertMergedPlan(planTree(db.handle.sqlite, sorting, ['node-3', 'node-3', 51]), 'events_by_node', 'node_name', /id<\?/), /TEMP B-TREE|SEARCH s/);
  });

  it('the next page of a filtered listing bounds the id inside the side table', () => {
    const { q, sql } = recordingQueries(db.handle.sqlite);
    for (const order of ['desc', 'asc'] as const) {
      const first = q.list({ node: 'node-3', limit: 50, order });
      sql.length = 0;
      const next = q.list({ node: 'node-3', limit: 50, order, cursor: first.next_cursor! });
      const last = first.events.at(-1)!.id;
      assert.equal(order === 'desc' ? next.events[0]!.id < last : next.events[0]!.id > last, true);
      const listSql = sql.find((s) => s.startsWith('SELECT id,'))!;
      const lines = planTree(db.handle.sqlite, listSql, [last, 'node-3', 'node-3', last, 51]);
      assertMergedPlan(lines, 'events_by_node', 'node_name', order === 'desc' ? /id<\?/ : /id>\? AND id<\?/);
    }
  });

  it('a page filtered by node equals the newest rows of that node', () => {
    const page = new EventQueries(db.handle.sqlite).list({ node: 'node-7', pot: 'pot-2', limit: 10 });
    const want = db.handle.sqlite
      .prepare("SELECT id FROM events WHERE node_name = 'node-7' AND pot_id = 'pot-2' ORDER BY id DESC LIMIT 10")
      .pluck()
      .all();
    assert.deepEqual(page.events.map((e) => e.id), want);
  });

  it('stats group by scanning the range, not by walking a column index row by row', () => {
    const { q, sql } = recordingQueries(db.handle.sqlite);
    const stats = q.stats({ since: now - 3_600_000, until: now + 1 });
    assert.equal(stats.total, 3600);
    assert.equal(stats.by_node.reduce((a, r) => a + r.count, 0), 3600);
    for (const s of sql.filter((t) => t.includes('GROUP BY'))) {
      const detail = plan(db.handle.sqlite, s, [now - 3_600_000, now + 1]);
      assert.doesNotMatch(detail, /SCAN events USING INDEX/, `${s}: ${detail}`);
    }
  });
});
