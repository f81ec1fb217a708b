import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReadPool } from '../../src/db/index.js';
import { createEventService, eventQueryModules, SqliteEventStore, type EventService } from '../../src/events/index.js';
import { metricValue, newRegistry, potEvent, silentLogger, statusEvent, testDb, waitFor, type TestDb } from './helpers.js';

describe('event persistence', () => {
  let db: TestDb;
  before(() => {
    db = testDb();
  });
  after(() => db.cleanup());

  it('graceful close commits every received event; all are there after reopening', async () => {
    const registry = newRegistry();
    const svc = createEventService({ db: db.handle, logger: silentLogger(), registry, batch: { maxSize: 500, maxDelayMs: 50 } });
    const N = 2345;
    for (let i = 0; i < N; i++) assert.equal(svc.ingest(potEvent('hb-1', { data: { seq: i } })), true);
    // Nothing is committed synchronously: every event waits in the queue or in the batch being written.
    assert.equal(svc.pendingCount, N);
    await svc.close();
    assert.equal(svc.pendingCount, 0);
    assert.equal(svc.ingest(potEvent('hb-1')), false, 'closed service refuses new events');
    db.handle.close();

    const reopened = db.reopen();
    const rows = reopened.sqlite.prepare("SELECT json_extract(data, '$.seq') AS seq FROM events WHERE node_name = 'hb-1' ORDER BY id").all() as { seq: number }[];
    assert.equal(rows.length, N);
    rows.forEach((r, i) => assert.equal(r.seq, i));
    assert.equal(await metricValue(registry, 'apiary_events_stored_total'), N);
    assert.equal(await metricValue(registry, 'apiary_events_received_total', { pot_type: 'cowrie' }), N);
    // 4 full batches + the tail flushed by close()
    const batches = await registry.getSingleMetric('apiary_event_batch_size')!.get();
    const count = batches.values.find((v) => (v as { metricName?: string }).metricName === 'apiary_event_batch_size_count')!.value;
    assert.equal(count, 5);
    db.handle = reopened;
  });

  it('commits a partial batch within maxDelayMs without any flush call', async () => {
    const svc = createEventService({ db: db.handle, logger: silentLogger(), registry: newRegistry(), batch: { maxSize: 1000, maxDelayMs: 5 } });
    // the writer thread's start (module loading) is not part of what is measured
    svc.ingest(potEvent('hb-warm'));
    await svc.flush();
    let committed = 0;
    svc.onCommitted((b) => (committed += b.length));
    const t0 = Date.now();
    svc.ingest(potEvent('hb-delay'));
    svc.ingest(statusEvent('hb-delay', 'CMD: uname -a'));
    assert.equal(committed, 0);
    await waitFor(() => committed === 2, 2000, 'timer flush');
    assert.ok(Date.now() - t0 < 1000);
    await svc.close();
  });

  it('maxDelayMs 0 commits at the end of the current I/O turn', async () => {
    const svc = createEventService({ db: db.handle, logger: silentLogger(), registry: newRegistry(), batch: { maxDelayMs: 0 } });
    const batches: number[] = [];
    svc.onCommitted((b) => batches.push(b.length));
    for (let i = 0; i < 10; i++) svc.ingest(potEvent('hb-imm'));
    // sent to the writer thread at the end of this turn, as one batch
    await waitFor(() => batches.length > 0, 5000, 'batch commit');
    assert.deepEqual(batches, [10]);
    await svc.close();
  });

  it('hands a large committed batch to onCommitted in slices across event-loop turns, in order; flush waits for all', async () => {
    const svc = createEventService({
      db: db.handle,
      logger: silentLogger(),
      registry: newRegistry(),
      // budget 0: one slice per turn, so what runs in between can be seen
      batch: { maxSize: 1000, maxDelayMs: 1000, postCommitSlice: 100, postCommitBudgetMs: 0 },
    });
    const seen: { len: number; ticks: number }[] = [];
    const seqs: number[] = [];
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    svc.onCommitted((b) => {
      seen.push({ len: b.length, ticks });
      for (const e of b) seqs.push(e.data.seq as number);
    });
    for (let i = 0; i < 1000; i++) svc.ingest(potEvent('hb-slice', { data: { seq: i } }));
    // a full batch is sent at once; flush resolves only once every slice was handed over
    assert.equal(await svc.flush(), true);
    clearInterval(ticker);
    assert.deepEqual(
      seen.map((s) => s.len),
      Array(10).fill(100),
    );
    assert.deepEqual(seqs, Array.from({ length: 1000 }, (_, i) => i));
    // the event loop turned between slices: a timer ran while the batch was being handed over
    assert.ok(seen[9]!.ticks > seen[0]!.ticks, `timers ran between slices (${seen.map((s) => s.ticks).join(',')})`);
    assert.equal(svc.pendingCount, 0);
    await svc.close();
  });

  it('keeps events in memory while commits fail and stores them once the database recovers', async () => {
    const registry = newRegistry();
    const readPool = new ReadPool({ dbPath: db.path, modules: eventQueryModules(), size: 1 });
    const store = new SqliteEventStore({ dbPath: db.path, readPool, busyTimeoutMs: 0 });
    const svc = createEventService({ store, logger: silentLogger(), registry, batch: { maxSize: 10, maxDelayMs: 1, maxPending: 25 } });
    // Another connection holds the write lock: the writer thread's commits get SQLITE_BUSY.
    const blocker = db.reopen();
    blocker.sqlite.pragma('busy_timeout = 0');
    db.handle.sqlite.pragma('busy_timeout = 0');
    blocker.sqlite.exec('BEGIN IMMEDIATE');
    const before = (db.handle.sqlite.prepare("SELECT count(*) AS c FROM events WHERE node_name = 'hb-busy'").get() as { c: number }).c;
    let accepted = 0;
    for (let i = 0; i < 30; i++) if (svc.ingest(potEvent('hb-busy', { data: { i } }))) accepted++;
    assert.equal(accepted, 25, 'backlog capped at maxPending');
    assert.equal(await metricValue(registry, 'apiary_events_dropped_total', { reason: 'backlog' }), 5);
    await waitFor(async () => (await metricValue(registry, 'apiary_event_commit_failures_total')) >= 1, 5000, 'a failed commit');
    blocker.sqlite.exec('COMMIT');
    blocker.close();
    await waitFor(() => svc.pendingCount === 0, 10_000, 'retry to commit');
    db.handle.sqlite.pragma('busy_timeout = 5000');
    const after = (db.handle.sqlite.prepare("SELECT count(*) AS c FROM events WHERE node_name = 'hb-busy'").get() as { c: number }).c;
    assert.equal(after - before, 25);
    await svc.close();
    await store.close();
    await readPool.close();
  });
});

