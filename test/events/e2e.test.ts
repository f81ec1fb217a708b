// The whole path with real parts only: simulated HoneyBee nodes over TCP -> node gateway -> event
// service (SQLite file) -> in-process hpfeeds broker -> existing hpfeeds subscriber over TCP, and
// the same events through the HTTP API.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { createHttpServer } from '../../src/api/index.js';
import { createEventService, eventRoutes, type EventService } from '../../src/events/index.js';
import { Broker, HpfeedsClient, MemoryAuthStore } from '../../src/hpfeeds/index.js';
import { createNodeGateway, type NodeGatewayHandle } from '../../src/nodes/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { Inbox, metricValue, silentLogger, testDb, waitFor, type TestDb } from './helpers.js';

const CHANNELS = ['apiary.events', 'cowrie.events', 'cowrie.sessions', 'unknown.events', 'webpot.events', 'probe'];

describe('nodes to hpfeeds subscribers, end to end', () => {
  let db: TestDb;
  let registry: Registry;
  let broker: Broker;
  let gateway: NodeGatewayHandle;
  let events: EventService;
  let app: FastifyInstance;
  let gatewayPort: number;
  let sub: HpfeedsClient;
  let inbox: Inbox;
  let api: string;
  const nodes: SimulatedNode[] = [];

  before(async () => {
    db = testDb();
    registry = new Registry();
    const logger = silentLogger();
    broker = new Broker({ authStore: new MemoryAuthStore([{ ident: 'soc', owner: 'soc', secret: 's3cret', pubchans: ['probe'], subchans: CHANNELS }]) });
    const hp = await broker.listen('tcp:port=0:interface=127.0.0.1');
    gateway = await createNodeGateway({ db: db.handle, logger, registry, enrollment: 'open' });
    events = createEventService({ db: db.handle, logger, registry, publisher: broker, batch: { maxDelayMs: 5 } });
    events.attach(gateway);
    gatewayPort = (await gateway.listenTcp({ host: '127.0.0.1', port: 0 })).port;
    app = await createHttpServer();
    await app.register(eventRoutes, { prefix: '/api/v1', events });
    await app.listen({ host: '127.0.0.1', port: 0 });
    api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/v1`;
    sub = new HpfeedsClient({ host: '127.0.0.1', port: hp.port, ident: 'soc', secret: 's3cret', reconnect: false });
    inbox = new Inbox(sub);
    await sub.connect();
    sub.subscribe(CHANNELS);
    sub.publish('probe', 'ping');
    await inbox.waitFor('probe', 1);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await gateway.close();
    await events.close();
    await sub.close();
    await app.close();
    await broker.close();
    db.cleanup();
  });

  async function startNode(name: string): Promise<SimulatedNode> {
    const node = new SimulatedNode({ name, host: '127.0.0.1', port: gatewayPort, pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }] });
    nodes.push(node);
    node.start();
    await once(node, 'registered', { signal: AbortSignal.timeout(15_000) });
    return node;
  }

  // The two-node burst the first tests look at; run once by whichever test comes first, so each
  // test also passes when run alone.
  const N = 400;
  let burst: Promise<Awaited<ReturnType<Inbox['waitFor']>>> | undefined;
  const sendBurst = () =>
    (burst ??= (async () => {
      const a = await startNode('e2e-a');
      const b = await startNode('e2e-b');
      for (let i = 0; i < N; i++) a.sendAttack('potevent');
      for (let i = 0; i < N; i++) b.sendAttack('potevent');
      return inbox.waitFor('apiary.events', 2 * N, 20_000);
    })());

  it('every event a node sends reaches the subscriber, after it is stored, under the node ident', async () => {
    const all = (await sendBurst()).filter((m) => m.ident === 'e2e-a' || m.ident === 'e2e-b');
    assert.equal(all.length, 2 * N);
    assert.equal(inbox.on('cowrie.events').filter((m) => m.ident === 'e2e-a' || m.ident === 'e2e-b').length, 2 * N);
    const ids = new Set<number>();
    for (const m of all) {
      const e = JSON.parse(m.payload);
      assert.equal(m.ident, e.node);
      ids.add(e.id);
    }
    assert.equal(ids.size, 2 * N);
    const stored = (db.handle.sqlite.prepare("SELECT count(*) AS c FROM events WHERE node_name IN ('e2e-a', 'e2e-b')").get() as { c: number }).c;
    assert.equal(stored, 2 * N);
    // per node, events arrive in the order the node sent them
    const seqA = all.filter((m) => m.ident === 'e2e-a').map((m) => JSON.parse(m.payload).id as number);
    assert.deepEqual(seqA, [...seqA].sort((x, y) => x - y));
  });

  it('simulated cowrie sessions come out on cowrie.sessions with the classic fields', async () => {
    await sendBurst();
    const sessions = inbox.on('cowrie.sessions');
    assert.ok(sessions.length > 10, `closed sessions were summarised (${sessions.length})`);
    for (const m of sessions) {
      const s = JSON.parse(m.payload);
      assert.match(s.peerIP, /^(192\.0\.2|198\.51\.100|203\.0\.113)\./);
      assert.equal(typeof s.peerPort, 'number');
      assert.equal(s.hostPort, 2222);
      assert.ok(Array.isArray(s.credentials) && s.credentials.every((c: unknown) => Array.isArray(c) && c.length === 2));
      assert.ok(s.loggedin === null || (Array.isArray(s.loggedin) && s.loggedin.length === 2));
      assert.ok(Array.isArray(s.commands));
      if (s.loggedin === null) assert.deepEqual(s.commands, [], 'commands only after a successful login');
      assert.match(s.startTime, /^\d{4}-\d{2}-\d{2}T/);
      assert.match(s.endTime, /^\d{4}-\d{2}-\d{2}T/);
      assert.equal(typeof s.session, 'string');
    }
    assert.equal(await metricValue(registry, 'apiary_cowrie_sessions_emitted_total', { reason: 'closed' }), sessions.length);
  });

  it('event-shaped PotStatusUpdate lines: cowrie text becomes cowrie events; other pots keep their reported type', async () => {
    const c = await startNode('e2e-status');
    const before = inbox.on('cowrie.events').length;
    for (let i = 0; i < 5; i++) c.sendAttack('status', 'cowrie-01'); // cowrie text, no pot_type
    const msgs = await inbox.waitFor('cowrie.events', before + 5);
    const last = JSON.parse(msgs.at(-1)!.payload);
    assert.equal(last.node, 'e2e-status');
    assert.match(last.event_type, /^cowrie\./);
    assert.equal(last.pot_type, 'cowrie');
    assert.equal(typeof last.data.message, 'string');
    // a pot of another type: its free text stays a status_message of that type
    c.sendPotStatus('web-01', 'Running', undefined, 'webpot');
    await waitFor(() => db.handle.sqlite.prepare("SELECT 1 FROM pots WHERE pot_id = 'web-01'").get() !== undefined);
    c.send({ type: 'PotStatusUpdate', node_id: c.nodeId, pot_id: 'web-01', pot_type: '', status: '', message: 'GET /admin 404' });
    const web = JSON.parse((await inbox.waitFor('webpot.events', 1))[0]!.payload);
    assert.equal(web.event_type, 'status_message');
    assert.equal(web.data.message, 'GET /admin 404');
  });

  it('the API sees the same events', async () => {
    await sendBurst();
    const res = await fetch(`${api}/events?node=e2e-a&limit=1000`);
    const page = (await res.json()) as { events: { node: string }[] };
    assert.equal(page.events.length, 400);
    const stats = (await (await fetch(`${api}/events/stats`)).json()) as { by_node: { node: string; count: number }[] };
    assert.deepEqual(
      stats.by_node.filter((n) => n.node.startsWith('e2e-a') || n.node === 'e2e-b'),
      [
        { node: 'e2e-a', count: 400 },
        { node: 'e2e-b', count: 400 },
      ],
    );
  });
});
