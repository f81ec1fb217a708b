// Periodic work asks runWhen (the leader lease in cluster mode) at each tick: skipped while it says
// false, run again once it says true; a sweep called directly always runs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ChunkedSweep } from '../../src/db/index.js';
import { createEventService } from '../../src/events/index.js';
import { potEvent, silentLogger, testDb, waitFor } from '../events/helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('periodic work gated by the leader lease', () => {
  it('ChunkedSweep (audit and analytics retention) ticks only while runWhen is true', async () => {
    let leading = false;
    let chunks = 0;
    const sweep = new ChunkedSweep({
      maxAgeDays: 1,
      intervalMs: 20,
      runWhen: () => leading,
      deleteChunk: () => {
        chunks++;
        return { deleted: 0, done: true };
      },
    });
    sweep.start();
    try {
      await sleep(150);
      assert.equal(chunks, 0, 'a follower does not sweep');
      await sweep.sweep();
      assert.equal(chunks, 1, 'a direct call runs');
      leading = true;
      await waitFor(() => chunks >= 3, 5000, 'sweeps as leader');
      leading = false;
      await sleep(60);
      const stopped = chunks;
      await sleep(150);
      assert.equal(chunks, stopped, 'stops when the lease is lost');
    } finally {
      await sweep.stop();
    }
  });

  it('event retention (a real store) deletes only while runWhen is true', async () => {
    let leading = false;
    const db = testDb();
    const events = createEventService({ db: db.handle, logger: silentLogger(), registry: new Registry(), batch: { maxDelayMs: 2 }, retention: { maxAgeDays: 1, intervalMs: 20, runWhen: () => leading } });
    try {
      const old = Date.now() - 3 * 86_400_000;
      for (let i = 0; i < 5; i++) assert.ok(events.ingest(potEvent('edge', {}, old + i)));
      assert.ok(await events.flush());
      const count = () => (db.handle.sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
      await sleep(200);
      assert.equal(count(), 5, 'a follower keeps them');
      leading = true;
      await waitFor(() => count() === 0, 10_000, 'the leader to delete them');
    } finally {
      await events.close();
      db.cleanup();
    }
  });
});
