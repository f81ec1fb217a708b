// Which event-shaped PotStatusUpdate lines are the real node's cowrie text, and which pot they
// belong to; and the simulator's --cowrie-text form through the gateway and the event service.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createEventService, type EventService } from '../../src/events/index.js';
import { createCowrieTextContext, normaliseAttackEvent, PotTypeCache, type PendingEvent } from '../../src/events/normalize.js';
import { createNodeGateway, type NodeGatewayHandle } from '../../src/nodes/index.js';
import { runSimulatorCli } from '../../src/simulator/cli.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { tempDir } from '../helpers/tmp.js';
import { metricValue, silentLogger, statusEvent, testDb, waitFor, type TestDb } from './helpers.js';

function ok(out: ReturnType<typeof normaliseAttackEvent>): PendingEvent {
  assert.ok(!('error' in out), 'error' in out ? out.error : '');
  return out;
}

describe('routing the real node\'s cowrie text', () => {
  it('a line under the sensor name goes to the node\'s cowrie pot, as a cowrie event', () => {
    const cowrie = createCowrieTextContext(undefined);
    const types = new PotTypeCache(undefined);
    cowrie.pots.learn('n', 'cowrie-02', 'cowrie', 'Running', 1);
    const e = ok(normaliseAttackEvent(statusEvent('n', 'CMD: id', '', 'vm', 10), types, cowrie));
    assert.equal(e.potId, 'cowrie-02');
    assert.equal(e.potType, 'cowrie');
    assert.equal(e.eventType, 'cowrie.command.input');
    assert.equal(e.fromStatus, false, 'structured: feeds cowrie.sessions');
    assert.equal(e.cowrieText, 'parsed');
    assert.deepEqual(JSON.parse(e.dataJson), e.data);
    assert.equal(e.data.sensor, 'vm');
  });

  it('several cowrie pots: the Running one, then the most recently reported', () => {
    const cowrie = createCowrieTextContext(undefined);
    const types = new PotTypeCache(undefined);
    cowrie.pots.learn('n', 'a', 'cowrie', 'Stopped', 5);
    cowrie.pots.learn('n', 'b', 'cowrie', 'Running', 1);
    cowrie.pots.learn('n', 'c', 'cowrie', 'Stopped', 9);
    assert.equal(ok(normaliseAttackEvent(statusEvent('n', 'CMD: id', '', 'vm'), types, cowrie)).potId, 'b');
    cowrie.pots.learn('n', 'b', 'cowrie', 'Stopped', 10);
    assert.equal(ok(normaliseAttackEvent(statusEvent('n', 'CMD: id', '', 'vm'), types, cowrie)).potId, 'b', 'most recent among the stopped');
    cowrie.pots.learn('n', 'c', 'cowrie', 'Running', 11);
    assert.equal(ok(normaliseAttackEvent(statusEvent('n', 'CMD: id', '', 'vm'), types, cowrie)).potId, 'c');
    // a status without a type keeps the pot a cowrie pot
    cowrie.pots.learn('n', 'c', '', 'Stopped', 12);
    assert.equal(ok(normaliseAttackEvent(statusEvent('n', 'CMD: id', '', 'vm'), types, cowrie)).potId, 'c');
    // a pot re-reported with another type is no longer a cowrie pot
    cowrie.pots.learn('n', 'c', 'webpot', 'Running', 13);
    assert.equal(ok(normaliseAttackEvent(statusEvent('n', 'CMD: id', '', 'vm'), types, cowrie)).potId, 'b');
  });

  it('without live reports the lookup (pots table) names the cowrie pot', () => {
    let calls = 0;
    const cowrie = createCowrieTextContext((node) => {
      calls++;
      return node === 'n' ? 'from-db' : undefined;
    });
    const types = new PotTypeCache(undefined);
    assert.equal(ok(normaliseAttackEvent(statusEvent('n', 'CMD: id', '', 'vm'), types, cowrie)).potId, 'from-db');
    assert.equal(ok(normaliseAttackEvent(statusEvent('n', 'CMD: ls', '', 'vm'), types, cowrie)).potId, 'from-db');
    assert.equal(calls, 1, 'cached');
  });

  it('lines of a known non-cowrie pot stay that pot\'s status messages; unknown free text stays unknown', () => {
    const cowrie = createCowrieTextContext(undefined);
    const types = new PotTypeCache(undefined);
    types.learn('n', 'web-01', 'webpot');
    const web = ok(normaliseAttackEvent(statusEvent('n', 'GET / 200', '', 'web-01'), types, cowrie));
    assert.deepEqual([web.potId, web.potType, web.eventType, web.fromStatus], ['web-01', 'webpot', 'status_message', true]);
    const typed = ok(normaliseAttackEvent(statusEvent('n', 'CMD: id', 'testpot', 'pot-01'), types, cowrie));
    assert.equal(typed.eventType, 'status_message', 'a pot_type other than cowrie is kept');
    const free = ok(normaliseAttackEvent(statusEvent('n2', 'hello there', '', 'x'), types, cowrie));
    assert.deepEqual([free.potType, free.eventType], ['unknown', 'status_message']);
  });

  it('no cowrie pot known but the text is cowrie\'s: a cowrie event under the sensor name', () => {
    const cowrie = createCowrieTextContext(undefined);
    const e = ok(normaliseAttackEvent(statusEvent('n', 'login attempt [root/x] failed', '', 'vm'), new PotTypeCache(undefined), cowrie));
    assert.deepEqual([e.potId, e.potType, e.eventType], ['vm', 'cowrie', 'cowrie.login.failed']);
  });

  it('pot_type cowrie with status "": cowrie text of that pot, unparsed lines kept', () => {
    const cowrie = createCowrieTextContext(undefined);
    const e = ok(normaliseAttackEvent(statusEvent('n', 'garbage', 'cowrie', 'cowrie-01'), new PotTypeCache(undefined), cowrie));
    assert.deepEqual([e.potId, e.eventType, e.cowrieText, e.data.message], ['cowrie-01', 'cowrie.unparsed', 'unparsed', 'garbage']);
    const none = ok(normaliseAttackEvent(statusEvent('n', undefined, 'cowrie', 'cowrie-01'), new PotTypeCache(undefined), cowrie));
    assert.deepEqual([none.eventType, none.cowrieText], ['cowrie.unparsed', 'no_message']);
  });
});

