// Two composed cores in cluster mode (INSTANCE_ID) on the Redis deployments REDIS_URL can name
// besides one server: a three-master Redis Cluster and a master found through Sentinel. What the
// single-server suites (cores, routing, shared limits) prove must hold there too: a node's events
// on A reach B's hpfeeds subscriber once each (fan-out stream, cowrie sessions in Redis); a command
// sent through B reaches the node on A (registry, per-instance queue); guess limits add up and
// revocations travel (routing notices over pub/sub); one core leads and the other takes over. On
// the Cluster every key these parts write sits in one hash slot per purpose, so their multi-key
// scripts and MULTIs cannot meet CROSSSLOT; through Sentinel all of it carries on when the master dies
// and the replica is promoted.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { WebSocket } from 'ws';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import type { SimulatedNode } from '../../src/simulator/index.js';
import { Inbox, metricValue } from '../events/helpers.js';
import { connectNode, settledCommands, startFleet, waitFor, type Fleet, type Instance } from '../cluster-routing/helpers.js';
import { startTestCluster, startTestSentinel, type TestCluster, type TestSentinel } from '../helpers/redis-topologies.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Topology {
  url: string;
  dispose(): Promise<void>;
}

interface Context {
  fleet: Fleet;
  a: Instance;
  b: Instance;
  /** The node, connected to a. */
  node: SimulatedNode;
  /** Commands the node received. */
  received: string[];
  /** hpfeeds subscriber on b. */
  inboxB: Inbox;
  /** Events sent so far (their data.n runs on across the cases). */
  sent: number;
}

/** The cases every topology runs; `extra` adds the topology's own before the lease's (which stops a core). */
function twoCoresOn(name: string, startTopology: () => Promise<Topology>, extra: (ctx: () => Context, topology: () => Topology) => void): void {
  describe(`two cores in cluster mode on ${name}`, { timeout: 120_000 }, () => {
    let topology: Topology;
    let ctx: Context;
    const closers: (() => Promise<unknown>)[] = [];

    before(async () => {
      topology = await startTopology();
      const fleet = await startFleet(['a', 'b'], { CLUSTER_LEASE_MS: '1500' }, { redisUrl: topology.url });
      const [a, b] = fleet.instances as [Instance, Instance];
      const key = await a.api('POST', '/api/v1/hpfeeds/authkeys', { ident: 'analyst', subchans: ['cowrie.events', 'cowrie.sessions', 'probe'], pubchans: ['probe'] });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      const sub = new HpfeedsClient({ host: '127.0.0.1', port: b.core.addresses.hpfeeds[0]!.port, ident: 'analyst', secret: key.body.secret, reconnect: false });
      closers.push(() => sub.close());
      const inboxB = new Inbox(sub);
      await sub.connect();
      sub.subscribe(['cowrie.events', 'cowrie.sessions', 'probe']);
      // hpfeeds never acknowledges SUBSCRIBE: our own probe coming back proves the broker has it.
      sub.publish('probe', 'here');
      await waitFor(() => inboxB.on('probe').length > 0, 'the probe echo on b');
      const secret = await fleet.provision(b, 'edge');
      const received: string[] = [];
      const node = await connectNode(fleet, a, 'edge', secret, received);
      ctx = { fleet, a, b, node, received, inboxB, sent: 0 };
    });

    after(async () => {
      for (const c of closers.reverse()) await c().catch(() => undefined);
      await ctx?.fleet.close();
      await topology?.dispose();
    });

    it("a node's events committed on a reach b's hpfeeds subscriber once each, and its cowrie session's summary once", async () => {
      await sendAndCheckFanout(ctx, 20);
      const { node, inboxB } = ctx;
      potEvent(node, 'cowrie.session.connect', { session: 'topo1', src_ip: '203.0.113.9', src_port: 40100, dst_port: 22, protocol: 'ssh' });
      potEvent(node, 'cowrie.login.success', { session: 'topo1', username: 'root', password: 'toor' });
      potEvent(node, 'cowrie.session.closed', { session: 'topo1', duration: 2 });
      // The real node's text form too: its open sessions are kept in Redis per node (one MULTI).
      node.send({ type: 'PotStatusUpdate', node_id: node.nodeId, pot_id: 'vm', pot_type: '', status: '', message: 'New connection: 198.51.100.7:50001 (10.0.0.2:2222) [session: feedc0de0001]' });
      await waitFor(() => inboxB.on('cowrie.sessions').some((m) => JSON.parse(m.payload).session === 'topo1'), 'the summary on b');
      await sleep(300);
      const summaries = inboxB.on('cowrie.sessions').map((m) => JSON.parse(m.payload)).filter((s) => s.session === 'topo1');
      assert.equal(summaries.length, 1, JSON.stringify(summaries));
      assert.deepEqual(summaries[0].loggedin, ['root', 'toor']);
      assert.equal(summaries[0].peerIP, '203.0.113.9');
    });

    it('a command sent through b reaches the node connected to a, once', async () => {
      await sendAndCheckCommand(ctx, { GetPotStatus: 'p1' }, 'GetPotStatus');
    });

    it('failed logins through a and b add up to one budget; a token revoked and a node revoked through b are acted on at a', async () => {
      const { a, b, fleet } = ctx;
      const created = await a.api('POST', '/api/v1/users', { username: 'ann', role: 'viewer', password: 'correct horse battery staple' });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const login = async (via: Instance, password: string) => (await via.api('POST', '/api/v1/session', { username: 'ann', password })).status;
      // 10 failures per username and 15 minutes, shared: 5 through each core.
      for (let i = 0; i < 10; i++) assert.equal(await login(i % 2 ? a : b, `wrong password ${i}`), 401);
      assert.equal(await login(a, 'correct horse battery staple'), 429);
      assert.equal(await login(b, 'correct horse battery staple'), 429);

      // A live stream on a with a token that b revokes: a closes it on b's notice.
      const token = await a.api('POST', '/api/v1/tokens', { name: 'watcher', role: 'viewer' });
      assert.equal(token.status, 201, JSON.stringify(token.body));
      const ws = new WebSocket(`ws://127.0.0.1:${a.core.addresses.api.port}/api/v1/events/stream`, { headers: { authorization: `Bearer ${token.body.token}` } });
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      assert.equal((await b.api('DELETE', `/api/v1/tokens/${token.body.id}`)).status, 204);
      await closed;
      await waitFor(async () => (await metricValue(a.core.registry, 'apiary_routing_notices_received_total', { kind: 'tokensRevoked' })) === 1, 'the tokensRevoked notice at a');

      // A second node on a, revoked through b: its connection on a closes at once.
      const secret = await fleet.provision(a, 'doomed');
      const doomed = await connectNode(fleet, a, 'doomed', secret, []);
      const gone = doomed.waitFor('disconnected');
      assert.equal((await b.api('POST', '/api/v1/nodes/doomed/revoke')).status, 200);
      await gone;
      await waitFor(() => !a.core.gateway.isOnline('doomed'), 'a to close the revoked node');
      assert.equal(await metricValue(a.core.registry, 'apiary_routing_notices_received_total', { kind: 'disconnect' }), 1);
    });

    extra(() => ctx, () => topology);

    it('exactly one core leads; when it stops the other takes over', async () => {
      const { a, b } = ctx;
      const leaders = () => [a, b].filter((i) => i.core.cluster!.leading());
      await waitFor(() => leaders().length === 1, 'one leader');
      await sleep(1000); // more than half a lease: the other core tried at least once meanwhile
      assert.equal(leaders().length, 1);
      const [leader] = leaders();
      const other = leader === a ? b : a;
      for (const i of [a, b]) assert.equal(await metricValue(i.core.registry, 'apiary_cluster_fanout_lost_total'), 0, `no fan-out entry lost on ${i.id}`);
      await leader!.core.close();
      await waitFor(() => other.core.cluster!.leading(), `${other.id} to take over`, 10_000);
    });
  });
}

