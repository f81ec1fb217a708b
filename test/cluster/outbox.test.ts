// The fan-out outbox on a real PostgreSQL and redis-server: a batch is noted in the statement that
// commits it; the core that hands it on forgets the note; what a core killed between its COMMIT and
// its stream write left behind, the leader's relay hands on, once, to every other core (and
// publishes it itself); a note too old to hand on safely is dropped and counted.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { ClusterFanout, clusterKey, OutboxRelay, type FanoutEvent } from '../../src/cluster/index.js';
import { openPgDatabase, type PgDatabaseHandle } from '../../src/db/index.js';
import { PgEventStore, type NewEvent } from '../../src/events/index.js';
import { createTestPgDatabase, pgSkipReason, type TestPgDatabase } from '../helpers/pg.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { metricValue, silentLogger, waitFor } from '../events/helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function newEvent(n: number, extra: Partial<NewEvent> = {}): NewEvent {
  const at = Date.now();
  return { node: `edge-${n % 3}`, potId: 'pot-01', potType: 'cowrie', eventType: 'cowrie.login.failed', timestamp: at - 5, receivedAt: at, dataJson: `{"n":${n},"u":"r\\u00f6ot"}`, fromStatus: false, ...extra };
}

interface Core {
  origin: string;
  fanout: ClusterFanout;
  received: FanoutEvent[];
  registry: Registry;
  clients: Redis[];
}

