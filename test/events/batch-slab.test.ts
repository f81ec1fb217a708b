// Batches reach the writer thread in slabs of shared memory (batch-slab.ts) that are reused once the
// writer has answered. What must hold: every event's data is stored exactly (any script, any size),
// a slab is never written while the writer may still read it (batches in flight together), slabs
// grow with the batches, and a restarted writer thread is told about the slabs again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { SlabPool } from '../../src/events/batch-slab.js';
import type { SqliteEventStore } from '../../src/events/index.js';
import type { NewEvent } from '../../src/events/store.js';
import { openTestStore, testDb, waitFor, type TestDb } from './helpers.js';

const TEXTS = ['plain ascii', 'ünïcödé', '漢字 🐝 astral', 'quote " backslash \\', 'lone \ud800 surrogate', ''];

function event(seq: number, size = 1): NewEvent {
  const text = TEXTS[seq % TEXTS.length]!.repeat(size);
  return {
    node: `node-${seq % 3}`,
    potId: seq % 2 ? 'cowrie-01' : 'pot-ü',
    // The real node's status lines carry no pot type: an empty name is stored as ''.
    potType: seq % 4 === 0 ? '' : seq % 4 === 1 ? 'cowrie' : 'pot-🐝',
    eventType: `cowrie.type.${seq % 5}`,
    timestamp: 1_764_000_000_000 + seq,
    receivedAt: 1_764_000_000_500 + seq,
    dataJson: JSON.stringify({ seq, text }),
    fromStatus: seq % 7 === 0,
  };
}

/** What SQLite keeps of a JS string: lone surrogates become U+FFFD, as with any UTF-8 encoding. */
function asStored(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

describe('event batches in shared slabs', () => {
  it('SlabPool reuses a slab that fits, grows for bigger batches, and reports the slabs it drops once', () => {
    const pool = new SlabPool();
    const a = pool.take(10, 100);
    pool.give(a);
    assert.equal(pool.take(100, 1000), a, 'a free slab that fits is reused');
    const b = pool.take(100, 1000); // a is out: a second slab
    assert.notEqual(b.shared.id, a.shared.id);
    pool.give(a);
    pool.give(b);
    const big = pool.take(5000, 3 * 1024 * 1024);
    assert.ok(big.shared.capacity >= 5000 && big.bytes.length >= 3 * 1024 * 1024);
    assert.ok(![a.shared.id, b.shared.id].includes(big.shared.id));
    pool.give(big); // three free: the smallest goes
    const retired = pool.takeRetired();
    assert.equal(retired.length, 1);
    assert.deepEqual(pool.takeRetired(), [], 'reported once');
    const huge = pool.take(1, 17 * 1024 * 1024);
    pool.give(huge);
    assert.deepEqual(pool.takeRetired(), [huge.shared.id], 'a slab past the pooled size is used once');
  });

  let db: TestDb;
  let opened: ReturnType<typeof openTestStore>;
  let store: SqliteEventStore;
  before(() => {
    db = testDb();
    opened = openTestStore(db);
    store = opened.store;
  });
  after(async () => {
    await opened.close();
    db.cleanup();
  });

  function storedRows(): { id: number; node_name: string; pot_id: string; pot_type: string; event_type: string; timestamp: number; received_at: number; data: string; t: string }[] {
    return db.handle.sqlite
      .prepare(
        "SELECT id, node_name, pot_id, pot_type, event_type, timestamp, received_at, data, typeof(data) || typeof(node_name) || typeof(pot_id) || typeof(pot_type) || typeof(event_type) AS t FROM events ORDER BY id",
      )
      .all() as never;
  }

  it('stores every field exactly, with batches in flight together and growing past a slab', async () => {
    const sent: NewEvent[] = [];
    const batches: NewEvent[][] = [];
    // Sizes that outgrow the first slab (2048 events, 1 MiB), several appends in flight at once.
    for (const [n, size] of [[10, 1], [300, 20], [3000, 1], [50, 4000], [700, 30], [5, 1]] as const) {
      const batch = Array.from({ length: n }, (_, i) => event(sent.length + i, size));
      sent.push(...batch);
      batches.push(batch);
    }
    const results = await Promise.all(batches.map((b) => store.append(b)));
    const ids = results.flatMap((r) => Array.from(r));
    assert.equal(new Set(ids).size, sent.length);
    const rows = storedRows();
    assert.equal(rows.length, sent.length);
    const byId = new Map(rows.map((r) => [r.id, r]));
    sent.forEach((e, i) => {
      const row = byId.get(ids[i]!)!;
      assert.equal(row.t, 'text'.repeat(5), `event ${i}: every text column is TEXT`);
      assert.equal(row.data, asStored(e.dataJson), `event ${i} data`);
      assert.deepEqual([row.node_name, row.pot_id, row.pot_type, row.event_type, row.timestamp, row.received_at], [e.node, e.potId, e.potType, e.eventType, e.timestamp, e.receivedAt]);
    });
  });

  it('a restarted writer thread gets the slabs described again', async () => {
    const before = storedRows().length;
    await store.append([event(1), event(2)]);
    const worker = (store as unknown as { worker: Worker }).worker;
    await worker.terminate();
    // The store restarts its thread after a short delay; appends fail until then, then succeed.
    let ok = false;
    await waitFor(async () => {
      try {
        await store.append([event(3), event(4)]);
        ok = true;
      } catch {
        ok = false;
      }
      return ok;
    }, 10_000);
    assert.equal(storedRows().length, before + 4);
  });
});