function potEvent(n: SimulatedNode, eventType: string, data: Record<string, unknown>): void {
  const now = new Date().toISOString();
  assert.ok(n.send({ type: 'PotEvent', node_id: n.nodeId, pot_id: 'p1', pot_type: 'cowrie', event_type: eventType, timestamp: now, data: { timestamp: now, ...data } }));
}

/** Sends `count` marked events to the node's core (a); b's subscriber must get each once, in order. */
async function sendAndCheckFanout(ctx: Context, count: number, meanwhile?: Promise<unknown>): Promise<void> {
  const from = ctx.sent;
  for (let i = from; i < from + count; i++) potEvent(ctx.node, 'cowrie.login.failed', { n: i, username: 'root', password: `p${i}` });
  ctx.sent += count;
  await meanwhile;
  const marked = () => ctx.inboxB.on('cowrie.events').map((m) => JSON.parse(m.payload) as { id: number; data: { n?: number } }).filter((e) => typeof e.data.n === 'number');
  await waitFor(() => marked().length >= ctx.sent, `${ctx.sent} events at b`);
  await sleep(300);
  assert.deepEqual(marked().map((e) => e.data.n), [...Array(ctx.sent).keys()], 'each event once, in order');
  assert.equal(new Set(marked().map((e) => e.id)).size, ctx.sent);
}

async function sendAndCheckCommand(ctx: Context, command: Record<string, string>, kind: string): Promise<void> {
  const { a, b, received } = ctx;
  assert.equal(a.core.gateway.isOnline('edge'), true);
  assert.equal(b.core.gateway.isOnline('edge'), false, 'b holds no session of its own');
  await settledCommands(b, 'edge');
  const before = received.filter((k) => k === kind).length;
  // Right after a failover the queue's client may still be finding the new master: the API
  // answers 503 (Redis unavailable) for that moment, and the operator sends again.
  const id = await waitFor(async () => {
    const res = await b.api('POST', '/api/v1/nodes/edge/commands', { command });
    if (res.status === 503) return undefined;
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  }, 'the command accepted');
  const done = await waitFor(async () => {
    const v = (await b.api('GET', `/api/v1/commands/${id}`)).body;
    return v.status === 'succeeded' || v.status === 'failed' ? v : undefined;
  }, 'the command to settle');
  assert.equal(done.status, 'succeeded', JSON.stringify(done));
  await sleep(200);
  assert.equal(received.filter((k) => k === kind).length, before + 1, 'delivered once');
}

