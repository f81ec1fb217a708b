// REDIS_URL beyond one server: the URL forms, and the command queue delivering through a master
// found by Sentinel (across a failover) and through a three-master Redis Cluster.
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createRedisSubscriber, describeRedisTarget, parseRedisUrl, queuePrefixFor } from '../../src/redis/index.js';
import { startStack, type Stack } from '../commands/harness.js';
import { startTestCluster, startTestSentinel, type TestCluster, type TestSentinel } from '../helpers/redis-topologies.js';

describe('REDIS_URL forms', () => {
  it('one server, sentinel and cluster, with credentials, TLS, database and defaults', () => {
    assert.deepEqual(parseRedisUrl('redis://:pw@10.0.0.1:6380/2'), { kind: 'server', url: 'redis://:pw@10.0.0.1:6380/2' });
    assert.deepEqual(parseRedisUrl('redis+sentinel://app:s%40cret@s1:26380,s2,[::1]:26381/main/3?sentinel_password=sp&sentinel_username=su'), {
      kind: 'sentinel',
      sentinels: [{ host: 's1', port: 26380 }, { host: 's2', port: 26379 }, { host: '::1', port: 26381 }],
      masterName: 'main',
      db: 3,
      tls: false,
      username: 'app',
      password: 's@cret',
      sentinelUsername: 'su',
      sentinelPassword: 'sp',
    });
    assert.deepEqual(parseRedisUrl('rediss+sentinel://h/m'), { kind: 'sentinel', sentinels: [{ host: 'h', port: 26379 }], masterName: 'm', db: 0, tls: true });
    assert.deepEqual(parseRedisUrl('redis+cluster://:pw@c1:7000,c2:7001'), {
      kind: 'cluster',
      nodes: [{ host: 'c1', port: 7000 }, { host: 'c2', port: 7001 }],
      tls: false,
      password: 'pw',
    });
    assert.deepEqual(parseRedisUrl('rediss+cluster://c1'), { kind: 'cluster', nodes: [{ host: 'c1', port: 6379 }], tls: true });
  });

  it('says what is wrong with a bad URL, and the config refuses it at startup', () => {
    const cases: Array<[string, RegExp]> = [
      ['http://h', /scheme must be redis:\/\//],
      ['redis+sentinel://h:26379', /needs the master name/],
      ['redis+sentinel://h/m/x', /database must be a whole number, not "x"/],
      ['redis+sentinel://h/m/1/2', /path is \/<master>\[\/<db>\]/],
      ['redis+cluster://h:7000/0', /takes no path/],
      ['redis+cluster://h:70000', /port 70000 of "h:70000" is out of range/],
      ['redis+cluster://h:x', /"h:x" is not host\[:port\]/],
      ['redis+cluster://a,,b', /"" is not host\[:port\]/],
      ['redis://', /redis:\/\/ URL needs a host/],
      ['rediss://h:99999', /not a valid rediss:\/\/ URL/],
    ];
    for (const [url, message] of cases) assert.throws(() => parseRedisUrl(url), message, url);
    assert.throws(() => loadConfig([], { REDIS_URL: 'redis+sentinel://h:26379' }), /REDIS_URL.*needs the master name/s);
    assert.equal(loadConfig([], { REDIS_URL: 'redis+cluster://h:7000' }).redisUrl, 'redis+cluster://h:7000');
  });

  it('cluster prefixes are hash tags; descriptions for logs leave the password out', () => {
    assert.equal(queuePrefixFor(parseRedisUrl('redis+cluster://h'), 'bull'), '{bull}');
    assert.equal(queuePrefixFor(parseRedisUrl('redis+cluster://h'), '{mine}:q'), '{mine}:q');
    assert.equal(queuePrefixFor(parseRedisUrl('redis+sentinel://h/m'), 'bull'), 'bull');
    for (const url of ['redis://u:topsecret@h:1/0', 'redis+sentinel://u:topsecret@h/m?sentinel_password=topsecret', 'rediss+cluster://:topsecret@h:7000']) {
      assert.doesNotMatch(describeRedisTarget(parseRedisUrl(url)), /topsecret/);
    }
    assert.equal(describeRedisTarget(parseRedisUrl('rediss+cluster://:x@a:1,b:2')), 'cluster a:1,b:2 (TLS)');
  });
});

describe('command queue through Redis Sentinel', () => {
  let sentinel: TestSentinel;
  let stack: Stack;
  before(async () => {
    sentinel = await startTestSentinel();
    stack = await startStack({ redisUrl: sentinel.url });
  });
  after(async () => {
    await stack?.close();
    await sentinel?.dispose();
  });

  it('delivers commands to the master the sentinel names, before and after a failover', async () => {
    await stack.node('s1', { pots: [{ id: 'x', type: 'cowrie', status: 'Running' }] });
    const first = await stack.settled((await stack.post('s1', { GetPotStatus: 'x' })).id);
    assert.equal(first.status, 'succeeded', JSON.stringify(first));
    const oldMaster = await sentinel.masterPort();
    const newMaster = await sentinel.failover();
    assert.notEqual(newMaster, oldMaster);
    // Queued during or after the switch: the queue follows the new master and delivers it.
    const second = await stack.settled((await retryPost(stack, 's1', { GetPotInfo: 'x' })).id, 30_000);
    assert.equal(second.status, 'succeeded', JSON.stringify(second));
  });
});

describe('command queue on a Redis Cluster', () => {
  let cluster: TestCluster;
  let stack: Stack;
  before(async () => {
    cluster = await startTestCluster();
    stack = await startStack({ redisUrl: cluster.url });
  });
  after(async () => {
    await stack?.close();
    await cluster?.dispose();
  });

  it('delivers commands, with every BullMQ key under the hash-tagged prefix (one slot)', async () => {
    await stack.node('c1', { pots: [{ id: 'x', type: 'cowrie', status: 'Running' }] });
    for (const command of [{ GetPotStatus: 'x' }, { GetPotInfo: 'x' }]) {
      const view = await stack.settled((await stack.post('c1', command)).id);
      assert.equal(view.status, 'succeeded', JSON.stringify(view));
    }
    const client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    try {
      await new Promise((resolve) => client.once('ready', resolve));
      assert.equal(client.nodes('master').length, 3);
      const keys: string[] = [];
      for (const node of client.nodes('master')) keys.push(...(await node.keys('*')));
      assert.ok(keys.length > 0, 'the queue wrote keys');
      assert.deepEqual(keys.filter((k) => !k.startsWith('{bull}:')), [], 'every key is hash-tagged');
      assert.equal(new Set(keys.map(slotOf)).size, 1, 'all in one slot');
    } finally {
      client.disconnect();
    }
  });
});

describe('pub/sub subscription on a Redis Cluster', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startTestCluster();
  });
  after(async () => {
    await cluster?.dispose();
  });

  it("says 'ready' after every reconnect and moves to another node when its own dies, hearing every publish", async () => {
    const sub = createRedisSubscriber(parseRedisUrl(cluster.url), { connectionName: 'topology-sub', maxRetriesPerRequest: null });
    const admins = new Map(cluster.ports.map((port) => [port, new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 }).on('error', () => undefined)]));
    let readies = 0;
    const heard: string[] = [];
    sub.on('ready', () => readies++).on('error', () => undefined).on('message', (channel, message) => heard.push(`${channel} ${message}`));
    const holder = async () => {
      for (const [port, admin] of admins) if (admin.status === 'ready' && /name=topology-sub /.test(String(await admin.client('LIST')))) return port;
      return undefined;
    };
    // A publish on any node reaches a subscriber on any other.
    const publishElsewhere = async (than: number, message: string) => {
      const [, admin] = [...admins].find(([port, a]) => port !== than && a.status === 'ready')!;
      await waitUntil(async () => {
        await admin.publish('notices', message);
        await new Promise((r) => setTimeout(r, 50));
        return heard.includes(`notices ${message}`);
      }, `"${message}" heard`);
    };
    try {
      // The admin connections were opened just above: ping each so holder() sees them ready
      // (a connection still connecting is skipped, and the subscriber would look like nowhere).
      await Promise.all([...admins.values()].map((admin) => admin.ping()));
      await sub.subscribe('notices');
      await waitUntil(async () => (await holder()) !== undefined, 'the subscriber listed on one of the nodes');
      const first = (await holder())!;
      await publishElsewhere(first, 'one');
      assert.equal(readies, 1);
      // The connection dropped (the node still there): it comes back to the same node and says so.
      await admins.get(first)!.client('KILL', 'TYPE', 'pubsub');
      await waitUntil(async () => readies === 2, "'ready' after the reconnect");
      await publishElsewhere(first, 'two');
      // The node dies: the subscription moves to another node and says so.
      await cluster.kill(first);
      admins.get(first)!.disconnect();
      await waitUntil(async () => readies >= 3 && (await holder()) !== undefined, "'ready' on another node");
      const second = (await holder())!;
      assert.notEqual(second, first);
      await publishElsewhere(second, 'three');
      assert.deepEqual([...new Set(heard)], ['notices one', 'notices two', 'notices three']);
    } finally {
      await sub.close();
      for (const a of admins.values()) a.disconnect();
    }
  });
});

async function waitUntil(cond: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** During a failover the API may answer 503 (Redis unavailable) for a moment: retry briefly. */
async function retryPost(stack: Stack, name: string, command: unknown) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await stack.post(name, command);
    } catch (err) {
      if (Date.now() > deadline || !/: 503 /.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The hash tag a cluster slots a key by (the part in the first {...}, else the whole key). */
function slotOf(key: string): string {
  const m = /\{([^}]+)\}/.exec(key);
  return m ? m[1]! : key;
}
