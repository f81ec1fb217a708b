// The analytics ingest inside the events writer's transaction: a failure there rolls back the
// analytics of the batch only; the events still commit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAggregateContext, createAttackIngest } from '../../src/analytics/index.js';
import { createEventService } from '../../src/events/index.js';
import { newRegistry, potEvent, silentLogger, testDb } from '../events/helpers.js';

test('a failing analytics ingest loses no event and leaves no partial rollups', async () => {
  const db = testDb();
  try {
    const ingest = createAttackIngest({}, createAggregateContext({ geo: false }));
    let failures = 0;
    const events = createEventService({
      db: db.handle,
      logger: silentLogger(),
      registry: newRegistry(),
      batch: {
        maxDelayMs: 1,
        inTransaction: (sqlite, batch) => {
          try {
            ingest(sqlite, batch);
          } catch (err) {
            failures++;
            throw err;
          }
        },
      },
    });
    // Steps are written last: rollups, attackers and sessions of the batch are already in when it fails.
    db.handle.sqlite.exec("CREATE TRIGGER steps_fail BEFORE INSERT ON attack_session_steps BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    const t = Date.now();
    for (let i = 0; i < 20; i++) {
      events.ingest(potEvent('hb-a', { event_type: 'cowrie.login.failed', data: { eventid: 'cowrie.login.failed', session: 's1', src_ip: '8.8.8.8', username: 'root', password: String(i) } }, t));
    }
    assert.equal(events.flush(), true, 'the batch committed');
    assert.ok(failures > 0, 'the ingest failed');
    const count = (table: string) => db.handle.sqlite.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
    assert.equal(count('events'), 20);
    assert.equal(count('attack_rollup_hour'), 0);
    assert.equal(count('attackers'), 0);
    assert.equal(count('attack_sessions'), 0);

    db.handle.sqlite.exec('DROP TRIGGER steps_fail');
    events.ingest(potEvent('hb-a', { event_type: 'cowrie.login.failed', data: { eventid: 'cowrie.login.failed', session: 's1', src_ip: '8.8.8.8', username: 'root', password: 'x' } }, t));
    assert.equal(events.flush(), true);
    assert.equal(count('attackers'), 1, 'later batches are analysed again');
    assert.equal(count('attack_session_steps'), 1);
    await events.close();
  } finally {
    db.cleanup();
  }
});
