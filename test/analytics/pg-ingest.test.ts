// The PostgreSQL side of attack analytics beyond the shared contract: several cores writing the
// same tables at once (each folds its own committed events, each keeps its own watermark), text
// PostgreSQL cannot store as is, and the ingest's behaviour around the store (retries of failed
// writes, the fold thread, the replay point).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AnalyticsRetention,
  createAggregateContext,
  DIMENSIONS,
  normaliseEvent,
  PgAnalyticsIngest,
  PgAttackStore,
  type AttackWriteStore,
  type StoredEvent,
} from '../../src/analytics/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';
import { bruteTop, randomEvents } from './helpers.js';

const H = 3_600_000;
const D = 86_400_000;
const START = Date.parse('2026-11-03T02:41:00Z');
const ctx = createAggregateContext({});
const pg = (await databaseBackends()).find((b) => b.name === 'PostgreSQL')!;

async function openPg(): Promise<Extract<OpenedBackend, { kind: 'pg' }>> {
  const opened = await pg.open();
  assert.equal(opened.kind, 'pg');
  return opened as Extract<OpenedBackend, { kind: 'pg' }>;
}

async function until(what: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('PgAttackStore: two cores writing at once', { skip: pg.skip }, () => {
  let opened: Extract<OpenedBackend, { kind: 'pg' }>;
  before(async () => {
    opened = await openPg();
  });
  after(() => opened?.close());

  it('writes of both cores add up (no lost or doubled increments), each with its own watermark', async () => {
    const events = randomEvents(3000, START, 2 * D, 21).sort((a, b) => a.timestamp - b.timestamp).map((e, i) => ({ ...e, id: i + 1 }));
    const cores = ['a', 'b'].map((name) => PgAnalyticsIngest.forDatabase(opened.database, { flushMs: 3_600_000 }, { ctx, watermarkName: name }));
    // Core a gets the odd ids, core b the even ones; their writes overlap in time and keys.
    for (let i = 0; i < events.length; i += 200) {
      const batch = events.slice(i, i + 200);
      cores[0]!.onCommitted(batch.filter((e) => e.id % 2 === 1));
      cores[1]!.onCommitted(batch.filter((e) => e.id % 2 === 0));
      await Promise.all(cores.map((c) => c.flush()));
    }
    await Promise.all(cores.map((c) => c.close()));
    const store = new PgAttackStore(opened.database);
    for (const by of DIMENSIONS) {
      const got = await store.top({ by, since: START, until: START + 2 * D, limit: 8 });
      assert.deepEqual(got.items.map((i) => ({ key: i.key, count: i.count })), bruteTop(ctx, events, by, START, START + 2 * D).slice(0, 8), by);
    }
    const sessions = new Set(events.map((e) => normaliseEvent(e).session && `${e.node}/${e.potId}/${normaliseEvent(e).session}`).filter(Boolean));
    assert.equal((await store.sessions({ limit: 100_000 })).length, sessions.size, 'one row per session whichever core saw its events');
    assert.equal(await new PgAttackStore(opened.database, { watermarkName: 'a' }).ingestedUntil(), events.length - (events.length % 2 === 0 ? 1 : 0));
    assert.equal(await new PgAttackStore(opened.database, { watermarkName: 'b' }).ingestedUntil(), events.length - (events.length % 2 === 0 ? 0 : 1));
    assert.equal(await store.ingestedUntil(), null, 'the single-writer watermark is not set by named cores');
  });

  it('stores text with NUL bytes (PostgreSQL text cannot hold them) as U+FFFD', async () => {
    const at = START + 10 * D;
    const e = (id: number, data: Record<string, unknown>, eventType: string): StoredEvent => ({ id, node: 'node-z', potId: 'cowrie-1', potType: 'cowrie', eventType, timestamp: at, data: { eventid: eventType, ...data } });
    const batch = [
      e(900_001, { src_ip: '203.0.113.5', session: 'nul\0s', username: 'ro\0ot', password: 'x', dst_port: 22 }, 'cowrie.login.success'),
      e(900_002, { src_ip: '203.0.113.5', session: 'nul\0s', input: 'echo \0 hi' }, 'cowrie.command.input'),
    ];
    const errors: unknown[] = [];
    const ingest = PgAnalyticsIngest.forDatabase(opened.database, { flushMs: 0 }, { ctx, onError: (err) => errors.push(err) });
    ingest.onCommitted(batch);
    await ingest.close();
    assert.deepEqual(errors, []);
    const store = new PgAttackStore(opened.database);
    const top = await store.top({ by: 'command', since: at, until: at + H, limit: 5 });
    assert.deepEqual(top.items, [{ key: 'echo \uFFFD hi', count: 1 }]);
    const [session] = await store.sessions({ srcIp: '203.0.113.5', limit: 5 });
    assert.equal(session!.session, 'nul\uFFFDs');
    assert.equal(session!.username, 'ro\uFFFDot');
    assert.deepEqual((await store.session(session!.id))!.steps.map((s) => s.kind), ['login.success', 'command']);
  });

  it('AnalyticsRetention sweeps the PostgreSQL store in chunks until nothing old is left', async () => {
    const store = new PgAttackStore(opened.database);
    const retention = new AnalyticsRetention(store, { maxAgeDays: 1, chunkSize: 500 });
    const deleted = await retention.sweep(START + 20 * D);
    assert.ok(deleted > 1000, String(deleted));
    assert.deepEqual((await store.top({ by: 'src_ip', since: START - D, until: START + 20 * D, limit: 5 })).items, []);
    assert.deepEqual(await store.sessions({ limit: 5 }), []);
    assert.equal(await store.attacker('8.8.8.8', 5), undefined);
    assert.equal(await retention.sweep(START + 20 * D), 0);
    await retention.stop();
  });
});

describe('PgAnalyticsIngest', { skip: pg.skip }, () => {
  let opened: Extract<OpenedBackend, { kind: 'pg' }>;
  before(async () => {
    opened = await openPg();
  });
  after(() => opened?.close());

  it('keeps aggregates whose write failed and writes them, in order, once the store answers again', async () => {
    const store = new PgAttackStore(opened.database, { watermarkName: 'retry' });
    let failures = 2;
    const flaky: AttackWriteStore = {
      write: async (agg) => {
        if (failures-- > 0) throw new Error('database unreachable');
        return store.write(agg);
      },
      ingestedUntil: () => store.ingestedUntil(),
      deleteOlderThan: (c, m) => store.deleteOlderThan(c, m),
    };
    const errors: unknown[] = [];
    const ingest = new PgAnalyticsIngest(flaky, { flushMs: 3_600_000 }, { ctx, onError: (err) => errors.push(err) });
    const events = randomEvents(600, START + 20 * D, 6 * H, 31, 1_000_001);
    ingest.onCommitted(events.slice(0, 300));
    await ingest.flush();
    ingest.onCommitted(events.slice(300));
    await ingest.flush();
    assert.equal(errors.length, 2);
    assert.equal(ingest.pendingEvents, 600, 'nothing written, nothing lost');
    await ingest.flush();
    assert.equal(ingest.pendingEvents, 0);
    assert.equal(await store.ingestedUntil(), 1_000_600);
    const got = await store.top({ by: 'event_type', since: START + 20 * D, until: START + 21 * D, limit: 20 });
    assert.deepEqual(got.items.map((i) => ({ key: i.key, count: i.count })), bruteTop(ctx, events, 'event_type', START + 20 * D, START + 21 * D));
  });

  it('after a crash (folded events never written), the events above the watermark fed again give the full counts', async () => {
    const events = randomEvents(1500, START + 40 * D, 5 * H, 61, 3_000_001);
    const first = PgAnalyticsIngest.forDatabase(opened.database, { flushMs: 3_600_000 }, { ctx, watermarkName: 'crash' });
    first.onCommitted(events.slice(0, 500));
    await first.flush();
    // Committed but only folded in memory when the core dies: never flushed, never closed.
    first.onCommitted(events.slice(500, 900));
    const second = PgAnalyticsIngest.forDatabase(opened.database, { flushMs: 3_600_000 }, { ctx, watermarkName: 'crash' });
    const from = await second.replayFrom(3_000_900);
    assert.equal(from, 3_000_500);
    second.onCommitted(events.filter((e) => e.id > from! && e.id <= 3_000_900));
    second.onCommitted(events.slice(900));
    await second.close();
    const store = new PgAttackStore(opened.database, { watermarkName: 'crash' });
    assert.equal(await store.ingestedUntil(), 3_001_500);
    for (const by of ['src_ip', 'credential', 'node'] as const) {
      const got = await store.top({ by, since: START + 40 * D, until: START + 41 * D, limit: 6 });
      assert.deepEqual(got.items.map((i) => ({ key: i.key, count: i.count })), bruteTop(ctx, events, by, START + 40 * D, START + 41 * D).slice(0, 6), by);
    }
  });

  it('drops the oldest aggregate, and says so, when writes keep failing past maxQueued', async () => {
    const errors: unknown[] = [];
    const down: AttackWriteStore = {
      write: async () => {
        throw new Error('database unreachable');
      },
      ingestedUntil: async () => null,
      deleteOlderThan: async () => ({ deleted: 0, done: true }),
    };
    const ingest = new PgAnalyticsIngest(down, { flushMs: 3_600_000 }, { ctx, maxQueued: 2, onError: (err) => errors.push(err) });
    for (let i = 0; i < 3; i++) {
      ingest.onCommitted(randomEvents(10, START, H, 40 + i, 1 + 10 * i));
      await ingest.flush();
    }
    assert.equal(ingest.pendingEvents, 20);
    assert.ok(errors.some((e) => /analytics of 10 events dropped/.test(String(e))), String(errors));
  });

  it('writes on its interval from a fold thread; replayFrom gives the watermark only for a gap it could have left', async () => {
    const ingest = PgAnalyticsIngest.forDatabase(opened.database, { flushMs: 30, geo: false }, { foldThread: true, watermarkName: 'thread' });
    ingest.start();
    const events = randomEvents(2000, START + 30 * D, 2 * H, 51, 2_000_001);
    for (let i = 0; i < events.length; i += 100) ingest.onCommitted(events.slice(i, i + 100));
    const store = new PgAttackStore(opened.database, { watermarkName: 'thread' });
    await until(async () => (await store.ingestedUntil()) === 2_002_000);
    await ingest.close();
    const got = await store.top({ by: 'src_ip', since: START + 30 * D, until: START + 31 * D, limit: 5 });
    assert.deepEqual(got.items.map((i) => ({ key: i.key, count: i.count })), bruteTop(ctx, events, 'src_ip', START + 30 * D, START + 31 * D).slice(0, 5));
    assert.equal(await ingest.replayFrom(2_002_000), null, 'nothing committed above the watermark');
    assert.equal(await ingest.replayFrom(2_002_500), 2_002_000);
    assert.equal(await ingest.replayFrom(2_002_000 + 10_000_000), null, 'a gap larger than the ingest ever holds is not replayed');
  });
});
