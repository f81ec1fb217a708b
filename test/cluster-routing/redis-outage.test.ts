// Redis away for longer than an instance's liveness window (three missed heartbeats), for every
// instance at once: a restart, or a Sentinel / Cluster failover with their default timeouts (30 s,
// 15 s). Nobody could beat meanwhile, so when Redis is back every other instance's score has run
// out; none of them may be taken for dead for that (their nodes released and marked Offline while
// still connected).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { connectNode, settledCommands, startFleet, waitFor, type Fleet, type Instance } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a Redis outage longer than the liveness window', { timeout: 90_000 }, () => {
  let redis: TestRedis;
  let fleet: Fleet;
  let a: Instance, b: Instance;

  before(async () => {
    // Append-only: what the registry holds survives the restart, as it would a failover.
    redis = await startTestRedis({ appendOnly: true });
    fleet = await startFleet(['a', 'b'], {}, { redisUrl: redis.url });
    [a, b] = fleet.instances as [Instance, Instance];
  });
  after(async () => {
    await fleet?.close();
    await redis?.dispose();
  });

  it("takes no instance for dead: the node stays online on a, and b's commands reach it", async () => {
    const secret = await fleet.provision(b, 'steady');
    const received: string[] = [];
    await connectNode(fleet, a, 'steady', secret, received);
    await settledCommands(b, 'steady');
    await redis.stop();
    await sleep(7000); // more than three heartbeats (2 s each)
    await redis.restart();
    // Both instances are back (their notices reconnected, their heartbeats landed) and have had
    // the chance to judge each other a few times.
    await sleep(5000);
    assert.equal(a.core.gateway.isOnline('steady'), true, 'the session on a is untouched');
    for (const via of [a, b]) {
      const seen = (await via.api('GET', '/api/v1/nodes/steady')).body;
      assert.equal(seen.online, true, `${via.id}: ${JSON.stringify(seen)}`);
      assert.notEqual(seen.status, 'Offline', `${via.id}: not marked Offline while connected`);
    }
    const id = await waitFor(async () => {
      const res = await b.api('POST', '/api/v1/nodes/steady/commands', { command: { GetPotStatus: 'p1' } });
      return res.status === 201 ? (res.body.id as string) : undefined;
    }, 'the command accepted');
    await waitFor(async () => (await b.api('GET', `/api/v1/commands/${id}`)).body.status === 'succeeded', 'the command to succeed', 10_000);
    assert.deepEqual(received.filter((k) => k === 'GetPotStatus'), ['GetPotStatus']);
  });
});
