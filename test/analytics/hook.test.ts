// The analytics ingest as the events writer's batch hook (in the writer thread, inside each batch's
// transaction): a failure there rolls back the analytics of the batch only; the events still commit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyticsWriterHook } from '../../src/analytics/index.js';
import { ReadPool } from '../../src/db/index.js';
import { createEventService, eventQueryModules, SqliteEventStore } from '../../src/events/index.js';
import { metricValue, newRegistry, potEvent, silentLogger, testDb } from '../events/helpers.js';

test('a failing analytics ingest loses no event and leaves no partial rollups', async () => {
  const db = testDb();
  const readPool = new ReadPool({ dbPath: db.path, modules: eventQueryModules(), size: 1 });
  const store = new SqliteEventStore({ dbPath: db.path, readPool, batchHooks: [{ url: analyticsWriterHook(), options: { geo: false } }] });
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