describe('simulated nodes in the real node\'s cowrie text form', () => {
  let db: TestDb;
  let registry: Registry;
  let gateway: NodeGatewayHandle;
  let events: EventService;
  let port: number;
  const sessions: { node: string; payload: string }[] = [];

  before(async () => {
    db = testDb();
    registry = new Registry();
    const logger = silentLogger();
    gateway = await createNodeGateway({ db: db.handle, logger, registry, enrollment: 'open' });
    const publisher = { publish: (ident: string, channel: string, payload: Uint8Array | string) => {
      if (channel === 'cowrie.sessions') sessions.push({ node: ident, payload: payload.toString() });
    } };
    events = createEventService({
      db: db.handle,
      logger,
      registry,
      publisher,
      cowriePotLookup: gateway.cowriePotLookup,
      batch: { maxDelayMs: 5 },
    });
    events.attach(gateway);
    port = (await gateway.listenTcp({ host: '127.0.0.1', port: 0 })).port;
  });
  after(async () => {
    await gateway.close();
    await events.close();
    db.cleanup();
  });

  it('--cowrie-text: cowrie events of the node\'s cowrie pot, sessions summarised, all counted as parsed', async () => {
    const node = new SimulatedNode({ name: 'text-node', host: '127.0.0.1', port, cowrieText: true, pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }] });
    const lines: string[] = [];
    const sent = (node as unknown as { send(m: { type: string; pot_id?: string; message?: string }): boolean });
    const original = sent.send.bind(node);
    sent.send = (m) => {
      if (m.type === 'PotStatusUpdate' && m.pot_id === 'text-node') lines.push(m.message ?? '');
      return original(m);
    };
    node.start();
    await once(node, 'registered');
    try {
      node.sendPotStatus('cowrie-01', 'Running', 'Status: Running - Honeypot started', 'cowrie');
      await waitFor(() => gateway.cowriePotLookup?.('text-node') === 'cowrie-01');
      for (let i = 0; i < 200; i++) node.sendAttack();
      await waitFor(() => (db.handle.sqlite.prepare("SELECT count(*) AS c FROM events WHERE node_name = 'text-node'").get() as { c: number }).c === 200);
      assert.equal(lines.length, 200, 'sent in the real node\'s form: pot_id = sensor (node) name');
      const rows = db.handle.sqlite.prepare("SELECT pot_id, pot_type, event_type FROM events WHERE node_name = 'text-node'").all() as { pot_id: string; pot_type: string; event_type: string }[];
      assert.ok(rows.every((r) => r.pot_id === 'cowrie-01' && r.pot_type === 'cowrie' && r.event_type.startsWith('cowrie.') && r.event_type !== 'cowrie.unparsed'));
      assert.equal(await metricValue(registry, 'apiary_events_cowrie_text_total', { outcome: 'parsed' }), 200);
      const closed = rows.filter((r) => r.event_type === 'cowrie.session.closed').length;
      assert.ok(closed > 0);
      await waitFor(() => sessions.length === closed);
      for (const s of sessions.map((x) => JSON.parse(x.payload))) {
        assert.match(s.session, /^[0-9a-f]{12}$/);
        assert.equal(s.hostPort, 2222);
        assert.equal(s.protocol, 'ssh');
        assert.match(s.peerIP, /^(192\.0\.2|198\.51\.100|203\.0\.113)\./);
      }
    } finally {
      await node.stop();
    }
  });

  it('apiary node simulate --cowrie-text sends the text form (documented in --help)', async () => {
    let text = '';
    const io = { stdout: { write: (t: string) => (text += t) }, stderr: { write: (t: string) => (text += t) } };
    assert.equal(await runSimulatorCli(['--help'], io), 0);
    assert.ok(text.includes('--cowrie-text'));
    const dir = tempDir('apiary-sim-text-');
    try {
      const code = await runSimulatorCli(
        ['--port', String(port), '--name', 'cli-text', '--secret-dir', dir.path, '--events-per-second', '50', '--cowrie-text', '--duration', '1.5', '--quiet'],
        io,
      );
      assert.equal(code, 0, text);
    } finally {
      dir.cleanup();
    }
    events.flush();
    const rows = db.handle.sqlite.prepare("SELECT pot_id, pot_type, event_type FROM events WHERE node_name = 'cli-text'").all() as { pot_id: string; pot_type: string; event_type: string }[];
    assert.ok(rows.length > 10, `${rows.length} events`);
    // The CLI announces its pre-installed cowrie pot (cowrie-01): the text lines, sent under the
    // sensor name (the node's name in the simulator), are attributed to that pot.
    assert.ok(rows.every((r) => r.pot_id === 'cowrie-01' && r.pot_type === 'cowrie' && r.event_type.startsWith('cowrie.') && r.event_type !== 'cowrie.unparsed'), JSON.stringify(rows.slice(0, 3)));
  });
});
