// The analytics ingest as the events writer's batch hook (in the writer thread, inside each batch's
// transaction): a failure there rolls back the analytics of the batch only; the events still commit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyticsWriterHook } from '../../src/analytics/index.js';
import { ReadPool } from '../../src/db/index.js';
import { createEventService, eventQueryModules, SqliteEventStore } from '../../src/events/index.js';
import { metricValue, newRegistry, potEvent, silentLogger, testDb } from '../events/helpers.js';
import { until } from '../helpers/core.js';

test('a failing analytics ingest loses no event and leaves no partial rollups', async () => {
  const db = testDb();
  const readPool = new ReadPool({ dbPath: db.path, modules: eventQueryModules(), size: 1 });
  const store = new SqliteEventStore({ dbPath: db.path, readPool, batchHooks: [{ url: analyticsWriterHook(), options: { geo: false, flushMs: 0 } }] });
  const registry = newRegistry();
  const events = createEventService({ store, logger: silentLogger(), registry, batch: { maxDelayMs: 1 } });
  try {
    // Steps are written last: rollups, attackers and sessions of the batch are already in when it fails.
    db.handle.sqlite.exec("CREATE TRIGGER steps_fail BEFORE INSERT ON attack_session_steps BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    const t = Date.now();
    for (let i = 0; i < 20; i++) {
      events.ingest(potEvent('hb-a', { event_type: 'cowrie.login.failed', data: { eventid: 'cowrie.login.failed', session: 's1', src_ip: '8.8.8.8', username: 'root', password: String(i) } }, t));
    }
    assert.equal(await events.flush(), true, 'the batch committed');
    assert.ok((await metricValue(registry, 'apiary_event_hook_failures_total')) > 0, 'the ingest failed');
    const count = (table: string) => db.handle.sqlite.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
    assert.equal(count('events'), 20);
    assert.equal(count('attack_rollup_hour'), 0);
    assert.equal(count('attackers'), 0);
    assert.equal(count('attack_sessions'), 0);

    db.handle.sqlite.exec('DROP TRIGGER steps_fail');
    events.ingest(potEvent('hb-a', { event_type: 'cowrie.login.failed', data: { eventid: 'cowrie.login.failed', session: 's1', src_ip: '8.8.8.8', username: 'root', password: 'x' } }, t));
    assert.equal(await events.flush(), true);
    assert.equal(count('attackers'), 1, 'later batches are analysed again');
    assert.equal(count('attack_session_steps'), 1);
  } finally {
    await events.close();
    await store.close();
    await readPool.close();
    db.cleanup();
  }
});

test('buffered ingest: written when the writer goes idle; events committed after the last write are replayed at start', async () => {
  const db = testDb();
  const count = (sql: string) => db.handle.sqlite.prepare(sql).pluck().get() as number;
  const login = (password: string, t: number) =>
    potEvent('hb-a', { event_type: 'cowrie.login.failed', data: { eventid: 'cowrie.login.failed', session: 's1', src_ip: '8.8.8.8', username: 'root', password } }, t);
  const start = async (flushMs: number) => {
    const readPool = new ReadPool({ dbPath: db.path, modules: eventQueryModules(), size: 1 });
    const store = new SqliteEventStore({ dbPath: db.path, readPool, batchHooks: [{ url: analyticsWriterHook(), options: { geo: false, flushMs } }] });
    const events = createEventService({ store, logger: silentLogger(), registry: newRegistry(), batch: { maxDelayMs: 1 } });
    await events.flush();
    return { events, stop: async () => (await events.close(), await store.close(), await readPool.close()) };
  };
  try {
    // A long interval: only the writer's idle flush can write these.
    const a = await start(3_600_000);
    const t = Date.now();
    for (let i = 0; i < 10; i++) a.events.ingest(login(String(i), t));
    assert.equal(await a.events.flush(), true);
    await until(() => count('SELECT coalesce(sum(events), 0) FROM attackers') === 10, 'idle flush wrote the buffered batch');
    assert.equal(count("SELECT value FROM attack_meta WHERE key = 'ingested_until_event_id'"), count('SELECT max(id) FROM events'));
    await a.stop();

    // Events the writer committed whose buffered analytics were lost (a crash): the next start replays them.
    const insert = db.handle.sqlite.prepare(
      "INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES ('hb-a', 'pot-01', 'cowrie', 'cowrie.login.failed', ?, ?, ?)",
    );
    for (let i = 0; i < 3; i++) insert.run(t, JSON.stringify({ eventid: 'cowrie.login.failed', session: 's2', src_ip: '8.8.8.8', username: 'admin', password: 'x' }), t);
    const b = await start(0);
    // The writer replays before it takes batches; the store reports ready only then.
    await until(() => count('SELECT events FROM attackers') === 13, 'the 3 events past the watermark replayed');
    assert.equal(count("SELECT count(*) FROM attack_sessions WHERE session = 's2'"), 1);
    b.events.ingest(login('y', t));
    assert.equal(await b.events.flush(), true);
    assert.equal(count('SELECT events FROM attackers'), 14);
    await b.stop();
  } finally {
    db.cleanup();
  }
});
