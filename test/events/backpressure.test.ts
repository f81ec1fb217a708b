// Saturation is shed by back-pressure: when commits cannot keep up, the core stops reading node
// sockets (the nodes' own buffers fill) instead of queueing without bound or dropping events.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { ReadPool } from '../../src/db/index.js';
import { createEventService, eventQueryModules, SqliteEventStore } from '../../src/events/index.js';
import { createNodeGateway } from '../../src/nodes/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { metricValue, newRegistry, silentLogger, testDb, waitFor, type TestDb } from './helpers.js';

describe('event back-pressure', () => {
  let db: TestDb;
  before(() => {
    db = testDb();
  });
  after(() => db.cleanup());

  it('pauses reading node sockets past the high-water mark and loses nothing', async () => {
    const registry = newRegistry();
    const logger = silentLogger();
    const readPool = new ReadPool({ dbPath: db.path, modules: eventQueryModules(), size: 1 });
    // The writer waits (up to a minute) for a lock another connection holds: commits stall.
    const store = new SqliteEventStore({ dbPath: db.path, readPool, busyTimeoutMs: 60_000 });
    const gateway = await createNodeGateway({ db: db.handle, logger, registry, enrollment: 'open' });
    const events = createEventService({ store, logger, registry, batch: { maxSize: 100, maxDelayMs: 0, highWaterMark: 500 } });
    events.attach(gateway);
    const flow: boolean[] = [];
    events.onFlow((saturated) => {
      flow.push(saturated);
      gateway.setInputPaused(saturated);
    });
    const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });
    const node = new SimulatedNode({ name: 'bp-node', host: '127.0.0.1', port: tcp.port, pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }] });
    const blocker = db.reopen();
    try {
      node.start();
      await once(node, 'registered');
      // The gateway's own state writes (last_seen...) use the main connection: let them fail fast
      // instead of blocking the loop on the lock for busy_timeout.
      db.handle.sqlite.pragma('busy_timeout = 0');
      blocker.sqlite.exec('BEGIN IMMEDIATE');
      const N = 5000;
      for (let i = 0; i < N; i++) node.sendAttack('potevent');
      await waitFor(() => gateway.inputPaused, 10_000, `input paused (${events.pendingCount} pending)`);
      assert.equal(await metricValue(registry, 'apiary_node_input_paused'), 1);
      // While paused the core's queue stays near the mark: the rest waits in the sockets.
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(events.pendingCount < 500 + 2000, `queue bounded (${events.pendingCount})`);
      blocker.sqlite.exec('COMMIT');
      db.handle.sqlite.pragma('busy_timeout = 5000');
      await waitFor(
        () => (db.handle.sqlite.prepare("SELECT count(*) AS c FROM events WHERE node_name = 'bp-node'").get() as { c: number }).c === N,
        30_000,
        'every event stored',
      );
      assert.equal(gateway.inputPaused, false);
      assert.deepEqual(flow.slice(0, 2), [true, false]);
      assert.equal(await metricValue(registry, 'apiary_events_dropped_total'), 0);
      assert.ok((await metricValue(registry, 'apiary_node_input_pauses_total')) >= 1);
    } finally {
      if (blocker.sqlite.inTransaction) blocker.sqlite.exec('ROLLBACK');
      blocker.close();
      await node.stop();
      await gateway.close();
      await events.close();
      await store.close();
      await readPool.close();
    }
  });
});
