// The node gateway over raw TCP (and TLS 1.3): framing, bad input, fixture replay, u64 node_id,
// NodeDrop, staleness. Real sockets, a real SQLite file.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';
import {
  metricValue,
  nodeLog,
  nodeRow,
  parseAck,
  potStatus,
  registration,
  startHarness,
  statusUpdate,
  tcpClient,
  tlsClient,
  waitFor,
  type Harness,
} from './harness.js';
import { fixtureLines } from '../helpers/fixture.js';

const nodeToCore = fixtureLines().filter((l) => !l.includes('"RegistrationAck"') && !l.includes('"NodeCommand"'));

describe('node gateway over TCP', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ enrollment: 'open', lineMaxBytes: 1024, authTimeoutMs: 400 });
  });
  after(async () => {
    await h.close();
  });

  it('replays the real node lines of the fixture and keeps the state they describe', async () => {
    const attacks: unknown[] = [];
    const nodeEvents: { event: string; message?: string }[] = [];
    const potStatuses: { potId: string; status: string }[] = [];
    const offline: { nodeName: string; reason: string }[] = [];
    h.gateway.on('attackEvent', (e) => attacks.push(e));
    h.gateway.on('nodeEvent', (e) => nodeEvents.push(e));
    h.gateway.on('potStatus', (e) => potStatuses.push(e));
    h.gateway.on('offline', (e) => offline.push(e));

    const registrations = nodeToCore.filter((l) => l.includes('"NodeRegistration"'));
    const rest = nodeToCore.filter((l) => !l.includes('"NodeRegistration"'));
    const c = await tcpClient(h.tcp.port);
    c.send(registrations[0]);
    const ack = parseAck(await c.next());
    assert.equal(ack.accepted, true);
    assert.equal(ack.message, 'Registration successful');
    assert.equal(ack.node_id_raw, '1414008881705812362');
    assert.match(ack.totp_key ?? '', /^[A-Z2-7]{32}$/);
    assert.equal(h.gateway.isOnline('hb-test-node'), true);

    for (const line of rest) c.send(line);
    await c.closed; // the fixture ends with NodeDrop
    await waitFor(() => offline.length === 1, 5000, 'offline event');

    const expectedAttacks = rest.filter((l) => /"status":""/.test(l)).length;
    assert.equal(expectedAttacks, 3);
    assert.equal(attacks.length, expectedAttacks);
    assert.deepEqual(nodeEvents.map((e) => e.event), ['Started', 'Error']);
    assert.equal(nodeEvents[1].message, 'Failed to get pot status: pot nope not found');
    assert.deepEqual(potStatuses.map((p) => p.status), ['Installing', 'Stopped', 'Running', 'Failed', 'Stopped', 'Running']);
    assert.deepEqual(offline, [{ nodeName: 'hb-test-node', reason: 'drop' }]);

    const row = nodeRow(h, 'hb-test-node')!;
    assert.equal(row.status, 'Offline');
    assert.equal(row.disconnect_reason, 'drop');
    assert.equal(row.enrollment, 'enrolled', 'key delivered once the node spoke after the ack');
    assert.equal(row.node_id, '1414008881705812362');
    assert.equal(typeof row.disconnected_at, 'number');
    const pots = h.db.sqlite.prepare('SELECT * FROM pots WHERE node_name = ?').all('hb-test-node') as Record<string, unknown>[];
    assert.equal(pots.length, 1);
    assert.equal(pots[0].status, 'Running');
    assert.equal(pots[0].pot_type, 'testpot');
    const kinds = nodeLog(h, 'hb-test-node').map((e) => e.kind);
    for (const k of ['registered', 'key_issued', 'enrolled', 'event:Started', 'event:Error', 'drop', 'disconnected']) {
      assert.ok(kinds.includes(k), `node_log has ${k}: ${kinds.join(',')}`);
    }
    // Attack events are not stored by the gateway (the events domain does that).
    assert.equal((h.db.sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n, 0);
    assert.equal(await metricValue(h.registry, 'apiary_node_messages_total', { type: 'PotStatusUpdate' }), 9);
    assert.equal(h.gateway.isOnline('hb-test-node'), false);
  });

  it('frames lines split across segments, merged in one segment, and ended by \\r\\n', async () => {
    const id = '18446744073709551615';
    const c = await tcpClient(h.tcp.port);
    const reg = Buffer.from(registration('split-node', id) + '\r\n');
    for (let i = 0; i < reg.length; i++) {
      c.write(reg.subarray(i, i + 1));
      if (i % 40 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    const ack = parseAck(await c.next());
    assert.equal(ack.accepted, true);
    assert.equal(ack.node_id_raw, id, 'u64 above 2^63 echoed exactly');
    // Three lines in one segment, the last one split across two writes with a multi-byte char at the cut.
    const withUnicode = potStatus(id, 'p3', 'Running', 'caf\u00e9 \u2713');
    const buf = Buffer.from(`${statusUpdate(id, 'Running')}\n${potStatus(id, 'p1', 'Installing')}\r\n${potStatus(id, 'p2', 'Stopped')}\n${withUnicode}\n`);
    const cut = buf.length - 5;
    c.write(buf.subarray(0, cut));
    await new Promise((r) => setTimeout(r, 20));
    c.write(buf.subarray(cut));
    await waitFor(() => (h.db.sqlite.prepare('SELECT count(*) AS n FROM pots WHERE node_name = ?').get('split-node') as { n: number }).n === 3);
    const p3 = h.db.sqlite.prepare('SELECT last_message FROM pots WHERE node_name = ? AND pot_id = ?').get('split-node', 'p3') as { last_message: string };
    assert.equal(p3.last_message, 'caf\u00e9 \u2713');
    assert.equal(nodeRow(h, 'split-node')!.status, 'Running');
    c.close();
    await waitFor(() => !h.gateway.isOnline('split-node'));
  });

  it('discards an oversized line up to its newline and keeps the session', async () => {
    const id = '42';
    const c = await tcpClient(h.tcp.port);
    c.send(registration('big-node', id));
    assert.equal(parseAck(await c.next()).accepted, true);
    const before = await metricValue(h.registry, 'apiary_node_oversized_lines_total');
    // 5 KiB line in pieces (cap is 1 KiB), followed in the same write by a valid line.
    const huge = `{"version":2,"message":{"NodeEvent":{"type":"Alarm","message":"${'x'.repeat(5000)}"}}}`;
    c.write(huge.slice(0, 2000));
    await new Promise((r) => setTimeout(r, 10));
    c.write(huge.slice(2000) + '\n' + statusUpdate(id, 'Deploying') + '\n');
    // And one whose newline arrives in the very segment that overflows.
    c.write('{"version":2,' + 'y'.repeat(1500) + '\n' + statusUpdate(id, 'Running') + '\n');
    await waitFor(() => nodeRow(h, 'big-node')!.status === 'Running');
    assert.equal((await metricValue(h.registry, 'apiary_node_oversized_lines_total')) - before, 2);
    assert.ok((await metricValue(h.registry, 'apiary_node_invalid_messages_total', { transport: 'tcp', reason: 'oversized' })) >= 2);
    assert.ok(h.logs.some((l) => l.reason === 'oversized' && /exceeds the 1024-byte cap/.test(String(l.error))));
    assert.equal(c.isClosed(), false);
    assert.equal(h.gateway.isOnline('big-node'), true);
    c.close();
  });

  it('logs and counts bad JSON, unknown variants, schema errors and wrong versions, and keeps the session', async () => {
    const id = '7';
    const c = await tcpClient(h.tcp.port);
    c.send(registration('bad-input-node', id));
    assert.equal(parseAck(await c.next()).accepted, true);
    const cases: [string, string][] = [
      ['{not json', 'json'],
      ['[1,2]', 'envelope'],
      ['{"version":2,"message":{"Bogus":{}}}', 'schema'],
      ['{"version":2,"message":{"NodeStatusUpdate":{"node_id":7,"status":"Dancing"}}}', 'schema'],
      ['{"version":1,"message":{"NodeStatusUpdate":{"node_id":7,"status":"Running"}}}', 'version'],
    ];
    const expected = new Map<string, number>();
    for (const [, reason] of cases) expected.set(reason, (expected.get(reason) ?? 0) + 1);
    const before = new Map<string, number>();
    for (const reason of expected.keys()) before.set(reason, await metricValue(h.registry, 'apiary_node_invalid_messages_total', { transport: 'tcp', reason }));
    for (const [line] of cases) c.send(line);
    c.send(statusUpdate(id, 'Stopped'));
    await waitFor(() => nodeRow(h, 'bad-input-node')!.status === 'Stopped');
    for (const [reason, n] of expected) {
      const after = await metricValue(h.registry, 'apiary_node_invalid_messages_total', { transport: 'tcp', reason });
      assert.equal(after - before.get(reason)!, n, `reason ${reason}`);
      assert.ok(h.logs.some((l) => l.reason === reason && l.nodeName === 'bad-input-node'), `log for ${reason}`);
    }
    assert.ok(h.logs.some((l) => /unknown message variant "Bogus"/.test(String(l.error))));
    assert.equal(c.isClosed(), false);
    c.close();
  });

  it('before registration: ignores other messages, keeps waiting, then accepts the registration', async () => {
    const c = await tcpClient(h.tcp.port);
    c.send(statusUpdate('9', 'Running'));
    c.send('garbage');
    await waitFor(() => h.logs.some((l) => l.reason === 'not_registered'));
    c.send(registration('late-reg-node', '9'));
    const ack = parseAck(await c.next());
    assert.equal(ack.accepted, true);
    c.close();
  });

  it('closes a connection that does not register within the auth timeout, with a clear log', async () => {
    const c = await tcpClient(h.tcp.port);
    const started = Date.now();
    await c.closed;
    assert.ok(Date.now() - started >= 300);
    assert.ok(h.logs.some((l) => /no NodeRegistration within 400 ms/.test(l.msg)));
  });

  it('echoes the u64 node_id exactly in NodeCommand', async () => {
    const id = '12891250069694539331';
    const c = await tcpClient(h.tcp.port);
    c.send(registration('cmd-node', id));
    assert.equal(parseAck(await c.next()).node_id_raw, id);
    assert.equal(h.gateway.sendCommand('cmd-node', { DeployPot: 'pot-01' }), true);
    const line = await c.next();
    assert.equal(line, `{"version":2,"message":{"NodeCommand":{"node_id":${id},"command":{"DeployPot":"pot-01"}}}}`);
    assert.equal(h.gateway.sendCommand('cmd-node', { Restart: {} }), true);
    assert.match(await c.next(), /"command":\{"Restart":\{\}\}/);
    assert.equal(h.gateway.sendCommand('no-such-node', { Restart: {} }), false);
    c.close();
  });

  it('accepts NodeDrop in all three wire forms', async () => {
    const forms = ['{"NodeDrop":{}}', '{"NodeDrop":null}', '"NodeDrop"'];
    for (const [i, form] of forms.entries()) {
      const name = `drop-node-${i}`;
      const c = await tcpClient(h.tcp.port);
      c.send(registration(name, String(100 + i)));
      assert.equal(parseAck(await c.next()).accepted, true);
      c.send(`{"version":2,"message":${form}}`);
      await c.closed;
      await waitFor(() => nodeRow(h, name)!.status === 'Offline');
      assert.equal(nodeRow(h, name)!.disconnect_reason, 'drop', form);
      assert.ok(nodeLog(h, name).some((e) => e.kind === 'drop'), form);
    }
  });

  it('persists last_seen at most about once per second under an attack event flood', async () => {
    const id = '555';
    const c = await tcpClient(h.tcp.port);
    c.send(registration('flood-node', id));
    assert.equal(parseAck(await c.next()).accepted, true);
    c.send(statusUpdate(id, 'Running'));
    await waitFor(() => nodeRow(h, 'flood-node')!.status === 'Running');
    let attacks = 0;
    const count = () => attacks++;
    h.gateway.on('attackEvent', count);
    const changes = () => (h.db.sqlite.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
    const seenBefore = Number(nodeRow(h, 'flood-node')!.last_seen_at);
    await new Promise((r) => setTimeout(r, 5));
    const before = changes();
    const n = 3000;
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(potStatus(id, 'pot-01', '', `login attempt ${i}`, ''));
    c.write(lines.join('\n') + '\n');
    await waitFor(() => attacks === n, 10_000, 'all attack events');
    h.gateway.off('attackEvent', count);
    const writes = changes() - before;
    assert.ok(writes <= 5, `${writes} row writes for ${n} attack events`);
    // ...and the last_seen of the flood still reaches the database within the flush interval.
    await waitFor(() => Number(nodeRow(h, 'flood-node')!.last_seen_at) > seenBefore, 3000, 'last_seen flush');
    c.close();
  });
});

describe('node gateway staleness', () => {
  let h: Harness;
  before(async () => {
    // Windows wide enough for two busy cores: stale after 2 s of silence, beats every 100 ms.
    h = await startHarness({ enrollment: 'open', heartbeatIntervalMs: 1000, staleFactor: 2, sweepIntervalMs: 50 });
  });
  after(async () => {
    await h.close();
  });

  it('marks a silent node offline (stale) and closes its session; a beating node stays online', async () => {
    const offline: { nodeName: string; reason: string }[] = [];
    h.gateway.on('offline', (e) => offline.push(e));
    // The beating node registers first: had its heartbeats not counted, it would go stale before
    // the silent one, so the silent one going stale is the condition to wait for.
    const beating = await tcpClient(h.tcp.port);
    beating.send(registration('beating-node', '2'));
    assert.equal(parseAck(await beating.next()).accepted, true);
    const timer = setInterval(() => beating.send(statusUpdate('2', 'Running')), 100);
    const silent = await tcpClient(h.tcp.port);
    silent.send(registration('silent-node', '1'));
    assert.equal(parseAck(await silent.next()).accepted, true);
    try {
      await waitFor(() => silent.isClosed(), 15_000, 'the silent node to be closed');
      await waitFor(() => offline.some((o) => o.nodeName === 'silent-node'));
      assert.deepEqual(offline.find((o) => o.nodeName === 'silent-node'), { nodeName: 'silent-node', reason: 'stale' });
      assert.equal(nodeRow(h, 'silent-node')!.status, 'Offline');
      assert.equal(nodeRow(h, 'silent-node')!.disconnect_reason, 'stale');
      assert.equal(h.gateway.isOnline('beating-node'), true);
      assert.equal(beating.isClosed(), false);
    } finally {
      clearInterval(timer);
      beating.close();
    }
  });
});

describe('node gateway over TLS 1.3', () => {
  let h: Harness;
  let cert: TestCertificate;
  before(async () => {
    cert = makeTestCertificate();
    h = await startHarness({ enrollment: 'open', tls: { certPath: cert.certPath, keyPath: cert.keyPath } });
  });
  after(async () => {
    await h.close();
    cert.cleanup();
  });

  it('registers a node over TLS 1.3', async () => {
    const c = await tlsClient(h.tcp.port, cert.ca);
    assert.equal(c.protocol, 'TLSv1.3');
    c.send(registration('tls-node', '31337'));
    const ack = parseAck(await c.next());
    assert.equal(ack.accepted, true);
    assert.equal(ack.node_id_raw, '31337');
    c.send(statusUpdate('31337', 'Running'));
    await waitFor(() => nodeRow(h, 'tls-node')?.status === 'Running');
    assert.equal(nodeRow(h, 'tls-node')?.transport, 'tls', 'TLS sessions are reported as tls, not tcp');
    assert.equal((await h.gateway.service.getNode('tls-node'))?.transport, 'tls');
    c.close();
  });

  it('refuses a TLS 1.2-only client', async () => {
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: h.tcp.port, ca: cert.ca, servername: 'localhost', maxVersion: 'TLSv1.2' });
        socket.once('secureConnect', () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      }),
      (err: NodeJS.ErrnoException) => /protocol version|unsupported protocol|wrong version/i.test(`${err.code} ${err.message}`),
    );
    // The listener keeps serving TLS 1.3 clients after the refused handshake.
    const ok = await tlsClient(h.tcp.port, cert.ca);
    ok.close();
  });

  it('refuses plaintext on the TLS port without registering anything', async () => {
    const c = await tcpClientRaw(h.tcp.port);
    c.send(registration('plain-node', '1'));
    await c.closed;
    assert.equal(nodeRow(h, 'plain-node'), undefined);
  });
});

async function tcpClientRaw(port: number) {
  return tcpClient(port);
}
