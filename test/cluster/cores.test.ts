// Three whole cores (buildCore, as `apiary serve` runs them) in this process, sharing one Redis
// and one SQLite file (WAL), each with its own API, node and hpfeeds ports: an event a node sends
// to A reaches the hpfeeds subscribers and the live streams of A, B and C once each; what an
// hpfeeds client publishes on B reaches the subscribers on A and C once; a cowrie session whose
// node moved from A to B mid-session is summarised once, even when B's read of what A left open
// is slow; exactly one core leads, and another takes over when it stops.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { buildCore, type Core } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { Inbox, waitFor } from '../events/helpers.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { startSlowRelay, type SlowRelay } from '../helpers/slow-relay.js';
import { tempDir } from '../helpers/tmp.js';

const ADMIN = 'cluster-test-admin-token-0123456789abcdef';
const SUBCHANS = ['probe', 'apiary.events', 'cowrie.events', 'cowrie.sessions', 'sensor.raw'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('three cores sharing one Redis and one database', () => {
  const dir = tempDir('apiary-cluster-');
  let redis: TestRedis;
  /** Core B reaches Redis through this relay, which can make chosen reads slow. */
  let relayForB: SlowRelay;
  const cores: Record<'a' | 'b' | 'c', Core> = {} as never;
  const closers: (() => Promise<unknown>)[] = [];
  const subs: Record<string, { client: HpfeedsClient; inbox: Inbox }> = {};
  let nodeSecret = '';
  let edgeOnA: SimulatedNode | undefined;

  const api = async (core: Core, method: string, path: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${core.addresses.api.port}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  const startCore = async (name: 'a' | 'b' | 'c') => {
    const config = loadConfig(
      [
        '--api-host', '127.0.0.1', '--api-port', '0',
        '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0',
        '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1',
        '--db', join(dir.path, 'shared.sqlite'),
        '--instance-id', name,
        '--cluster-lease-ms', '1500',
      ],
      { APIARY_DATA_DIR: join(dir.path, name), LOG_LEVEL: 'silent', REDIS_URL: name === 'b' ? `redis://127.0.0.1:${relayForB.port}` : redis.url, ENROLLMENT_MODE: 'provisioned', APIARY_ADMIN_TOKEN: ADMIN, ANALYTICS_ENABLED: 'false' },
    );
    cores[name] = await buildCore(config);
  };

  // The provisioned secret is handed over once; later nodes of that name read the file the
  // earlier one kept (the core may have rotated the key). `aheadMs` moves the node's clock to the
  // next TOTP step: a code is accepted once, wherever it is used.
  const node = (name: string, core: Core, aheadMs = 0) => {
    const n = new SimulatedNode({
      name,
      host: '127.0.0.1',
      port: core.addresses.nodeTcp.port,
      ...(aheadMs === 0 ? { secret: nodeSecret } : {}),
      secretDir: join(dir.path, `node-${name}`),
      heartbeatMs: 60_000,
      pots: [],
      clock: () => Date.now() + aheadMs,
    });
    closers.push(() => n.stop());
    return n;
  };
  // The real node's form: cowrie's text lines as PotStatusUpdate messages under cowrie's sensor name.
  const cowrieLine = (n: SimulatedNode, text: string) => n.send({ type: 'PotStatusUpdate', node_id: n.nodeId, pot_id: 'vm', pot_type: '', status: '', message: text });
  const potEvent = (n: SimulatedNode, eventType: string, data: Record<string, unknown>) =>
    n.send({ type: 'PotEvent', node_id: n.nodeId, pot_id: 'cowrie-01', pot_type: 'cowrie', event_type: eventType, timestamp: new Date().toISOString(), data: { timestamp: new Date().toISOString(), ...data } });

  before(async () => {
    redis = await startTestRedis({ appendOnly: false });
    relayForB = await startSlowRelay({ host: '127.0.0.1', port: redis.port });
    // One after the other: the first creates the schema and the admin token.
    for (const name of ['a', 'b', 'c'] as const) await startCore(name);
    const created = await api(cores.a, 'POST', '/api/v1/nodes', { name: 'edge-1' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    nodeSecret = created.body.secret;
    const analyst = await api(cores.a, 'POST', '/api/v1/hpfeeds/authkeys', { ident: 'analyst', subchans: SUBCHANS, pubchans: ['probe'] });
    assert.equal(analyst.status, 201, JSON.stringify(analyst.body));
    for (const name of ['a', 'b', 'c'] as const) {
      const client = new HpfeedsClient({ host: '127.0.0.1', port: cores[name].addresses.hpfeeds[0]!.port, ident: 'analyst', secret: analyst.body.secret, reconnect: false });
      closers.push(() => client.close());
      const inbox = new Inbox(client);
      await client.connect();
      client.subscribe(SUBCHANS);
      // hpfeeds never acknowledges SUBSCRIBE: our own probe coming back proves the broker has it.
      client.publish('probe', `hello from ${name}`);
      await waitFor(() => inbox.on('probe').some((m) => m.payload === `hello from ${name}`), 10_000, `probe echo on ${name}`);
      subs[name] = { client, inbox };
    }
  });

  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    for (const core of Object.values(cores)) await core.close();
    await relayForB?.close();
    await redis?.dispose();
    dir.cleanup();
  });

  it("an hpfeeds probe published on one core came to every core's subscriber once", async () => {
    // The subscribers connected one after the other: only probes sent after a subscriber joined count.
    await waitFor(() => subs.a!.inbox.on('probe').length === 3 && subs.b!.inbox.on('probe').length === 2, 10_000, 'probes');
    await sleep(300);
    assert.deepEqual(subs.a!.inbox.on('probe').map((m) => m.payload), ['hello from a', 'hello from b', 'hello from c']);
    assert.deepEqual(subs.b!.inbox.on('probe').map((m) => m.payload), ['hello from b', 'hello from c']);
    assert.deepEqual(subs.c!.inbox.on('probe').map((m) => m.payload), ['hello from c']);
  });

  it("a node's events on A reach the hpfeeds subscribers of A, B and C and a live stream on C, exactly once each", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${cores.c.addresses.api.port}/api/v1/events/stream?node=edge-1`, { headers: { authorization: `Bearer ${ADMIN}` } });
    closers.push(async () => ws.close());
    const streamed: { id: number; data: { n?: number } }[] = [];
    ws.on('message', (m) => streamed.push(JSON.parse(m.toString())));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const n = (edgeOnA = node('edge-1', cores.a));
    const registered = n.waitFor('registered', { timeoutMs: 10_000 });
    n.start();
    await registered;
    await sleep(200); // the stream client is registered with the hub once the upgrade is handled
    const count = 25;
    for (let i = 0; i < count; i++) assert.ok(potEvent(n, 'cowrie.login.failed', { n: i, username: 'root', password: `p${i}` }));
    const marked = (name: string) => subs[name]!.inbox.on('cowrie.events').filter((m) => typeof JSON.parse(m.payload).data.n === 'number');
    await waitFor(() => ['a', 'b', 'c'].every((s) => marked(s).length >= count) && streamed.length >= count, 15_000, 'events everywhere');
    await sleep(500);
    for (const name of ['a', 'b', 'c']) {
      const got = marked(name).map((m) => JSON.parse(m.payload) as { id: number; data: { n: number } });
      assert.deepEqual(got.map((e) => e.data.n), [...Array(count).keys()], `core ${name}: each event once, in order`);
      assert.equal(new Set(got.map((e) => e.id)).size, count);
      assert.ok(marked(name).every((m) => m.ident === 'edge-1'));
      assert.equal(subs[name]!.inbox.on('apiary.events').filter((m) => typeof JSON.parse(m.payload).data.n === 'number').length, count);
    }
    // The payloads are the same bytes on every core.
    assert.deepEqual(marked('b').map((m) => m.payload), marked('a').map((m) => m.payload));
    assert.deepEqual(marked('c').map((m) => m.payload), marked('a').map((m) => m.payload));
    assert.deepEqual(streamed.map((e) => e.data.n), [...Array(count).keys()]);
    // Stored once (the shared database), by A.
    const stored = await api(cores.b, 'GET', '/api/v1/events?node=edge-1&limit=100');
    assert.equal(stored.body.events.filter((e: { data: { n?: number } }) => typeof e.data.n === 'number').length, count);
  });

  it('what an hpfeeds client publishes on B reaches the subscribers of A, B and C once', async () => {
    const key = await api(cores.b, 'POST', '/api/v1/hpfeeds/authkeys', { ident: 'sensor', pubchans: ['sensor.raw'], subchans: [] });
    assert.equal(key.status, 201);
    const pub = new HpfeedsClient({ host: '127.0.0.1', port: cores.b.addresses.hpfeeds[0]!.port, ident: 'sensor', secret: key.body.secret, reconnect: false });
    closers.push(() => pub.close());
    await pub.connect();
    for (let i = 0; i < 30; i++) pub.publish('sensor.raw', Buffer.from(`raw-${i}\u0000\u00ff`, 'latin1'));
    await waitFor(() => ['a', 'b', 'c'].every((s) => subs[s]!.inbox.on('sensor.raw').length >= 30), 15_000, 'sensor.raw everywhere');
    await sleep(500);
    for (const name of ['a', 'b', 'c']) {
      const got = subs[name]!.inbox.on('sensor.raw');
      assert.equal(got.length, 30, `core ${name}`);
      assert.ok(got.every((m) => m.ident === 'sensor'));
      assert.deepEqual(got.map((m) => m.payload.split('\u0000')[0]), Array.from({ length: 30 }, (_, i) => `raw-${i}`));
    }
  });

  it('cowrie sessions begun through A and ended through B (the node reconnected) give one cowrie.sessions summary each on every core', async () => {
    const before = Object.fromEntries(['a', 'b', 'c'].map((s) => [s, subs[s]!.inbox.on('cowrie.sessions').length]));
    // The node of the previous test, still connected to A.
    const first = edgeOnA!;
    assert.ok(cores.a.gateway.isOnline('edge-1'));
    potEvent(first, 'cowrie.session.connect', { session: 'moved1', src_ip: '203.0.113.5', src_port: 40022, dst_port: 22, protocol: 'ssh' });
    potEvent(first, 'cowrie.login.success', { session: 'moved1', username: 'root', password: 'admin' });
    cowrieLine(first, 'New connection: 198.51.100.23:50218 (10.0.0.2:2222) [session: 0a1b2c3d4e5f]');
    cowrieLine(first, 'login attempt [admin/hunter2] succeeded');
    const committed = (eventType: string) => subs.c!.inbox.on('cowrie.events').some((m) => JSON.parse(m.payload).event_type === eventType && JSON.parse(m.payload).data.session === '0a1b2c3d4e5f');
    await waitFor(() => committed('cowrie.login.success'), 10_000, 'logins committed');
    await first.stop();
    await waitFor(() => !cores.a.gateway.isOnline('edge-1'), 10_000, 'edge-1 offline on A');
    // B reads what A left open for edge-1 when the node registers; that read is made slow (well
    // within B's 2 s bound). B holds the node's ack until it has answered, so the text lines the
    // node sends at once after its ack still join the session A saw begin.
    const holdMs = 700;
    relayForB.slowNext({ marker: 'cowrie-text:edge-1', ms: holdMs });
    const second = node('edge-1', cores.b, 30_000);
    const again = second.waitFor('registered', { timeoutMs: 20_000 });
    const startedAt = Date.now();
    second.start();
    await again;
    assert.ok(Date.now() - startedAt >= holdMs, 'the ack waited for the slow read');
    potEvent(second, 'cowrie.command.input', { session: 'moved1', input: 'cat /proc/cpuinfo' });
    potEvent(second, 'cowrie.session.closed', { session: 'moved1', duration: 3 });
    // The text lines name no session: B knows it from what A left in Redis.
    cowrieLine(second, 'CMD: uname -a');
    cowrieLine(second, 'Connection lost after 4 seconds');
    await waitFor(() => ['a', 'b', 'c'].every((s) => subs[s]!.inbox.on('cowrie.sessions').length >= before[s]! + 2), 15_000, 'summaries');
    await sleep(500);
    for (const name of ['a', 'b', 'c']) {
      const summaries = subs[name]!.inbox.on('cowrie.sessions').slice(before[name]).map((m) => JSON.parse(m.payload));
      assert.equal(summaries.length, 2, `core ${name}: ${JSON.stringify(summaries)}`);
      const s = summaries.find((x) => x.session === 'moved1');
      assert.deepEqual(s.loggedin, ['root', 'admin']);
      assert.deepEqual(s.commands, ['cat /proc/cpuinfo']);
      assert.equal(s.peerIP, '203.0.113.5');
      assert.notEqual(s.endTime, '');
      const t = summaries.find((x) => x.session === '0a1b2c3d4e5f');
      assert.ok(t, `core ${name}: the text session's summary`);
      assert.deepEqual(t.loggedin, ['admin', 'hunter2']);
      assert.deepEqual(t.commands, ['uname -a']);
      assert.equal(t.peerIP, '198.51.100.23');
      assert.notEqual(t.endTime, '');
    }
    assert.equal(relayForB.held, 1, "B read edge-1's open text sessions through the slow relay");
    const metrics = await (await fetch(`http://127.0.0.1:${cores.b.addresses.api.port}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    assert.match(metrics, /apiary_node_ack_holds_total\{result="ready"\} 1\b/);
    assert.doesNotMatch(metrics, /apiary_node_ack_holds_total\{result="timeout"\}/);
  });

  it('what a core commits during its graceful stop still reaches the other cores, once', async () => {
    const created = await api(cores.a, 'POST', '/api/v1/nodes', { name: 'edge-2' });
    assert.equal(created.status, 201);
    const n = new SimulatedNode({ name: 'edge-2', host: '127.0.0.1', port: cores.c.addresses.nodeTcp.port, secret: created.body.secret, secretDir: join(dir.path, 'node-edge-2'), heartbeatMs: 60_000, pots: [], reconnect: false });
    closers.push(() => n.stop());
    const registered = n.waitFor('registered', { timeoutMs: 10_000 });
    n.start();
    await registered;
    const fromC = () => subs.a!.inbox.on('cowrie.events').filter((m) => m.ident === 'edge-2').map((m) => JSON.parse(m.payload).id as number);
    for (let i = 0; i < 2000; i++) potEvent(n, 'cowrie.login.failed', { n: i, username: 'u', password: String(i) });
    // Stop C while it is busy with them: lines still in its socket buffers may be lost (the
    // protocol has no per-event ack), but every event C committed must reach A's subscriber once.
    await waitFor(() => fromC().length > 0, 10_000, 'the first events of edge-2 at A');
    await cores.c.close();
    delete (cores as Record<string, Core>).c;
    const storedIds = (cores.a.database!.sqlite.prepare('SELECT id FROM events WHERE node_name = ? ORDER BY id').all('edge-2') as { id: number }[]).map((e) => e.id);
    assert.ok(storedIds.length > 0, 'C committed some of them');
    await waitFor(() => fromC().length >= storedIds.length, 10_000, `${storedIds.length} events of edge-2 at A`);
    await sleep(300);
    assert.deepEqual([...fromC()].sort((x, y) => x - y), storedIds);
  });

  it('exactly one core leads the periodic work; when it stops another takes over', async () => {
    const all = () => Object.entries(cores).filter(([, c]) => c.cluster?.leading());
    await waitFor(() => all().length === 1, 10_000, 'one leader');
    await sleep(600);
    assert.equal(all().length, 1);
    const [name, leader] = all()[0]!;
    const metrics = await fetch(`http://127.0.0.1:${leader.addresses.api.port}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.match(await metrics.text(), new RegExp(`apiary_cluster_leader\\{instance="${name}"\\} 1`));
    await leader.close();
    delete (cores as Record<string, Core>)[name];
    await waitFor(() => all().length === 1, 10_000, 'a new leader');
    assert.notEqual(all()[0]![0], name);
  });
});
