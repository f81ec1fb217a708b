// What unauthenticated or hostile peers can do to enrollment and to the node tables: TOTP
// guessing that must never lock out the real node, flooding approve mode, growing node_log with
// made-up names or huge NodeEvent messages, and names or values that would be stored altered.
// Real sockets (from several loopback addresses), a real SQLite file.
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { totpCode } from '../../src/protocol/index.js';
import { metricValue, nodeLog, nodeRow, parseAck, registration, startHarness, tcpClient, waitFor, type Harness, type TestClient } from './harness.js';

const open: TestClient[] = [];
const harnesses: Harness[] = [];

async function harness(opts: Parameters<typeof startHarness>[0]): Promise<Harness> {
  const h = await startHarness(opts);
  harnesses.push(h);
  return h;
}

async function register(h: Harness, name: string, nodeId: string, code?: string, from?: string) {
  const client = await tcpClient(h.tcp.port, from);
  open.push(client);
  client.send(registration(name, nodeId, code));
  const ack = parseAck(await client.next());
  return { client, ack };
}

const wrongCode = (secret: string) => (totpCode(secret, Date.now()) === '000000' ? '000001' : '000000');
const count = (h: Harness, sql: string, ...args: unknown[]) => (h.db.sqlite.prepare(sql).get(...args) as { n: number }).n;

afterEach(() => {
  for (const c of open.splice(0)) c.close();
});
after(async () => {
  for (const h of harnesses) await h.close();
});

describe('TOTP guess limits (row 11)', () => {
  it('failures from other addresses never lock out the node at the address it last authenticated from', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    const { secret } = await h.gateway.service.createNode('real-1');
    const first = await register(h, 'real-1', '1', totpCode(secret, Date.now()));
    assert.equal(first.ack.accepted, true);
    first.client.close();
    await waitFor(() => !h.gateway.isOnline('real-1'));

    // The attacker guesses from another address until refused unchecked.
    let refused = 0;
    for (let i = 0; i < 8; i++) {
      const g = await register(h, 'real-1', '66', wrongCode(secret), '127.0.0.2');
      if (g.ack.message === 'Too many failed attempts') refused++;
      await g.client.closed;
    }
    assert.ok(refused >= 3, 'the attacker address is limited');
    // The real node, from its address, with its next code: accepted.
    const real = await register(h, 'real-1', '1', totpCode(secret, Date.now() + 30_000));
    assert.equal(real.ack.accepted, true, real.ack.message);
  });

  it('bounds the guesses per name from many addresses (the untrusted budget)', async () => {
    const h = await harness({ enrollment: 'provisioned', rateLimit: { maxUntrustedFailuresPerName: 4 } });
    const { secret } = await h.gateway.service.createNode('real-2');
    const first = await register(h, 'real-2', '1', totpCode(secret, Date.now()));
    assert.equal(first.ack.accepted, true);
    first.client.close();
    await waitFor(() => !h.gateway.isOnline('real-2'));
    const answers: string[] = [];
    for (let i = 2; i < 10; i++) {
      const g = await register(h, 'real-2', '66', wrongCode(secret), `127.0.0.${i}`);
      answers.push(g.ack.message ?? '');
      await g.client.closed;
    }
    assert.deepEqual(answers.slice(0, 4), Array(4).fill('TOTP code invalid'));
    assert.deepEqual(answers.slice(4), Array(4).fill('Too many failed attempts'), 'new addresses are refused unchecked once the name budget is spent');
    // Even the right code from a fresh address is refused while the budget is spent...
    const fresh = await register(h, 'real-2', '66', totpCode(secret, Date.now() + 30_000), '127.0.0.20');
    assert.equal(fresh.ack.message, 'Too many failed attempts');
    // ...but not from the node's own address.
    const real = await register(h, 'real-2', '1', totpCode(secret, Date.now() + 30_000));
    assert.equal(real.ack.accepted, true, real.ack.message);
  });
});

