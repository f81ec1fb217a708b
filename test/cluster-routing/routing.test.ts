// Session routing with three composed instances (a, b, c) sharing one SQLite file and one Redis:
// commands reach the node wherever its session lives, exactly once and in order; a node that
// registers on another instance takes its session over (the stale one is closed at once, the
// command in flight and those queued behind it are neither lost nor doubled); revoking a node on
// one instance closes its connection on another.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { connectNode, postCommand as post, settledCommands, startFleet, waitFor, type Fleet, type Instance } from './helpers.js';

describe('session routing across three instances', { timeout: 120_000 }, () => {
  let fleet: Fleet;
  let a: Instance, b: Instance, c: Instance;

  before(async () => {
    fleet = await startFleet(['a', 'b', 'c']);
    [a, b, c] = fleet.instances as [Instance, Instance, Instance];
  });
  after(async () => {
    await fleet?.close();
  });

  it('delivers a command sent through b to the node connected to a, once', async () => {
    const secret = await fleet.provision(b, 'n1');
    const received: string[] = [];
    await connectNode(fleet, a, 'n1', secret, received);
    assert.equal(a.core.gateway.isOnline('n1'), true);
    assert.equal(b.core.gateway.isOnline('n1'), false, 'b holds no session of its own');
    await settledCommands(b, 'n1'); // the GetInstalledPots of the registration
    const id = await post(b, 'n1', { GetPotStatus: 'p1' });
    const done = await waitFor(async () => {
      const v = (await c.api('GET', `/api/v1/commands/${id}`)).body;
      return v.status === 'succeeded' ? v : undefined;
    }, 'the command to succeed');
    assert.equal(done.result.potStatus, 'Running');
    assert.deepEqual(received.filter((k) => k === 'GetPotStatus'), ['GetPotStatus']);
  });

  it('a node that registers on c takes its session over from a: the stale one closes, the command in flight and those behind it are delivered once, in order', async () => {
    const secret = await fleet.provision(a, 'n2');
    const onA: string[] = [];
    const first = await connectNode(fleet, a, 'n2', secret, onA);
    await settledCommands(b, 'n2');
    onA.length = 0;

    // UpdateConfig stays in flight for the answer grace (2 s); three more queue behind it.
    const ids = [
      await post(b, 'n2', { UpdateConfig: {} }),
      await post(b, 'n2', { GetPotStatus: 'p1' }),
      await post(c, 'n2', { GetPotInfo: 'p1' }),
      await post(a, 'n2', { GetPotLogs: 'p1' }),
    ];
    await waitFor(() => onA.includes('UpdateConfig'), 'UpdateConfig to reach the node on a');
    const staleClosed = first.waitFor('disconnected');

    // The same node reconnects through c (one TOTP step later: a code is good once) while its
    // session on a still looks alive there.
    const onC: string[] = [];
    await connectNode(fleet, c, 'n2', secret, onC, { clock: () => Date.now() + 30_000 });
    await staleClosed;
    await waitFor(() => !a.core.gateway.isOnline('n2'), 'a to drop its stale session');
    assert.equal(c.core.gateway.isOnline('n2'), true);

    const list = await settledCommands(b, 'n2');
    const mine = list.filter((x) => ids.includes(x.id)).sort((x, y) => x.seq - y.seq);
    assert.deepEqual(mine.map((x) => [x.kind, x.status]), [
      ['UpdateConfig', 'succeeded'],
      ['GetPotStatus', 'succeeded'],
      ['GetPotInfo', 'succeeded'],
      ['GetPotLogs', 'succeeded'],
    ]);
    const delivered = [...onA, ...onC].filter((k) => k !== 'GetInstalledPots');
    assert.deepEqual(delivered, ['UpdateConfig', 'GetPotStatus', 'GetPotInfo', 'GetPotLogs'], 'each once, in order');
    assert.deepEqual(onA.filter((k) => k !== 'GetInstalledPots'), ['UpdateConfig'], 'nothing more went to the stale session');
    const metrics = String(await a.core.registry.metrics());
    assert.match(metrics, /^apiary_routing_takeovers_total 1$/m);
    assert.match(metrics, /^apiary_routing_live_instances 3$/m);

    // The stored state follows the new session: the stale close did not mark the node Offline.
    const seen = (await a.api('GET', '/api/v1/nodes/n2')).body;
    assert.equal(seen.online, true);
    assert.notEqual(seen.status, 'Offline');
  });

  it('commands accepted through a and b while the node is offline are delivered once, in order, by c where it connects', async () => {
    const secret = await fleet.provision(b, 'n4');
    const first = await post(b, 'n4', { GetPotStatus: 'p1' });
    const second = await post(a, 'n4', { GetPotInfo: 'p1' });
    const received: string[] = [];
    await connectNode(fleet, c, 'n4', secret, received);
    const list = await settledCommands(a, 'n4');
    const byId = new Map(list.map((x) => [x.id, x.status]));
    assert.deepEqual([byId.get(first), byId.get(second)], ['succeeded', 'succeeded']);
    assert.deepEqual(received, ['GetPotStatus', 'GetPotInfo', 'GetInstalledPots']);
  });

  it('a registry entry lost in Redis is claimed again by its holder once its notices reconnect', async () => {
    const secret = await fleet.provision(a, 'n5');
    const received: string[] = [];
    await connectNode(fleet, b, 'n5', secret, received);
    await settledCommands(c, 'n5');
    const probe = new Redis(fleet.redisUrl);
    try {
      assert.equal(await probe.hdel('{apiary-routing}:owners', 'n5'), 1);
      // Every instance's notice connection drops and comes back, as after a Redis outage.
      await probe.client('KILL', 'TYPE', 'pubsub');
      await waitFor(async () => (await probe.hexists('{apiary-routing}:owners', 'n5')) === 1, 'b to claim n5 again');
    } finally {
      probe.disconnect();
    }
    const id = await post(c, 'n5', { GetPotStatus: 'p1' });
    await waitFor(async () => (await a.api('GET', `/api/v1/commands/${id}`)).body.status === 'succeeded', 'the command through c');
    assert.deepEqual(received.filter((k) => k === 'GetPotStatus'), ['GetPotStatus']);
  });

  it('revoking a node through b closes its connection on a at once', async () => {
    const secret = await fleet.provision(c, 'n3');
    const node = await connectNode(fleet, a, 'n3', secret, []);
    const closed = node.waitFor('disconnected');
    const res = await b.api('POST', '/api/v1/nodes/n3/revoke');
    assert.equal(res.status, 200);
    await closed;
    await waitFor(() => !a.core.gateway.isOnline('n3'), 'a to close the revoked node');
    await waitFor(async () => (await c.api('GET', '/api/v1/nodes/n3')).body.online === false, 'c to see it offline');
  });
});
