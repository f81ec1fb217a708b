// The PostgreSQL event writer against a real server: batches land in their day partitions with ids
// in batch order, concurrent appends commit in call order, a dropped partition is recreated for a
// late event, and retention drops whole days.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openPgDatabase, type PgDatabaseHandle } from '../../src/db/index.js';
import { PgEventWriter } from '../../src/events/index.js';
import type { NewEvent } from '../../src/events/store.js';
import { createTestPgDatabase, pgSkipReason, type TestPgDatabase } from '../helpers/pg.js';

const ev = (i: number, receivedAt: number): NewEvent => ({
  node: `node-${i % 3}`,
  potId: 'cowrie-1',
  potType: 'cowrie',
  eventType: 'cowrie.login.failed',
  timestamp: receivedAt - 5,
  receivedAt,
  dataJson: JSON.stringify({ i, src_ip: '198.51.100.7', password: `p'w"${i}` }),
  fromStatus: false,
});

describe('PgEventWriter', { skip: await pgSkipReason() }, () => {
  let testDb: TestPgDatabase;
  let database: PgDatabaseHandle;
  let writer: PgEventWriter;
  before(async () => {
    testDb = await createTestPgDatabase();
    database = await openPgDatabase(testDb.url);
    writer = new PgEventWriter(database, { aheadDays: 0 });
  });
  after(async () => {
    await writer?.close();
    await database?.close();
    await testDb?.drop();
  });

  it('a batch across midnight lands in two day partitions, every column stored, ids in batch order', async () => {
    const midnight = Date.UTC(2026, 4, 2);
    const batch = [ev(0, midnight - 1), ev(1, midnight), ev(2, midnight + 1), ev(3, midnight - 2)];
    const ids = await writer.append(batch);
    assert.equal(ids.length, 4);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, 'ascending in batch order');
    const { rows } = await database.pool.query('SELECT id, node_name, pot_id, pot_type, event_type, timestamp, data, received_at, tableoid::regclass::text AS part FROM events ORDER BY id');
    assert.deepEqual(
      rows,
      batch.map((e, i) => ({
        id: ids[i],
        node_name: e.node,
        pot_id: e.potId,
        pot_type: e.potType,
        event_type: e.eventType,
        timestamp: e.timestamp,
        data: e.dataJson,
        received_at: e.receivedAt,
        part: e.receivedAt < midnight ? 'events_p20260501' : 'events_p20260502',
      })),
    );
    assert.deepEqual(await writer.append([]), []);
  });

  it('concurrent appends commit in call order; a failed batch stores nothing and does not stop the next', async () => {
    const t = Date.UTC(2026, 4, 3, 12);
    const bad = { ...ev(99, t), node: null as unknown as string };
    const results = await Promise.allSettled([writer.append([ev(10, t), ev(11, t)]), writer.append([ev(12, t), bad]), writer.append([ev(13, t)])]);
    assert.equal(results[0].status, 'fulfilled');
    assert.equal(results[1].status, 'rejected');
    assert.equal(results[2].status, 'fulfilled');
    const { rows } = await database.pool.query<{ i: number }>("SELECT (data::jsonb->>'i')::int AS i FROM events WHERE received_at >= $1 ORDER BY id", [Date.UTC(2026, 4, 3)]);
    assert.deepEqual(rows.map((r) => r.i), [10, 11, 13]);
  });

  it('retention drops whole old days; a late event for a dropped day gets its partition back', async () => {
    const dropped = await writer.dropBefore(Date.UTC(2026, 4, 2, 6));
    assert.equal(dropped, 1, 'only 2026-05-01 is wholly before the cutoff');
    assert.equal((await database.pool.query('SELECT 1 FROM events WHERE received_at < $1', [Date.UTC(2026, 4, 2)])).rowCount, 0);
    // Another instance's retention drops a day this writer believes exists.
    await database.pool.query('DROP TABLE events_p20260503');
    const ids = await writer.append([ev(20, Date.UTC(2026, 4, 3, 1))]);
    assert.equal(ids.length, 1);
    assert.equal((await database.pool.query("SELECT 1 FROM events WHERE tableoid = 'events_p20260503'::regclass")).rowCount, 1);
  });
});