describe('approve mode under a flood (row 10)', () => {
  it('caps pending entries per address; other addresses still get theirs; admins bulk-reject by address and age', async () => {
    const h = await harness({ enrollment: 'approve', maxPendingPerAddress: 5 });
    for (let i = 0; i < 30; i++) {
      const r = await register(h, `fake-${i}`, '1', undefined, '127.0.0.2');
      assert.equal(r.ack.accepted, false);
      await r.client.closed;
    }
    assert.equal(count(h, "SELECT count(*) AS n FROM nodes WHERE enrollment = 'pending'"), 5);
    const refused = await register(h, 'fake-99', '1', undefined, '127.0.0.2');
    assert.match(refused.ack.message ?? '', /^Too many nodes pending approval/);
    // A real new node from elsewhere is recorded as pending.
    const real = await register(h, 'real-new', '7', undefined, '127.0.0.3');
    assert.equal(real.ack.message, 'Node pending approval');
    assert.equal(nodeRow(h, 'real-new')!.enrollment, 'pending');

    const noFilter = await h.app.inject({ method: 'POST', url: '/api/v1/enrollment/pending/reject', payload: {} });
    assert.equal(noFilter.statusCode, 400);
    const badAddr = await h.app.inject({ method: 'POST', url: '/api/v1/enrollment/pending/reject', payload: { address: 'not-an-ip' } });
    assert.equal(badAddr.statusCode, 400);
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/enrollment/pending/reject', payload: { address: '127.0.0.2' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().rejected, 5);
    assert.equal(count(h, "SELECT count(*) AS n FROM nodes WHERE enrollment = 'pending'"), 1);
    assert.equal(nodeRow(h, 'real-new')!.enrollment, 'pending');
    // By age: nothing is older than an hour; everything is older than 0 s.
    assert.equal((await h.app.inject({ method: 'POST', url: '/api/v1/enrollment/pending/reject', payload: { olderThanSeconds: 3600 } })).json().rejected, 0);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await h.app.inject({ method: 'POST', url: '/api/v1/enrollment/pending/reject', payload: { olderThanSeconds: 0 } })).json().rejected, 1);
    assert.equal(await metricValue(h.registry, 'apiary_node_pending_removed_total', { reason: 'bulk_reject' }), 6);
  });

  it('pending entries that are not retried expire', async () => {
    const h = await harness({ enrollment: 'approve', pendingTtlMs: 300, sweepIntervalMs: 50 });
    const r = await register(h, 'gone-1', '1');
    assert.equal(r.ack.message, 'Node pending approval');
    assert.equal(nodeRow(h, 'gone-1')!.enrollment, 'pending');
    await waitFor(() => nodeRow(h, 'gone-1') === undefined, 5000, 'pending entry expired');
    assert.equal(await metricValue(h.registry, 'apiary_node_pending_removed_total', { reason: 'expired' }), 1);
  });
});

describe('what peers can grow (row 9)', () => {
  it('aggregates made-up names per address instead of one node_log row each', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    for (let i = 0; i < 40; i++) {
      const r = await register(h, `nobody-${i}`, '1', undefined, '127.0.0.4');
      assert.equal(r.ack.message, 'Unknown node');
      await r.client.closed;
    }
    assert.equal(count(h, 'SELECT count(*) AS n FROM node_log'), 0);
    await waitFor(async () => (await h.gateway.service.listUnknownRegistrations())[0]?.attempts === 40, 5000, 'aggregate of 40 attempts');
    const [agg] = await h.gateway.service.listUnknownRegistrations();
    assert.equal(agg.addressKey, '127.0.0.4');
    assert.equal(agg.lastNames.length, 10);
    assert.equal(agg.lastNames.at(-1), 'nobody-39');
    assert.equal(count(h, 'SELECT count(*) AS n FROM unknown_registrations'), 1);
    // One warn line for the address, not one per attempt.
    const lines = h.logs.filter((l) => /unknown name refused/.test(l.msg));
    assert.equal(lines.length, 1);
  });

  it('caps NodeEvent messages and pot messages stored, with a marker, counted; trims node_log per node', async () => {
    const h = await harness({ enrollment: 'open', storage: { logMessageMaxBytes: 200, potMessageMaxBytes: 100, maxLogRowsPerNode: 20 } });
    const r = await register(h, 'chatty', '5');
    assert.equal(r.ack.accepted, true);
    const big = 'é'.repeat(5000);
    r.client.send(`{"version":2,"message":{"NodeEvent":{"type":"Error","message":${JSON.stringify(big)}}}}`);
    r.client.send(`{"version":2,"message":{"PotStatusUpdate":{"node_id":5,"pot_id":"p1","pot_type":"cowrie","status":"Failed","message":${JSON.stringify(big)}}}}`);
    await waitFor(() => nodeLog(h, 'chatty').some((e) => e.kind === 'event:Error'), 5000, 'NodeEvent stored');
    const stored = nodeLog(h, 'chatty').find((e) => e.kind === 'event:Error')!.message!;
    assert.ok(Buffer.byteLength(stored) <= 200, `stored ${Buffer.byteLength(stored)} bytes`);
    assert.match(stored, /^é+…\[truncated\] \(10000 bytes\)$/);
    await waitFor(async () => (await h.gateway.service.listPots('chatty')).length === 1);
    const pot = (await h.gateway.service.listPots('chatty'))[0]!;
    assert.ok(Buffer.byteLength(pot.lastMessage!) <= 100);
    assert.match(pot.lastMessage!, /…\[truncated\] \(10000 bytes\)$/);
    assert.equal(await metricValue(h.registry, 'apiary_node_truncated_strings_total', { field: 'node_log.message' }), 1);
    assert.equal(await metricValue(h.registry, 'apiary_node_truncated_strings_total', { field: 'pots.last_message' }), 1);
    for (let i = 0; i < 100; i++) r.client.send(`{"version":2,"message":{"NodeEvent":{"type":"Alarm","message":"n${i}"}}}`);
    await waitFor(() => nodeLog(h, 'chatty').some((e) => e.message === 'n99'), 5000, 'last event stored');
    const rows = nodeLog(h, 'chatty').length;
    assert.ok(rows <= 22, `node_log rows of one node stay near the cap (${rows})`);
  });

  it('caps the pots stored per node; known pots keep updating', async () => {
    const h = await harness({ enrollment: 'open', storage: { maxPotsPerNode: 3 } });
    const r = await register(h, 'many-pots', '9');
    assert.equal(r.ack.accepted, true);
    const pot = (id: string, status: string) => `{"version":2,"message":{"PotStatusUpdate":{"node_id":9,"pot_id":"${id}","pot_type":"cowrie","status":"${status}"}}}`;
    for (let i = 0; i < 50; i++) r.client.send(pot(`p${i}`, 'Running'));
    r.client.send(pot('p0', 'Stopped'));
    await waitFor(async () => (await h.gateway.service.listPots('many-pots')).find((p) => p.potId === 'p0')?.status === 'Stopped', 5000, 'known pot updated');
    assert.deepEqual((await h.gateway.service.listPots('many-pots')).map((p) => p.potId), ['p0', 'p1', 'p2']);
    assert.equal(await metricValue(h.registry, 'apiary_node_pots_capped_total'), 47);
    assert.equal(h.logs.filter((l) => /more pots than the per-node cap/.test(l.msg)).length, 1);
  });

  it('retention deletes old node_log rows and old aggregates', async () => {
    const h = await harness({ enrollment: 'provisioned', sweepIntervalMs: 50, retention: { logMaxAgeMs: 60_000, unknownMaxAgeMs: 60_000, intervalMs: 50 } });
    const old = Date.now() - 120_000;
    h.db.sqlite.prepare("INSERT INTO node_log (node_name, kind, message, at) VALUES ('x', 'registered', NULL, ?), ('x', 'registered', NULL, ?)").run(old, Date.now());
    h.db.sqlite.prepare("INSERT INTO unknown_registrations (address_key, last_address, attempts, first_seen_at, last_seen_at, last_names, last_result) VALUES ('10.9.9.9', '10.9.9.9', 3, ?, ?, '[]', 'unknown_node')").run(old, old);
    await waitFor(() => count(h, 'SELECT count(*) AS n FROM node_log') === 1 && count(h, 'SELECT count(*) AS n FROM unknown_registrations') === 0, 5000, 'retention ran');
  });
});

