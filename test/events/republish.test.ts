// Republishing onto hpfeeds, end to end over TCP: the real Broker listening on a port, the real
// HpfeedsClient as an existing subscriber, events persisted in a real SQLite file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Broker, HpfeedsClient, MemoryAuthStore } from '../../src/hpfeeds/index.js';
import { createEventService, nodeAuthkeyFor, type EventService } from '../../src/events/index.js';
import { Inbox, metricValue, newRegistry, potEvent, silentLogger, statusEvent, testDb, waitFor, type TestDb } from './helpers.js';

const SUBCHANS = [
  'probe',
  'apiary.events',
  'cowrie.events',
  'cowrie.sessions',
  'dionaea.events',
  'dionaea.connections',
  'dionaea.capture',
  'unknown.events',
  'testpot.events',
  'custom.one',
  'custom.two',
];

async function subscriber(port: number, channels: string[] = SUBCHANS): Promise<{ client: HpfeedsClient; inbox: Inbox }> {
  const client = new HpfeedsClient({ host: '127.0.0.1', port, ident: 'consumer', secret: 'consumer-secret', reconnect: false });
  const inbox = new Inbox(client);
  await client.connect();
  client.subscribe(channels);
  // hpfeeds never acknowledges SUBSCRIBE: an echo on our own channel proves the broker has it.
  client.publish('probe', 'ping');
  await inbox.waitFor('probe', 1);
  return { client, inbox };
}