describe('event queries', () => {
  let db: TestDb;
  let svc: EventService;
  const base = Date.UTC(2024, 0, 1, 0, 0, 0);
  before(async () => {
    db = testDb();
    svc = createEventService({ db: db.handle, logger: silentLogger(), registry: newRegistry() });
    // 60 events over 3 hours, 3 nodes, 2 pot types
    for (let i = 0; i < 60; i++) {
      const ts = new Date(base + i * 3 * 60_000).toISOString();
      const node = `hb-${i % 3}`;
      const potType = i % 2 === 0 ? 'cowrie' : 'dionaea';
      const eventType = i % 2 === 0 ? (i % 4 === 0 ? 'cowrie.login.failed' : 'cowrie.command.input') : 'dionaea.connections';
      svc.ingest(potEvent(node, { pot_id: `${potType}-1`, pot_type: potType, event_type: eventType, timestamp: ts, data: { i } }));
    }
    await svc.flush();
  });
  after(async () => {
    await svc.close();
    db.cleanup();
  });

  it('lists newest first with filters', async () => {
    const page = await svc.list({ node: 'hb-1', limit: 5 });
    assert.equal(page.events.length, 5);
    assert.ok(page.events.every((e) => e.node === 'hb-1'));
    assert.deepEqual(page.events.map((e) => e.data.i), [58, 55, 52, 49, 46]);
    const cowrie = await svc.list({ potType: 'cowrie', eventType: 'cowrie.login.failed', limit: 1000 });
    assert.equal(cowrie.events.length, 15);
    assert.equal(cowrie.next_cursor, null);
    const byPot = await svc.list({ pot: 'dionaea-1', limit: 1000 });
    assert.equal(byPot.events.length, 30);
    const e = page.events[0]!;
    assert.equal(e.timestamp, new Date(base + 58 * 3 * 60_000).toISOString());
    assert.match(e.received_at, /^\d{4}-\d{2}-\d{2}T.*Z$/);
  });

  it('filters by time: since inclusive, until exclusive', async () => {
    const since = base + 30 * 3 * 60_000;
    const until = base + 40 * 3 * 60_000;
    const page = await svc.list({ since, until, limit: 1000, order: 'asc' });
    assert.deepEqual(page.events.map((e) => e.data.i), [30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
  });

  it('pages with a cursor that stays stable while new events arrive', async () => {
    const seen: number[] = [];
    let page = await svc.list({ limit: 7 });
    let inserted = 0;
    for (;;) {
      seen.push(...page.events.map((e) => e.data.i as number));
      if (page.next_cursor === null) break;
      // new events between pages must neither shift nor duplicate what is paged
      svc.ingest(potEvent('hb-new', { data: { i: 1000 + inserted++ } }));
      await svc.flush();
      page = await svc.list({ limit: 7, cursor: page.next_cursor });
    }
    assert.deepEqual(seen, Array.from({ length: 60 }, (_, k) => 59 - k));
    const asc = await svc.list({ limit: 50, order: 'asc' });
    const asc2 = await svc.list({ limit: 50, order: 'asc', cursor: asc.next_cursor! });
    assert.deepEqual([...asc.events, ...asc2.events].slice(0, 60).map((e) => e.data.i), Array.from({ length: 60 }, (_, k) => k));
    await assert.rejects(svc.list({ cursor: 'garbage' }), /invalid cursor/);
  });

  it('gets one event by id', async () => {
    const first = (await svc.list({ limit: 1, order: 'asc' })).events[0]!;
    assert.deepEqual(await svc.get(first.id), first);
    assert.equal(await svc.get(999_999), undefined);
  });

  it('aggregates by event type, node, pot type and time bucket', async () => {
    const s = await svc.stats({ since: base, until: base + 3 * 3_600_000, bucket: 'hour' });
    assert.equal(s.total, 60);
    assert.deepEqual(s.by_event_type, [
      { event_type: 'dionaea.connections', count: 30 },
      { event_type: 'cowrie.command.input', count: 15 },
      { event_type: 'cowrie.login.failed', count: 15 },
    ]);
    assert.deepEqual(s.by_node, [
      { node: 'hb-0', count: 20 },
      { node: 'hb-1', count: 20 },
      { node: 'hb-2', count: 20 },
    ]);
    assert.deepEqual(s.by_pot_type, [
      { pot_type: 'cowrie', count: 30 },
      { pot_type: 'dionaea', count: 30 },
    ]);
    assert.deepEqual(s.buckets, [
      { start: '2024-01-01T00:00:00.000Z', count: 20 },
      { start: '2024-01-01T01:00:00.000Z', count: 20 },
      { start: '2024-01-01T02:00:00.000Z', count: 20 },
    ]);
    const day = await svc.stats({ since: base - 86_400_000, until: base + 86_400_000, bucket: 'day', node: 'hb-0' });
    assert.equal(day.total, 20);
    assert.deepEqual(day.buckets, [{ start: '2024-01-01T00:00:00.000Z', count: 20 }]);
    await assert.rejects(svc.stats({ since: base, until: base }), /until must be after since/);
    await assert.rejects(svc.stats({ since: 0, until: base, bucket: 'hour' }), /range too large/);
  });
});

describe('retention', () => {
  let db: TestDb;
  before(() => {
    db = testDb();
  });
  after(() => db.cleanup());

  const count = () => (db.handle.sqlite.prepare('SELECT count(*) AS c FROM events').get() as { c: number }).c;

  it('deletes by age (received_at) in chunks and counts it', async () => {
    const registry = newRegistry();
    const svc = createEventService({
      db: db.handle,
      logger: silentLogger(),
      registry,
      retention: { maxAgeDays: 7, maxRows: 0, chunkSize: 100, intervalMs: 3_600_000 },
    });
    const now = Date.now();
    const old = now - 8 * 86_400_000;
    // node timestamps are not trusted for retention: an old event timestamp received now is kept
    for (let i = 0; i < 950; i++) svc.ingest(potEvent('hb-old', { data: { i } }, old + i));
    for (let i = 0; i < 50; i++) svc.ingest(potEvent('hb-new', { timestamp: new Date(old).toISOString() }, now));
    await svc.flush();
    const deleted = await svc.sweepRetention();
    assert.equal(deleted, 950);
    assert.equal(count(), 50);
    assert.equal(await metricValue(registry, 'apiary_events_retention_deleted_total', { reason: 'age' }), 950);
    await svc.close();
  });

  it('keeps at most maxRows (the newest)', async () => {
    const registry = newRegistry();
    const svc = createEventService({
      db: db.handle,
      logger: silentLogger(),
      registry,
      retention: { maxAgeDays: 0, maxRows: 300, chunkSize: 64, intervalMs: 3_600_000 },
    });
    for (let i = 0; i < 1000; i++) svc.ingest(potEvent('hb-rows', { data: { i } }));
    await svc.flush();
    await svc.sweepRetention();
    assert.equal(count(), 300);
    const oldest = (await svc.list({ limit: 1, order: 'asc' })).events[0]!;
    assert.equal(oldest.data.i, 700);
    assert.equal(await metricValue(registry, 'apiary_events_retention_deleted_total', { reason: 'rows' }), 750);
    await svc.close();
  });

  it('runs periodically on its own', async () => {
    const svc = createEventService({
      db: db.handle,
      logger: silentLogger(),
      registry: newRegistry(),
      retention: { maxAgeDays: 0, maxRows: 10, intervalMs: 20 },
    });
    for (let i = 0; i < 100; i++) svc.ingest(potEvent('hb-periodic'));
    await svc.flush();
    await waitFor(() => count() <= 10, 5000, 'periodic sweep');
    await svc.close();
  });
});
