// The fan-out stream on a real redis-server, three members reading it: what one writes reaches
// the others once and never itself, binary hpfeeds payloads survive, a resent entry is skipped, a
// gap is counted, a Redis restart loses nothing the stream holds, and a batch goes on the stream
// once whoever hands it on (the committing core or an outbox relay).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { ClusterFanout, clusterKey, type FanoutEvent, type FanoutPublication } from '../../src/cluster/index.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { metricValue, silentLogger, waitFor } from '../events/helpers.js';

interface Member {
  name: string;
  fanout: ClusterFanout;
  registry: Registry;
  events: FanoutEvent[];
  publications: FanoutPublication[];
  clients: Redis[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function event(id: number, extra: Partial<FanoutEvent> = {}): FanoutEvent {
  return {
    id,
    node: 'edge-"1"',
    potId: 'pot-01',
    potType: 'cowrie',
    eventType: 'cowrie.login.failed',
    timestamp: 1_714_557_600_000 + id,
    receivedAt: 1_714_557_600_500 + id,
    dataJson: `{"username":"root","password":"p\\u00e9${id}","n":${id}.0}`,
    fromStatus: false,
    ...extra,
  };
}

describe('cluster fan-out stream', () => {
  let redis: TestRedis;
  const members: Member[] = [];
  const key = clusterKey('test:', 'fanout');

  const member = async (name: string): Promise<Member> => {
    const clients = [0, 1].map(() => new Redis(redis.url, { maxRetriesPerRequest: null }).on('error', () => undefined));
    const registry = new Registry();
    const m: Member = {
      name,
      registry,
      events: [],
      publications: [],
      clients,
      fanout: new ClusterFanout({ redis: clients[0]!, reader: clients[1]!, key, origin: `${name}/boot`, maxLen: 1000, logger: silentLogger(), registry, blockMs: 500 }),
    };
    await m.fanout.start({ events: (e) => m.events.push(...e), publications: (p) => m.publications.push(...p) });
    members.push(m);
    return m;
  };

  before(async () => {
    redis = await startTestRedis({ appendOnly: true });
  });
  after(async () => {
    for (const m of members) {
      await m.fanout.close();
      for (const c of m.clients) c.disconnect();
    }
    await redis.dispose();
  });

  it("a committed slice reaches every other member once, as one entry, byte for byte; never its origin", async () => {
    const [a, b, c] = [await member('a'), await member('b'), await member('c')];
    const slice = [event(1), event(2, { fromStatus: true, eventType: 'status_message' }), event(3)];
    a.fanout.committed(slice);
    await waitFor(() => b.events.length === 3 && c.events.length === 3, 10_000, 'events on b and c');
    await sleep(300);
    assert.deepEqual(b.events, slice);
    assert.deepEqual(c.events, slice);
    assert.equal(a.events.length, 0, 'no echo to the origin');
    assert.equal(await streamLength(), 1, 'one stream entry for the slice');
    assert.equal(await metricValue(a.registry, 'apiary_cluster_fanout_sent_total', { kind: 'events' }), 3);
    assert.equal(await metricValue(b.registry, 'apiary_cluster_fanout_received_total', { kind: 'events' }), 3);
  });

  it('client publishes of one turn go as one entry; binary payloads arrive intact', async () => {
    const [a, b] = [members[0]!, members[1]!];
    const before = await streamLength();
    const binary = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
    b.fanout.published('sensor', 'raw.bin', binary);
    b.fanout.published('sensor', 'text', 'hello');
    await waitFor(() => a.publications.length === 2, 10_000, 'publications on a');
    assert.deepEqual(a.publications, [
      { ident: 'sensor', channel: 'raw.bin', payload: binary },
      { ident: 'sensor', channel: 'text', payload: Buffer.from('hello') },
    ]);
    assert.equal((await streamLength()) - before, 1);
    assert.equal(b.publications.length, 0);
  });

  it('skips an entry written twice (a resent XADD) and counts a gap in sequence numbers', async () => {
    const b = members[1]!;
    const writer = new Redis(redis.url);
    try {
      const start = b.events.length;
      const json = (id: number) => JSON.stringify([[id, 'n', 'p', 'cowrie', 'cowrie.x', 1, 2, 0, '{}']]);
      await writer.xadd(key, '*', 'o', 'ghost/1', 's', '1', 'e', json(100));
      await writer.xadd(key, '*', 'o', 'ghost/1', 's', '1', 'e', json(100)); // resent
      await writer.xadd(key, '*', 'o', 'ghost/1', 's', '4', 'e', json(101)); // 2 and 3 lost
      await waitFor(() => b.events.length >= start + 2, 10_000, 'ghost events');
      await sleep(300);
      assert.deepEqual(b.events.slice(start).map((e) => e.id), [100, 101]);
      assert.equal(await metricValue(b.registry, 'apiary_cluster_fanout_lost_total', { reason: 'gap' }), 2);
    } finally {
      writer.disconnect();
    }
  });

  it('a Redis restart loses nothing: writes made while it is down are sent after, readers go on from their position', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    const [bStart, cStart] = [b.events.length, c.events.length];
    a.fanout.committed([event(200)]);
    await waitFor(() => b.events.length === bStart + 1 && c.events.length === cStart + 1, 10_000, 'before restart');
    await redis.stop();
    a.fanout.committed([event(201)]); // waits in the client for Redis
    await sleep(200);
    await redis.restart();
    a.fanout.committed([event(202)]);
    await waitFor(() => b.events.length === bStart + 3 && c.events.length === cStart + 3, 15_000, 'after restart');
    await sleep(300);
    assert.deepEqual(b.events.slice(bStart).map((e) => e.id), [200, 201, 202]);
    assert.deepEqual(c.events.slice(cStart).map((e) => e.id), [200, 201, 202]);
    assert.equal(await metricValue(b.registry, 'apiary_cluster_fanout_lost_total', { reason: 'gap' }), 2, 'no new gap');
  });

  it('a batch goes on the stream once whoever hands it on; the core that committed it skips it; no gap is counted', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    const [aStart, bStart, cStart] = [a.events.length, b.events.length, c.events.length];
    const gapsBefore = await metricValue(c.registry, 'apiary_cluster_fanout_lost_total', { reason: 'gap' });
    // a commits and hands on; b, finding the batch in the outbox too (a slow a), writes nothing.
    const batch = [event(300), event(301, { fromStatus: true, eventType: 'status_message' })];
    assert.equal(await a.fanout.committed(batch), true);
    assert.equal(await b.fanout.handOn(batch, 'a/boot'), false, 'already on the stream');
    // A batch a committed and never handed on (killed): b hands it on, publishes it itself, and
    // so does c; a, alive after all, published it at commit and skips it.
    const orphan = [event(400), event(401)];
    assert.equal(await b.fanout.handOn(orphan, 'a/boot'), true);
    assert.equal(await c.fanout.handOn(orphan, 'a/boot'), false, 'a second relay writes nothing');
    assert.equal(await a.fanout.committed(orphan), true, 'a late committer finds it written: done, not failed');
    await waitFor(() => c.events.length >= cStart + 4 && b.events.length >= bStart + 4, 10_000, 'both batches on b and c');
    await sleep(400);
    assert.deepEqual(c.events.slice(cStart), [...batch, ...orphan]);
    assert.deepEqual(b.events.slice(bStart), [...batch, ...orphan], 'b: a\'s batch from the stream, the orphan published by b itself');
    assert.equal(a.events.length, aStart, 'a gets neither back');
    assert.equal(await metricValue(c.registry, 'apiary_cluster_fanout_lost_total', { reason: 'gap' }), gapsBefore, 'empty entries keep every sequence whole');
  });

  it('starts without Redis (gives up waiting for the read position) and closes without hanging', async () => {
    const { freePort } = await import('../../src/redis/index.js');
    const url = `redis://127.0.0.1:${await freePort()}`;
    const clients = [0, 1].map(() => new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 50 }).on('error', () => undefined));
    const fanout = new ClusterFanout({ redis: clients[0]!, reader: clients[1]!, key, origin: 'away/boot', maxLen: 100, logger: silentLogger() });
    const started = Date.now();
    await fanout.start({ events: () => undefined, publications: () => undefined }, 300);
    assert.ok(Date.now() - started < 5000);
    const handedOn = fanout.committed([event(1)]);
    const closing = Date.now();
    await fanout.close();
    assert.ok(Date.now() - closing < 8000, `close took ${Date.now() - closing} ms`);
    assert.notEqual(await Promise.race([handedOn, sleep(1000).then(() => 'pending')]), true, 'never reported as handed on: its outbox note stays');
    for (const c of clients) c.disconnect();
  });

  async function streamLength(): Promise<number> {
    const r = new Redis(redis.url);
    try {
      return await r.xlen(key);
    } finally {
      r.disconnect();
    }
  }
});
