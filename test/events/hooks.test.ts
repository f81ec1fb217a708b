// The batch hook seam of the event store (src/events/store.ts): other domains' ingest code runs in
// the writer thread, inside the transaction of each batch.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { moduleBeside, ReadPool } from '../../src/db/index.js';
import { createEventService, eventQueryModules, SqliteEventStore } from '../../src/events/index.js';
import { metricValue, newRegistry, potEvent, silentLogger, testDb, type TestDb } from './helpers.js';

describe('event store batch hooks', () => {
  let db: TestDb;
  before(() => {
    db = testDb();
  });
  after(() => db.cleanup());

  it('run in the batch transaction; a throwing hook loses its writes, never the events', async () => {
    const registry = newRegistry();
    const readPool = new ReadPool({ dbPath: db.path, modules: eventQueryModules(), size: 1 });
    const store = new SqliteEventStore({ dbPath: db.path, readPool, batchHooks: [moduleBeside(import.meta.url, 'fixtures/count-hook')] });
    const svc = createEventService({ store, logger: silentLogger(), registry, batch: { maxSize: 50 } });
    for (let i = 0; i < 120; i++) svc.ingest(potEvent(i % 2 ? 'hook-a' : 'hook-b', { data: { i } }));
    assert.equal(await svc.flush(), true);
    const counts = () => db.handle.sqlite.prepare('SELECT node, n, max_id FROM test_hook_counts ORDER BY node').all() as { node: string; n: number; max_id: number }[];
    const maxId = (node: string) => (db.handle.sqlite.prepare('SELECT max(id) AS m FROM events WHERE node_name = ?').get(node) as { m: number }).m;
    assert.deepEqual(counts(), [
      { node: 'hook-a', n: 60, max_id: maxId('hook-a') },
      { node: 'hook-b', n: 60, max_id: maxId('hook-b') },
    ]);

    // One batch whose hook throws half-way: the events commit, the hook's counts do not move.
    for (let i = 0; i < 10; i++) svc.ingest(potEvent('hook-a', { data: { i, explode: i === 5 } }));
    assert.equal(await svc.flush(), true);
    assert.equal((db.handle.sqlite.prepare("SELECT count(*) AS c FROM events WHERE node_name = 'hook-a'").get() as { c: number }).c, 70);
    assert.equal(counts()[0]!.n, 60);
    assert.equal(await metricValue(registry, 'apiary_event_hook_failures_total'), 1);
    await svc.close();
    await store.close();
    await readPool.close();
  });
});
