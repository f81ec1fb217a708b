// The events writer meets other connections' write locks (the WAL checkpointer's RESTART step twice
// a second, a CLI command, another process). SQLite's own busy handler sleeps 1, 2, 5, 10, 15 ms
// between tries, so a lock held 9 ms cost a batch 18; the writer retries every half millisecond,
// and a batch commits within about a millisecond of the lock's release.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SqliteEventStore } from '../../src/events/index.js';
import type { NewEvent } from '../../src/events/store.js';
import { openTestStore, testDb, type TestDb } from './helpers.js';

function event(seq: number): NewEvent {
  return { node: 'node-a', potId: 'cowrie-01', potType: 'cowrie', eventType: 'cowrie.login.failed', timestamp: seq, receivedAt: seq, dataJson: `{"seq":${seq}}`, fromStatus: false };
}

describe('events writer and other connections\' write locks', () => {
  let db: TestDb;
  let opened: ReturnType<typeof openTestStore>;
  let store: SqliteEventStore;
  before(() => {
    db = testDb();
    opened = openTestStore(db, { busyTimeoutMs: 2000 });
    store = opened.store;
  });
  after(async () => {
    await opened.close();
    db.cleanup();
  });

  it('commits soon after a 9 ms lock is released (best of 5), and still waits out a lock held longer than one step', async () => {
    await store.append([event(0)]); // the thread is up and its statements are prepared
    const other = db.handle.sqlite;
    const delays: number[] = [];
    for (let trial = 1; trial <= 5; trial++) {
      other.prepare('BEGIN IMMEDIATE').run();
      const appended = store.append([event(trial)]);
      await new Promise((r) => setTimeout(r, 9));
      other.prepare('COMMIT').run();
      const releasedAt = performance.now();
      await appended;
      delays.push(performance.now() - releasedAt);
    }
    const best = Math.min(...delays);
    // SQLite's handler tries at 8 ms, then 18: about 8 ms after the release.
    assert.ok(best < 3, `best delay after release ${best.toFixed(2)} ms (all: ${delays.map((d) => d.toFixed(1)).join(', ')})`);
    const rows = other.prepare('SELECT count(*) AS n FROM events').get() as { n: number };
    assert.equal(rows.n, 6);
  });

  it('fails a batch (kept by the caller for a retry) once the busy timeout is spent', async () => {
    const quickStore = openTestStore(db, { busyTimeoutMs: 50 });
    const quick = quickStore.store;
    const other = db.handle.sqlite;
    try {
      await quick.append([event(100)]);
      other.prepare('BEGIN IMMEDIATE').run();
      const started = performance.now();
      await assert.rejects(quick.append([event(101)]), /locked|busy/i);
      const waited = performance.now() - started;
      assert.ok(waited >= 45, `gave up after ${waited.toFixed(1)} ms, before its 50 ms busy timeout`);
      other.prepare('ROLLBACK').run();
      await quick.append([event(102)]);
    } finally {
      if (other.inTransaction) other.prepare('ROLLBACK').run();
      await quickStore.close();
    }
  });
});
