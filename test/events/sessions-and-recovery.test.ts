// cowrie.sessions bounds (list and string caps), the same session id on two nodes kept apart, and
// republishing after a failed SQLite commit: the events are kept, retried, committed once and
// published once. Real broker on a port, real subscriber, real SQLite file.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEventService, type EventService } from '../../src/events/index.js';
import { Broker, HpfeedsClient, MemoryAuthStore } from '../../src/hpfeeds/index.js';
import { Inbox, newRegistry, potEvent, silentLogger, testDb, waitFor, type TestDb } from './helpers.js';

const CHANNELS = ['probe', 'cowrie.sessions', 'cowrie.events', 'apiary.events'];

describe('cowrie sessions and commit recovery', () => {
  let db: TestDb;
  let broker: Broker;
  let svc: EventService;
  let registry: ReturnType<typeof newRegistry>;
  let client: HpfeedsClient;
  let inbox: Inbox;

  before(async () => {
    db = testDb();
    broker = new Broker({ authStore: new MemoryAuthStore([{ ident: 'soc', owner: 'soc', secret: 'soc-secret', pubchans: ['probe'], subchans: CHANNELS }]) });
    const port = (await broker.listen('tcp:port=0:interface=127.0.0.1')).port;
    registry = newRegistry();
    svc = createEventService({ db: db.handle, logger: silentLogger(), registry, publisher: broker, batch: { maxDelayMs: 2 }, cowrie: { maxListEntries: 3, maxStringLength: 10 } });
    client = new HpfeedsClient({ host: '127.0.0.1', port, ident: 'soc', secret: 'soc-secret', reconnect: false });
    inbox = new Inbox(client);
    await client.connect();
    client.subscribe(CHANNELS);
    client.publish('probe', 'ping');
    await inbox.waitFor('probe', 1);
  });
  after(async () => {
    await svc?.close();
    await client?.close();
    await broker?.close();
    db?.cleanup();
  });

  const session = (node: string, id: string, event_type: string, data: Record<string, unknown> = {}) =>
    svc.ingest(potEvent(node, { event_type, data: { session: id, ...data } }));

  it('caps each list of a session and each string in it', async () => {
    const n = inbox.on('cowrie.sessions').length;
    session('cap-node', 'cap-1', 'cowrie.session.connect', { src_ip: '192.0.2.1', src_port: 1, dst_ip: '10.0.0.1', dst_port: 22 });
    for (let i = 0; i < 6; i++) session('cap-node', 'cap-1', 'cowrie.command.input', { input: `command-number-${i}` });
    for (let i = 0; i < 6; i++) session('cap-node', 'cap-1', 'cowrie.login.failed', { username: `u${i}`, password: 'p' });
    session('cap-node', 'cap-1', 'cowrie.session.closed');
    const [msg] = (await inbox.waitFor('cowrie.sessions', n + 1)).slice(n);
    const s = JSON.parse(msg!.payload);
    assert.equal(s.commands.length, 3);
    assert.ok(s.commands.every((c: string) => c.length <= 10), JSON.stringify(s.commands));
    assert.ok(s.commands[0].startsWith('command'), s.commands[0]);
    assert.equal(s.credentials.length, 3);
  });

  it('the same session id on two nodes gives two sessions, each under its own node', async () => {
    const n = inbox.on('cowrie.sessions').length;
    for (const node of ['twin-a', 'twin-b']) {
      session(node, 'same-id', 'cowrie.session.connect', { src_ip: node === 'twin-a' ? '192.0.2.10' : '192.0.2.20', src_port: 2, dst_ip: '10.0.0.1', dst_port: 22 });
    }
    session('twin-a', 'same-id', 'cowrie.command.input', { input: 'uname' });
    session('twin-b', 'same-id', 'cowrie.command.input', { input: 'id' });
    session('twin-a', 'same-id', 'cowrie.session.closed');
    session('twin-b', 'same-id', 'cowrie.session.closed');
    const msgs = (await inbox.waitFor('cowrie.sessions', n + 2)).slice(n);
    const byIdent = Object.fromEntries(msgs.map((m) => [m.ident, JSON.parse(m.payload)]));
    assert.deepEqual(Object.keys(byIdent).sort(), ['twin-a', 'twin-b']);
    assert.equal(byIdent['twin-a'].peerIP, '192.0.2.10');
    assert.deepEqual(byIdent['twin-a'].commands, ['uname']);
    assert.equal(byIdent['twin-b'].peerIP, '192.0.2.20');
    assert.deepEqual(byIdent['twin-b'].commands, ['id']);
  });

  it('after a failed commit the events are kept, retried, committed once and published once', async () => {
    const count = () => (db.handle.sqlite.prepare("SELECT count(*) AS n FROM events WHERE node_name = 'flaky-disk'").get() as { n: number }).n;
    // A real SQLite failure: every INSERT into events aborts until the trigger is dropped.
    db.handle.sqlite.exec("CREATE TRIGGER fail_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END");
    const before = inbox.on('apiary.events').filter((m) => m.ident === 'flaky-disk').length;
    try {
      for (let i = 0; i < 5; i++) svc.ingest(potEvent('flaky-disk', { event_type: 'cowrie.login.failed', data: { username: `r${i}` } }));
      await waitFor(() => svc.pendingCount === 5 && count() === 0, 5000, 'the failed commit to keep the events pending');
      assert.equal(inbox.on('apiary.events').filter((m) => m.ident === 'flaky-disk').length, before, 'nothing published before the commit');
    } finally {
      db.handle.sqlite.exec('DROP TRIGGER fail_events');
    }
    await waitFor(() => count() === 5, 15_000, 'the retry to commit');
    await waitFor(() => inbox.on('apiary.events').filter((m) => m.ident === 'flaky-disk').length === before + 5, 10_000, 'the 5 events published');
    assert.equal(svc.pendingCount, 0);
    const users = inbox.on('apiary.events').filter((m) => m.ident === 'flaky-disk').map((m) => JSON.parse(m.payload).data.username);
    assert.deepEqual(users, ['r0', 'r1', 'r2', 'r3', 'r4'], 'each once, in order');
    // A later event goes straight through.
    svc.ingest(potEvent('flaky-disk', { event_type: 'cowrie.login.failed', data: { username: 'after' } }));
    await waitFor(() => count() === 6, 5000, 'the next event committed');
  });
});
