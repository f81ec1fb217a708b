// The name columns (node, pot id, pot type, event type) reach the writer thread as numbers into a
// string table the store keeps in step with the thread (sqlite-store.ts, AppendRequest), and the
// thread inserts rows several per statement, computing their ids. Every row must still hold its own
// event's names and the id reported for it: across the table being started over (too many distinct
// names) and across a writer thread that died mid-batch and was restarted with an empty table.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { moduleBeside, ReadPool } from '../../src/db/index.js';
import { createEventService, eventQueryModules, SqliteEventStore } from '../../src/events/index.js';
import { newRegistry, potEvent, silentLogger, testDb, waitFor, type TestDb } from './helpers.js';

describe('event writer name table', () => {
  let db: TestDb;
  before(() => {
    db = testDb();
  });
  after(() => db.cleanup());

  it('rows keep their names across a table restart and a writer thread restart', async () => {
    const marker = `${db.path}.exited`;
    const readPool = new ReadPool({ dbPath: db.path, modules: eventQueryModules(), size: 1 });
    const store = new SqliteEventStore({ dbPath: db.path, readPool, batchHooks: [{ url: moduleBeside(import.meta.url, 'fixtures/exit-hook'), options: { marker } }] });
    const svc = createEventService({ store, logger: silentLogger(), registry: newRegistry(), batch: { maxSize: 2000, maxDelayMs: 1 } });
    // The ids the writer reports back (the thread computes those of a multi-row INSERT).
    const committedIds = new Map<number, number>();
    svc.onCommitted((batch) => {
      for (const e of batch) committedIds.set(e.data.seq as number, e.id);
    });
    let seq = 0;
    const sent: { node: string; pot: string; type: string }[] = [];
    const ingest = (node: string, pot: string, type: string, extra: Record<string, unknown> = {}) => {
      sent.push({ node, pot, type });
      assert.equal(svc.ingest(potEvent(node, { pot_id: pot, event_type: type, pot_type: `pt-${seq % 3}`, data: { seq: seq++, ...extra } })), true);
    };
    // 60 000 distinct node names: more than the table holds, so it is started over at least once.
    for (let i = 0; i < 60_000; i++) ingest(`uniq-${i}`, `pot-${i % 5}`, `type-${i % 7}`);
    assert.equal(await svc.flush(), true);
    for (let i = 0; i < 100; i++) ingest(`again-${i % 4}`, 'pot-1', 'type-1');
    assert.equal(await svc.flush(), true);
    // The thread dies inside a batch; the batch is retried on a new thread with an empty table.
    for (let i = 0; i < 100; i++) ingest(`again-${i % 4}`, `pot-${i % 2}`, 'type-2', i === 50 ? { exitThread: true } : {});
    assert.equal(await svc.flush(), false, 'the batch the thread died in is reported failed (and kept)');
    assert.equal(existsSync(marker), true, 'the writer thread did exit');
    // Retried (and refused while the thread restarts) until the new thread commits it.
    await waitFor(() => svc.flush(), 20_000, 'the retried batch to commit');
    for (let i = 0; i < 100; i++) ingest(`again-${i % 4}`, 'pot-9', 'type-3');
    assert.equal(await svc.flush(), true);

    const rows = db.handle.sqlite
      .prepare("SELECT id, node_name AS node, pot_id AS pot, pot_type, event_type AS type, json_extract(data, '$.seq') AS seq FROM events ORDER BY id")
      .all() as { id: number; node: string; pot: string; pot_type: string; type: string; seq: number }[];
    assert.equal(rows.length, sent.length);
    rows.forEach((r, i) => {
      assert.equal(r.seq, i, 'stored in ingest order');
      assert.equal(committedIds.get(i), r.id, `id reported for event ${i}`);
      assert.deepEqual({ node: r.node, pot: r.pot, type: r.type, pot_type: r.pot_type }, { ...sent[i]!, pot_type: `pt-${i % 3}` }, `row ${i}`);
    });
    await svc.close();
    await store.close();
    await readPool.close();
  });
});
