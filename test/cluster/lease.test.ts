// The leader lease on a real redis-server: several holders, driven by hand (tick) where the test
// needs to control who tries when, and by their own timers for the take-over.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { LeaderLease } from '../../src/cluster/index.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { silentLogger, waitFor } from '../events/helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('leader lease', () => {
  let redis: TestRedis;
  let client: Redis;
  let n = 0;
  const leases: LeaderLease[] = [];

  const holders = (count: number, leaseMs: number, key = `lease-${++n}`) => {
    const made = Array.from({ length: count }, (_, i) => new LeaderLease({ redis: client, key, holder: `core-${i}`, leaseMs, logger: silentLogger() }));
    leases.push(...made);
    return { made, key };
  };
  const leaders = (ls: LeaderLease[]) => ls.filter((l) => l.leading);

  before(async () => {
    redis = await startTestRedis({ appendOnly: false });
    client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    for (const l of leases) await l.stop({ release: false });
    client.disconnect();
    await redis.dispose();
  });

  it('of several holders trying at once, exactly one leads, and keeps leading while it renews', async () => {
    const { made, key } = holders(4, 5000);
    const results = await Promise.all(made.map((l) => l.tick()));
    assert.equal(results.filter(Boolean).length, 1);
    const [leader] = leaders(made);
    assert.ok(leader);
    assert.equal(await client.get(key), made.find((l) => l === leader) && `core-${made.indexOf(leader)}`);
    for (let round = 0; round < 3; round++) {
      await Promise.all(made.map((l) => l.tick()));
      assert.deepEqual(leaders(made), [leader]);
    }
    // Every follower knows who leads.
    for (const l of made) assert.equal(l.leader, `core-${made.indexOf(leader)}`);
    // A renew extends the key's expiry (compare-and-set by its holder).
    const ttl = await client.pttl(key);
    assert.ok(ttl > 4000 && ttl <= 5000, `ttl ${ttl}`);
  });

  it('a holder that stops renewing (dies) is replaced once its lease runs out, not before', async () => {
    const { made } = holders(3, 600);
    await made[0]!.tick();
    assert.ok(made[0]!.leading);
    await made[0]!.stop({ release: false }); // dies: no release, no renew
    await Promise.all(made.slice(1).map((l) => l.tick()));
    assert.deepEqual(leaders(made), [], 'nobody may lead while the dead holder lease is still valid');
    await sleep(700);
    await Promise.all(made.slice(1).map((l) => l.tick()));
    assert.equal(leaders(made).length, 1);
    assert.notEqual(leaders(made)[0], made[0]);
  });

  it('a paused old leader stops counting itself leader on its own clock and cannot renew after losing', async () => {
    const { made, key } = holders(2, 500);
    const [old, next] = made as [LeaderLease, LeaderLease];
    await old.tick();
    assert.ok(old.leading);
    await sleep(600); // "paused": no renew within the lease
    assert.equal(old.leading, false, 'past its lease, by its own clock');
    await next.tick();
    assert.ok(next.leading);
    // The old holder wakes up and renews: the compare-and-set refuses it.
    assert.equal(await old.tick(), false);
    assert.equal(old.leading, false);
    assert.equal(await client.get(key), 'core-1');
    assert.equal(old.leader, 'core-1');
    await next.tick();
    assert.deepEqual(leaders(made), [next]);
  });

  it('a graceful stop releases the lease at once (compare-and-delete: only its own)', async () => {
    const { made, key } = holders(2, 60_000);
    await made[0]!.tick();
    await made[0]!.stop({ release: true });
    assert.equal(await client.get(key), null);
    assert.equal(await made[1]!.tick(), true);
    // A holder that no longer holds the key must not delete the new holder's.
    const stale = new LeaderLease({ redis: client, key, holder: 'core-0', leaseMs: 60_000, logger: silentLogger() });
    await stale.stop({ release: true });
    assert.equal(await client.get(key), 'core-1');
    await made[1]!.stop({ release: true });
  });

  it('with their own timers, another holder takes over within about one lease of the leader dying; the gauge says who leads', async () => {
    const key = `lease-${++n}`;
    const registries = [0, 1, 2].map(() => new Registry());
    const made = registries.map(
      (registry, i) => new LeaderLease({ redis: client, key, holder: `core-${i}/boot`, instance: `core-${i}`, leaseMs: 1000, registry, logger: silentLogger() }),
    );
    leases.push(...made);
    for (const l of made) l.start();
    await waitFor(() => leaders(made).length === 1, 10_000, 'a leader');
    const first = leaders(made)[0]!;
    const gauges = await Promise.all(registries.map(async (r) => (await r.getSingleMetricAsString('apiary_cluster_leader')).match(/ (\d)$/m)?.[1]));
    assert.deepEqual(gauges.map(Number), made.map((l) => (l === first ? 1 : 0)));
    const changes: boolean[] = [];
    first.onChange((leading) => changes.push(leading));
    const diedAt = Date.now();
    await first.stop({ release: false });
    assert.deepEqual(changes, [false]);
    await waitFor(() => leaders(made).length === 1, 10_000, 'a new leader');
    assert.notEqual(leaders(made)[0], first);
    // lease (1000) + a renew period (333) + scheduling slack on a loaded machine
    assert.ok(Date.now() - diedAt < 5000, `take-over took ${Date.now() - diedAt} ms`);
    // Still exactly one after a few renew periods.
    await sleep(800);
    assert.equal(leaders(made).length, 1);
  });
});