describe('fan-out outbox (PostgreSQL + Redis)', { skip: await pgSkipReason() }, () => {
  let testDb: TestPgDatabase;
  let database: PgDatabaseHandle;
  let redis: TestRedis;
  let store: PgEventStore;
  const cores: Core[] = [];
  const key = clusterKey('outbox-test:', 'fanout');

  const core = async (origin: string): Promise<Core> => {
    const clients = [0, 1].map(() => new Redis(redis.url, { maxRetriesPerRequest: null }).on('error', () => undefined));
    const registry = new Registry();
    const c: Core = { origin, received: [], registry, clients, fanout: new ClusterFanout({ redis: clients[0]!, reader: clients[1]!, key, origin, maxLen: 1000, logger: silentLogger(), registry, blockMs: 500 }) };
    await c.fanout.start({ events: (e) => c.received.push(...e), publications: () => undefined });
    cores.push(c);
    return c;
  };
  const notes = async () => (await database.pool.query<{ first_id: number; owner: string }>('SELECT first_id, owner FROM event_outbox ORDER BY first_id')).rows.map((r) => [Number(r.first_id), r.owner]);

  before(async () => {
    testDb = await createTestPgDatabase();
    database = await openPgDatabase(testDb.url, { max: 4 });
    redis = await startTestRedis();
    store = new PgEventStore(database, { partitions: { aheadDays: 0 } });
  });
  after(async () => {
    for (const c of cores) {
      await c.fanout.close();
      for (const r of c.clients) r.disconnect();
    }
    await store?.close();
    await database?.close();
    await testDb?.drop();
    await redis?.dispose();
  });

  it('notes nothing until opened; then every committed batch, in its own statement, with its origin, ids and status flags', async () => {
    await store.append([newEvent(0)]);
    assert.deepEqual(await notes(), [], 'a single core writes no notes');
    const outbox = store.noteBatches('event_outbox', 'a/1');
    const ids = Array.from(await store.append([newEvent(1), newEvent(2, { fromStatus: true, eventType: 'status_message' }), newEvent(3)]));
    assert.deepEqual(await notes(), [[ids[0], 'a/1']]);
    assert.deepEqual(await outbox.unsent(Date.now() - 60_000, 10), [], 'not stale yet');
    const [batch] = await outbox.unsent(Date.now() + 1, 10);
    assert.equal(batch!.key, ids[0]);
    assert.deepEqual(batch!.events.map((e) => [e.id, e.fromStatus, e.dataJson]), [
      [ids[0], false, '{"n":1,"u":"r\\u00f6ot"}'],
      [ids[1], true, '{"n":2,"u":"r\\u00f6ot"}'],
      [ids[2], false, '{"n":3,"u":"r\\u00f6ot"}'],
    ]);
    await outbox.forget([ids[0]!]);
    assert.deepEqual(await notes(), []);
  });

  it("a killed core's batch is handed on by the leader's relay exactly once: every other core publishes it, the relay's core too", async () => {
    const outbox = store.noteBatches('event_outbox', 'a/1');
    const [a, b, c] = [await core('a/1'), await core('b/1'), await core('c/1')];
    // A hands its first batch on as usual: the note goes once the hand-over is known.
    // (start() runs the sweep only while leading(); the relays below are swept by hand.)
    const relayA = new OutboxRelay({ outbox, fanout: a.fanout, leading: () => false, logger: silentLogger(), forgetMs: 50 });
    relayA.start();
    const ids1 = Array.from(await store.append([newEvent(10), newEvent(11)]));
    relayA.committed((await outbox.unsent(Date.now() + 1, 10)).find((x) => x.key === ids1[0])!.events);
    await waitFor(async () => (await notes()).length === 0, 5000, 'the handed-on note deleted');
    await relayA.close();
    // Then A commits a batch and dies before its stream write: the note stays.
    const ids2 = Array.from(await store.append([newEvent(20), newEvent(21, { fromStatus: true, eventType: 'status_message' }), newEvent(22)]));
    assert.deepEqual(await notes(), [[ids2[0], 'a/1']]);
    // Not before the note is stale: the core may still hand it on.
    const [regB, regC] = [new Registry(), new Registry()];
    const relayB = new OutboxRelay({ outbox, fanout: b.fanout, leading: () => true, logger: silentLogger(), registry: regB, staleMs: 300 });
    const relayC = new OutboxRelay({ outbox, fanout: c.fanout, leading: () => true, logger: silentLogger(), registry: regC, staleMs: 300 });
    await relayB.sweep();
    assert.deepEqual(await notes(), [[ids2[0], 'a/1']], 'too fresh');
    await sleep(350);
    // Two sweeps racing (a leader that just lost its lease and the new one): one writes the batch.
    await Promise.all([relayB.sweep(), relayC.sweep()]);
    await waitFor(() => c.received.filter((e) => ids2.includes(e.id)).length === 3, 5000, 'the batch on C');
    await sleep(300);
    for (const x of [b, c]) {
      assert.deepEqual(x.received.filter((e) => e.id >= ids2[0]!).map((e) => [e.id, e.fromStatus]), [[ids2[0], false], [ids2[1], true], [ids2[2], false]], `${x.origin}: once, in order`);
    }
    assert.equal(b.received.filter((e) => ids1.includes(e.id)).length, 2, 'the normal hand-over reached B');
    assert.deepEqual(await notes(), []);
    const count = async (result: string) => (await metricValue(regB, 'apiary_cluster_outbox_batches_total', { result })) + (await metricValue(regC, 'apiary_cluster_outbox_batches_total', { result }));
    assert.equal(await count('handed_on'), 1);
    // A relay sweeping the same batch again (a note whose delete was lost) writes nothing.
    assert.equal(await c.fanout.handOn(c.received.filter((e) => ids2.includes(e.id)), 'a/1'), false);
  });

  it('a note older than the fan-out markers live is dropped unsent and counted', async () => {
    const outbox = store.noteBatches('event_outbox', 'gone/1');
    const ids = Array.from(await store.append([newEvent(30)]));
    const registry = new Registry();
    const b = cores[1]!;
    const before = b.received.length;
    const relay = new OutboxRelay({ outbox, fanout: b.fanout, leading: () => true, logger: silentLogger(), registry, staleMs: 0, giveUpMs: 60_000 });
    await relay.sweep(Date.now() + 120_000);
    assert.deepEqual(await notes(), []);
    assert.equal(await metricValue(registry, 'apiary_cluster_outbox_batches_total', { result: 'expired' }), 1);
    await sleep(300);
    assert.equal(b.received.slice(before).filter((e) => e.id === ids[0]).length, 0);
  });
});
