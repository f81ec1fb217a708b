// The events table keeps few secondary indexes (each one costs the writer on every insert); these
// cases hold the reads to plans that stay fast on a large table. A filtered page of GET /events
// must walk an index in id order and stop after the page (no "USE TEMP B-TREE FOR ORDER BY": that
// sorted every matching row, 1.5 s for a busy node at 4 M rows), and stats must not walk a
// column's index just to save the GROUP BY sort (a table lookup per row of the range).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3';
import { EventQueries } from '../../src/events/queries.js';
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
  });
  after(() => db.cleanup());

  const plan = (sqlite: Database.Database, sql: string, params: unknown[]) =>
    (sqlite.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join(' | ');

  const filtered: [string, Record<string, unknown>, string][] = [
    ['node', { node: 'node-3' }, 'events_node_id_idx'],
    ['node and pot', { node: 'node-3', pot: 'pot-1' }, 'events_node_id_idx'],
    ['event type', { eventType: 'cowrie.command.input' }, 'events_type_id_idx'],
    ['node and time range', { node: 'node-3', since: now - 3_600_000, until: now }, 'events_node_id_idx'],
    ['event type and time range', { eventType: 'cowrie.command.input', since: now - 3_600_000 }, 'events_type_id_idx'],
  ];
  for (const [name, filter, index] of filtered) {
    it(`a page filtered by ${name} reads ${index} in id order, with no sort`, () => {
      const { q, sql } = recordingQueries(db.handle.sqlite);
      for (const order of ['desc', 'asc'] as const) {
        sql.length = 0;
        const page = q.list({ ...filter, order, limit: 50 });
        assert.equal(page.events.length, 50);
        const ids = page.events.map((e) => e.id);
        assert.deepEqual(ids, [...ids].sort((a, b) => (order === 'desc' ? b - a : a - b)));
        const listSql = sql.find((s) => s.startsWith('SELECT id,'))!;
        const detail = plan(db.handle.sqlite, listSql, [...Object.values(filter), 51]);
        assert.match(detail, new RegExp(`USING INDEX ${index}\\b`), detail);
        assert.doesNotMatch(detail, /TEMP B-TREE/, detail);
      }
    });
  }

  it('the next page of a filtered listing bounds the id inside the index', () => {
    const { q, sql } = recordingQueries(db.handle.sqlite);
    const first = q.list({ node: 'node-3', limit: 50 });
    sql.length = 0;
    const next = q.list({ node: 'node-3', limit: 50, cursor: first.next_cursor! });
    assert.equal(next.events[0]!.id < first.events.at(-1)!.id, true);
    const listSql = sql.find((s) => s.startsWith('SELECT id,'))!;
    const detail = plan(db.handle.sqlite, listSql, ['node-3', first.events.at(-1)!.id, 51]);
    assert.match(detail, /USING INDEX events_node_id_idx \(node_name=\? AND id<\?\)/, detail);
    assert.doesNotMatch(detail, /TEMP B-TREE/, detail);
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