describe('names and values (row 14)', () => {
  it('refuses "." and ".." and control characters with a clear error, on the wire and in the API', async () => {
    const h = await harness({ enrollment: 'open' });
    for (const name of ['.', '..']) {
      const r = await register(h, name, '1');
      assert.equal(r.ack.accepted, false);
      assert.equal(r.ack.message, `Invalid node name: "${name}" is a path dot-segment`);
      assert.equal(nodeRow(h, name), undefined);
      const api = await h.app.inject({ method: 'POST', url: '/api/v1/nodes', payload: { name } });
      assert.equal(api.statusCode, 400);
    }
    const c = await tcpClient(h.tcp.port);
    open.push(c);
    c.send(registration('evil\u0000name', '18446744073709551615'));
    const ack = parseAck(await c.next());
    assert.equal(ack.accepted, false);
    assert.equal(ack.node_id_raw, '18446744073709551615');
    assert.match(ack.message ?? '', /Invalid NodeRegistration: .*node_name: must not contain control characters/);
    await c.closed;
    assert.equal(count(h, 'SELECT count(*) AS n FROM nodes'), 0);
  });

  it('stores the values received: u64 node_id exact, full NodeEvent names', async () => {
    const h = await harness({ enrollment: 'open' });
    const r = await register(h, 'exact', '18446744073709551615');
    assert.equal(r.ack.accepted, true);
    assert.equal(nodeRow(h, 'exact')!.node_id, '18446744073709551615');
    const event = 'A' + 'b'.repeat(63);
    r.client.send(`{"version":2,"message":{"NodeEvent":{"type":"${event}"}}}`);
    await waitFor(() => nodeLog(h, 'exact').some((e) => e.kind.startsWith('event:')), 5000, 'NodeEvent stored');
    assert.equal(nodeLog(h, 'exact').find((e) => e.kind.startsWith('event:'))!.kind, `event:${event}`);
    const api = await h.app.inject({ method: 'GET', url: '/api/v1/nodes/exact' });
    assert.equal(api.json().nodeId, '18446744073709551615');
  });
});