/** Which of this project's purposes a key belongs to, by its hash tag. */
function purposeOf(key: string): string | undefined {
  if (key.startsWith('{bull}:')) return 'command queues (BullMQ)';
  if (key.startsWith('apiary:{apiary-cluster}:')) return 'cluster (fan-out, lease, cowrie sessions)';
  if (key.startsWith('{apiary-routing}:')) return 'session routing (registry, guess limits)';
  return undefined;
}

twoCoresOn(
  'a three-master Redis Cluster (one replica each)',
  async (): Promise<TestCluster> => startTestCluster({ replicas: true }),
  (ctx, topology) => {
    it('every key the cores wrote is hash-tagged: one slot per purpose (no CROSSSLOT possible)', async () => {
      const ports = (topology() as TestCluster).ports;
      const client = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })));
      try {
        await new Promise((resolve) => client.once('ready', resolve));
        const masters = client.nodes('master');
        assert.equal(masters.length, 3);
        const keys: string[] = [];
        for (const m of masters) keys.push(...(await m.keys('*')));
        assert.deepEqual(keys.filter((k) => purposeOf(k) === undefined), [], 'no key outside the three hash tags');
        const slots = new Map<string, Set<number>>();
        for (const key of keys) {
          const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
          const purpose = purposeOf(key)!;
          slots.set(purpose, (slots.get(purpose) ?? new Set()).add(slot));
        }
        for (const [purpose, set] of slots) assert.equal(set.size, 1, `${purpose}: ${[...set].join(', ')}`);
        // What the cases above made each part write (so the scripts and MULTIs did run on the cluster).
        const expected = [
          'apiary:{apiary-cluster}:fanout',
          'apiary:{apiary-cluster}:leader',
          'apiary:{apiary-cluster}:cowrie-text:edge',
          '{apiary-routing}:owners',
          '{apiary-routing}:epochs',
          '{apiary-routing}:instances',
          '{apiary-routing}:limit:login-user:ann',
        ];
        for (const k of expected) assert.ok(keys.includes(k), `${k} among ${JSON.stringify(keys.filter((x) => !x.startsWith('{bull}')))}`);
        assert.ok(keys.some((k) => k.startsWith('apiary:{apiary-cluster}:cowrie:t:')), 'the closed cowrie session left its tombstone');
        assert.ok(keys.some((k) => k.startsWith('{bull}:apiary-commands@a:')), "a's own command queue");
      } finally {
        client.disconnect();
      }
    });

    it("a registry entry lost in Redis is claimed again by its holder once its notices' connection is back", async () => {
      const client = new Cluster((topology() as TestCluster).ports.map((port) => ({ host: '127.0.0.1', port })));
      try {
        await new Promise((resolve) => client.once('ready', resolve));
        assert.equal(await client.hdel('{apiary-routing}:owners', 'edge'), 1);
        // Every core's notice connection drops and comes back (as when its node restarts), on
        // whichever node it was.
        for (const m of client.nodes('all')) await m.client('KILL', 'TYPE', 'pubsub');
        // Well before the periodic resync (30 s): the reconnect itself makes a re-read the registry.
        await waitFor(async () => (await client.hexists('{apiary-routing}:owners', 'edge')) === 1, 'a to claim edge again', 10_000);
      } finally {
        client.disconnect();
      }
      await sendAndCheckCommand(ctx(), { GetPotStatus: 'p1' }, 'GetPotStatus');
    });

    it('when the master holding the fan-out stream dies, what a commits meanwhile reaches b once its replica took over, and commands flow again', async () => {
      const { promoted } = await (topology() as TestCluster).killMasterOf('apiary:{apiary-cluster}:fanout');
      // Sent while the stream's slot has no master: a stores them; their stream entries wait.
      await sendAndCheckFanout(ctx(), 20, promoted);
      await sendAndCheckCommand(ctx(), { GetPotLogs: 'p1' }, 'GetPotLogs');
      const { a, b } = ctx();
      await waitFor(() => [a, b].filter((i) => i.core.cluster!.leading()).length === 1, 'one leader after the master died');
    });
  },
);

twoCoresOn(
  'Redis Sentinel (master and replica)',
  async (): Promise<TestSentinel> => startTestSentinel(),
  (ctx, topology) => {
    it('when the master dies, what a commits meanwhile reaches b once the replica is promoted, and commands flow again', async () => {
      const sentinel = topology() as TestSentinel;
      const before = await sentinel.masterPort();
      const { promoted } = await sentinel.killMaster();
      // Sent while there is no master: a stores them; their stream entries wait for the new one.
      await sendAndCheckFanout(ctx(), 20, promoted);
      assert.notEqual(await promoted, before);
      await sendAndCheckCommand(ctx(), { GetPotLogs: 'p1' }, 'GetPotLogs');
      const { a, b } = ctx();
      await waitFor(() => [a, b].filter((i) => i.core.cluster!.leading()).length === 1, 'one leader after the master died');
    });
  },
);