describe('republishing events on hpfeeds', () => {
  let db: TestDb;
  let authStore: MemoryAuthStore;
  let broker: Broker;
  let port: number;
  let svc: EventService;
  let registry: ReturnType<typeof newRegistry>;
  let sub: { client: HpfeedsClient; inbox: Inbox };

  before(async () => {
    db = testDb();
    authStore = new MemoryAuthStore([
      { ident: 'consumer', owner: 'soc', secret: 'consumer-secret', pubchans: ['probe'], subchans: SUBCHANS },
    ]);
    broker = new Broker({ authStore });
    port = (await broker.listen('tcp:port=0:interface=127.0.0.1')).port;
    registry = newRegistry();
    svc = createEventService({
      db: db.handle,
      logger: silentLogger(),
      registry,
      publisher: broker,
      batch: { maxDelayMs: 2 },
      cowrie: { idleTimeoutMs: 300, maxOpenSessions: 3 },
    });
    sub = await subscriber(port);
  });

  after(async () => {
    await svc.close();
    await sub.client.close();
    await broker.close();
    db.cleanup();
  });

  it('publishes each event after commit on <pot_type>.events and apiary.events, ident = node', async () => {
    const reader = db.reopen();
    const byId = reader.sqlite.prepare('SELECT node_name, data FROM events WHERE id = ?');
    const seenInDb: boolean[] = [];
    const check = (_i: string, channel: string, payload: Buffer) => {
      if (channel === 'cowrie.events') seenInDb.push(byId.get(JSON.parse(payload.toString()).id) !== undefined);
    };
    sub.client.on('message', check);
    const ts = '2024-05-01T10:00:00.123456Z';
    svc.ingest(potEvent('hb-pub', { event_type: 'cowrie.login.failed', timestamp: ts, data: { username: 'root', password: 'x' } }, 1_714_557_600_500));
    svc.ingest(statusEvent('hb-pub', 'login attempt [root/123456] failed', 'testpot'));
    const [msg] = await sub.inbox.waitFor('cowrie.events', 1);
    assert.equal(msg!.ident, 'hb-pub');
    const body = JSON.parse(msg!.payload);
    assert.deepEqual(Object.keys(body), ['id', 'node', 'pot_id', 'pot_type', 'event_type', 'timestamp', 'data', 'received_at']);
    assert.equal(body.node, 'hb-pub');
    assert.equal(body.pot_id, 'pot-01');
    assert.equal(body.pot_type, 'cowrie');
    assert.equal(body.event_type, 'cowrie.login.failed');
    assert.equal(body.timestamp, '2024-05-01T10:00:00.123Z');
    assert.equal(body.received_at, new Date(1_714_557_600_500).toISOString());
    assert.deepEqual(body.data, { username: 'root', password: 'x' });
    assert.deepEqual(await svc.get(body.id), body, 'hpfeeds payload = the stored record as the API returns it');
    const status = (await sub.inbox.waitFor('testpot.events', 1))[0]!;
    assert.equal(JSON.parse(status.payload).event_type, 'status_message');
    const all = await sub.inbox.waitFor('apiary.events', 2);
    assert.deepEqual(all.map((m) => JSON.parse(m.payload).pot_type), ['cowrie', 'testpot']);
    assert.deepEqual(seenInDb, [true], 'the event was committed before it was published');
    assert.equal(await metricValue(registry, 'apiary_events_published_total', { channel: 'apiary.events' }), 2);
    sub.client.off('message', check);
    reader.close();
  });

  it('aggregates a cowrie session into one cowrie.sessions message with the classic fields', async () => {
    const node = 'hb-cowrie';
    const s = 'c0ffee000001';
    const at = (sec: number) => `2024-05-01T10:00:${String(sec).padStart(2, '0')}.000000Z`;
    const base = { session: s, src_ip: '198.51.100.7', src_port: 40022, dst_ip: '10.0.0.5', dst_port: 2222, sensor: node };
    const seq: [string, Record<string, unknown>][] = [
      ['cowrie.session.connect', { protocol: 'ssh' }],
      ['cowrie.client.version', { version: 'SSH-2.0-Go' }],
      ['cowrie.login.failed', { username: 'root', password: '123456' }],
      ['cowrie.login.failed', { username: 'admin', password: 'admin' }],
      ['cowrie.login.success', { username: 'root', password: 'raspberry' }],
      ['cowrie.command.input', { input: 'uname -a' }],
      ['cowrie.command.failed', { input: 'foo --bar' }],
      ['cowrie.session.file_download', { url: 'http://198.51.100.9/x.sh', shasum: 'ab'.repeat(32), outfile: 'dl/x' }],
      ['cowrie.session.file_upload', { filename: 'y', shasum: 'cd'.repeat(32) }],
      ['cowrie.session.closed', { duration: 9 }],
    ];
    seq.forEach(([eventid, extra], i) =>
      svc.ingest(potEvent(node, { event_type: eventid, timestamp: at(i), data: { eventid, ...base, timestamp: at(i), ...extra } })),
    );
    const [msg] = await sub.inbox.waitFor('cowrie.sessions', 1);
    assert.equal(msg!.ident, node);
    const summary = JSON.parse(msg!.payload);
    assert.deepEqual(summary, {
      session: s,
      startTime: at(0),
      endTime: at(9),
      peerIP: '198.51.100.7',
      peerPort: 40022,
      hostIP: '10.0.0.5',
      hostPort: 2222,
      loggedin: ['root', 'raspberry'],
      credentials: [
        ['root', '123456'],
        ['admin', 'admin'],
      ],
      commands: ['uname -a'],
      unknownCommands: ['foo --bar'],
      urls: ['http://198.51.100.9/x.sh'],
      version: 'SSH-2.0-Go',
      ttylog: null,
      hashes: ['ab'.repeat(32), 'cd'.repeat(32)],
      protocol: 'ssh',
    });
    assert.equal(await metricValue(registry, 'apiary_cowrie_sessions_emitted_total', { reason: 'closed' }), 1);
    assert.equal(svc.openCowrieSessions, 0);
  });

  it('emits idle sessions after the timeout and evicts the oldest beyond the cap, counting both', async () => {
    const before = sub.inbox.on('cowrie.sessions').length;
    for (let i = 0; i < 5; i++) {
      svc.ingest(potEvent('hb-idle', { event_type: 'cowrie.session.connect', data: { session: `idle-${i}`, src_ip: '192.0.2.1', src_port: 1000 + i, dst_ip: '10.0.0.5', dst_port: 22 } }));
    }
    // 5 sessions, cap 3: the two oldest are emitted at once
    const evicted = await sub.inbox.waitFor('cowrie.sessions', before + 2);
    assert.deepEqual(evicted.slice(before).map((m) => JSON.parse(m.payload).session), ['idle-0', 'idle-1']);
    assert.equal(await metricValue(registry, 'apiary_cowrie_sessions_emitted_total', { reason: 'evicted' }), 2);
    const idle = await sub.inbox.waitFor('cowrie.sessions', before + 5, 5000);
    assert.deepEqual(idle.slice(before + 2).map((m) => JSON.parse(m.payload).session).sort(), ['idle-2', 'idle-3', 'idle-4']);
    assert.equal(JSON.parse(idle.at(-1)!.payload).endTime, '');
    assert.equal(await metricValue(registry, 'apiary_cowrie_sessions_emitted_total', { reason: 'idle' }), 3);
    assert.equal(svc.openCowrieSessions, 0);
  });

  it('passes classic dionaea payloads through unchanged on their channel', async () => {
    const connection = {
      connection_type: 'accept',
      connection_transport: 'tcp',
      connection_protocol: 'smbd',
      remote_host: '203.0.113.5',
      remote_port: 51234,
      local_host: '10.0.0.5',
      local_port: 445,
      remote_hostname: '',
    };
    const capture = { url: 'http://203.0.113.5/x.exe', md5: 'a'.repeat(32), sha512: 'b'.repeat(128), saddr: '203.0.113.5', sport: '4444', daddr: '10.0.0.5', dport: '445' };
    svc.ingest(potEvent('hb-dio', { pot_type: 'dionaea', pot_id: 'dio-1', event_type: 'dionaea.connections', data: connection }));
    svc.ingest(potEvent('hb-dio', { pot_type: 'dionaea', pot_id: 'dio-1', event_type: 'capture', data: capture }));
    svc.ingest(potEvent('hb-dio', { pot_type: 'dionaea', pot_id: 'dio-1', event_type: 'dionaea.unknown', data: { x: 1 } }));
    const [conn] = await sub.inbox.waitFor('dionaea.connections', 1);
    assert.equal(conn!.ident, 'hb-dio');
    assert.equal(conn!.payload, JSON.stringify(connection));
    const [cap] = await sub.inbox.waitFor('dionaea.capture', 1);
    assert.equal(cap!.payload, JSON.stringify(capture));
    // all three also go out as normalised events
    await sub.inbox.waitFor('dionaea.events', 3);
    assert.equal(sub.inbox.on('dionaea.connections').length, 1);
  });

  it('honours a custom channel mapping and a disabled all-events channel', async () => {
    const reg = newRegistry();
    const custom = createEventService({
      db: db.handle,
      logger: silentLogger(),
      registry: reg,
      publisher: broker,
      channels: { allEvents: null, byPotType: { special: ['custom.one', 'custom.two'] } },
      batch: { maxDelayMs: 0 },
    });
    const allBefore = sub.inbox.on('apiary.events').length;
    custom.ingest(potEvent('hb-custom', { pot_type: 'special', event_type: 'x' }));
    await sub.inbox.waitFor('custom.one', 1);
    await sub.inbox.waitFor('custom.two', 1);
    await custom.close();
    assert.equal(sub.inbox.on('apiary.events').length, allBefore);
    assert.deepEqual(custom.channelsFor('special'), ['custom.one', 'custom.two']);
  });

  it('a node authkey from nodeAuthkeyFor authenticates and may publish on its event channels', async () => {
    const key = nodeAuthkeyFor('hb-key', {}, { potTypes: ['cowrie'] });
    authStore.set(key);
    const node = new HpfeedsClient({ host: '127.0.0.1', port, ident: key.ident, secret: key.secret, reconnect: false });
    await node.connect();
    const n = sub.inbox.on('cowrie.sessions').length;
    node.publish('cowrie.sessions', '{"session":"direct"}');
    await sub.inbox.waitFor('cowrie.sessions', n + 1);
    assert.equal(sub.inbox.on('cowrie.sessions').at(-1)!.ident, 'hb-key');
    await node.close();
    // and a wrong secret does not authenticate: the broker answers with its auth error and closes
    // (hpfeeds has no auth success message, so connect() itself resolves once AUTH is sent).
    const bad = new HpfeedsClient({ host: '127.0.0.1', port, ident: key.ident, secret: 'wrong', reconnect: false });
    bad.on('error', () => undefined);
    await bad.connect().catch(() => undefined);
    await waitFor(() => !bad.connected, 5000, 'the broker to close the connection');
    assert.match(bad.lastServerError ?? '', /Authentication failed for hb-key/);
    await bad.close();
  });

  it('close() publishes the sessions still open', async () => {
    const reg = newRegistry();
    const svc2 = createEventService({ db: db.handle, logger: silentLogger(), registry: reg, publisher: broker });
    const n = sub.inbox.on('cowrie.sessions').length;
    svc2.ingest(potEvent('hb-shutdown', { event_type: 'cowrie.session.connect', data: { session: 'open-at-close', src_ip: '192.0.2.9', src_port: 1, dst_ip: '10.0.0.5', dst_port: 22 } }));
    await svc2.close();
    const msgs = await sub.inbox.waitFor('cowrie.sessions', n + 1);
    assert.equal(JSON.parse(msgs.at(-1)!.payload).session, 'open-at-close');
    assert.equal(await metricValue(reg, 'apiary_cowrie_sessions_emitted_total', { reason: 'shutdown' }), 1);
  });
});
