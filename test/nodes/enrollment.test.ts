// Registration and TOTP enrollment end to end over real sockets: provisioned, approve and open
// modes, one-time codes, brute-force limiting, session replacement, revocation.
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { totpCode } from '../../src/protocol/index.js';
import {
  metricValue,
  nodeLog,
  nodeRow,
  parseAck,
  registration,
  startHarness,
  statusUpdate,
  tcpClient,
  waitFor,
  wsClient,
  type Harness,
  type TestClient,
} from './harness.js';

const open: TestClient[] = [];
const harnesses: Harness[] = [];

async function harness(opts: Parameters<typeof startHarness>[0]): Promise<Harness> {
  const h = await startHarness(opts);
  harnesses.push(h);
  return h;
}

async function register(h: Harness, name: string, nodeId: string, code?: string, via: 'tcp' | 'ws' = 'tcp') {
  const client = via === 'tcp' ? await tcpClient(h.tcp.port) : await wsClient(h.wsUrl);
  open.push(client);
  client.send(registration(name, nodeId, code));
  const ack = parseAck(await client.next());
  return { client, ack };
}

/** A code of the step after the current one: valid (window +-1) and not yet used. */
const nextStepCode = (secret: string, steps = 1) => totpCode(secret, Date.now() + steps * 30_000);

afterEach(() => {
  for (const c of open.splice(0)) c.close();
});
after(async () => {
  for (const h of harnesses) await h.close();
});

describe('provisioned enrollment', () => {
  it('refuses an unknown node and records the attempt in the per-address aggregate', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    const { client, ack } = await register(h, 'stranger', '5');
    assert.equal(ack.accepted, false);
    assert.equal(ack.message, 'Unknown node');
    assert.equal(ack.node_id_raw, '5');
    await client.closed;
    assert.equal(nodeRow(h, 'stranger'), undefined);
    await waitFor(async () => (await h.gateway.service.listUnknownRegistrations()).length === 1, 5000, 'aggregate flushed');
    const [agg] = await h.gateway.service.listUnknownRegistrations();
    assert.deepEqual({ ...agg, firstSeenAt: 0, lastSeenAt: 0 }, {
      addressKey: '127.0.0.1',
      lastAddress: '127.0.0.1',
      attempts: 1,
      firstSeenAt: 0,
      lastSeenAt: 0,
      lastNames: ['stranger'],
      lastResult: 'unknown_node',
    });
    assert.equal(await metricValue(h.registry, 'apiary_node_auth_failures_total', { reason: 'unknown_node' }), 1);
  });

  it('accepts the correct code, refuses a wrong one, and never logs the secret', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    const enrolled: string[] = [];
    h.gateway.on('enrolled', (e) => enrolled.push(`${e.nodeName}:${e.via}`));
    const { secret } = await h.gateway.service.createNode('hb-1');
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.deepEqual(enrolled, ['hb-1:provisioned']);

    const good = totpCode(secret, Date.now());
    const wrong = good === '000000' ? '000001' : '000000';
    const bad = await register(h, 'hb-1', '11', wrong);
    assert.equal(bad.ack.accepted, false);
    assert.equal(bad.ack.message, 'TOTP code invalid');
    await bad.client.closed;

    const missing = await register(h, 'hb-1', '11');
    assert.equal(missing.ack.message, 'TOTP code required');

    const ok = await register(h, 'hb-1', '11', good, 'ws');
    assert.equal(ok.ack.accepted, true);
    assert.equal(ok.ack.message, 'Registration successful');
    assert.equal(ok.ack.totp_key, undefined, 'an enrolled node is not sent a key');
    assert.equal(h.gateway.isOnline('hb-1'), true);
    assert.equal(nodeRow(h, 'hb-1')!.transport, 'ws');
    assert.equal(nodeRow(h, 'hb-1')!.status, 'Connected');
    assert.equal(await metricValue(h.registry, 'apiary_node_registrations_total', { result: 'accepted' }), 1);
    assert.equal(await metricValue(h.registry, 'apiary_node_auth_failures_total', { reason: 'invalid_code' }), 1);
    for (const line of h.rawLogs) assert.equal(line.includes(secret), false, 'secret in a log line');
  });

  it('accepts each code once: a replay is refused as already used and does not count toward the limiter', async () => {
    const h = await harness({ enrollment: 'provisioned', rateLimit: { maxFailuresPerName: 2, maxFailuresPerAddress: 2 } });
    const { secret } = await h.gateway.service.createNode('hb-2');
    const code = totpCode(secret, Date.now());
    const first = await register(h, 'hb-2', '1', code);
    assert.equal(first.ack.accepted, true);
    first.client.close();
    await waitFor(() => !h.gateway.isOnline('hb-2'));
    // A real node reuses its code for every reconnect inside the 30 s window.
    for (let i = 0; i < 4; i++) {
      const replay = await register(h, 'hb-2', '1', code);
      assert.equal(replay.ack.accepted, false);
      assert.equal(replay.ack.message, 'TOTP code already used');
      await replay.client.closed;
    }
    // An older step of the same secret is also spent (steps only move forward).
    const older = await register(h, 'hb-2', '1', totpCode(secret, Date.now() - 30_000));
    assert.ok(['TOTP code already used', 'TOTP code invalid'].includes(older.ack.message ?? ''));
    const next = await register(h, 'hb-2', '1', nextStepCode(secret));
    assert.equal(next.ack.accepted, true, next.ack.message);
    assert.ok(Number(nodeRow(h, 'hb-2')!.last_totp_step) > 0);
    assert.equal(await metricValue(h.registry, 'apiary_node_auth_failures_total', { reason: 'code_reused' }) >= 4, true);
    assert.equal(await metricValue(h.registry, 'apiary_node_auth_failures_total', { reason: 'rate_limited' }), 0);
  });

  it('rate limits failures per node_name, with a cool-down', async () => {
    const h = await harness({ enrollment: 'provisioned', rateLimit: { maxFailuresPerName: 3, maxFailuresPerAddress: 100, windowMs: 1500 } });
    const { secret } = await h.gateway.service.createNode('hb-3');
    const good = totpCode(secret, Date.now());
    const wrong = good === '123456' ? '654321' : '123456';
    for (let i = 0; i < 3; i++) assert.equal((await register(h, 'hb-3', '1', wrong)).ack.message, 'TOTP code invalid');
    const blocked = await register(h, 'hb-3', '1', good);
    assert.equal(blocked.ack.accepted, false);
    assert.equal(blocked.ack.message, 'Too many failed attempts');
    // Other names from the same address are not affected by the per-name limit.
    const other = await h.gateway.service.createNode('hb-3b');
    assert.equal((await register(h, 'hb-3b', '2', totpCode(other.secret, Date.now()))).ack.accepted, true);
    assert.equal(await metricValue(h.registry, 'apiary_node_auth_failures_total', { reason: 'rate_limited' }), 1);
    assert.ok(nodeLog(h, 'hb-3').some((e) => /Too many failed attempts/.test(e.message ?? '')));
    await new Promise((r) => setTimeout(r, 1600));
    const after = await register(h, 'hb-3', '1', good);
    assert.equal(after.ack.accepted, true, after.ack.message);
  });

  it('rate limits failures per remote address across node names', async () => {
    const h = await harness({ enrollment: 'provisioned', rateLimit: { maxFailuresPerName: 100, maxFailuresPerAddress: 3 } });
    const names = ['a1', 'a2', 'a3', 'a4'];
    const secrets = await Promise.all(names.map(async (n) => (await h.gateway.service.createNode(n)).secret));
    for (let i = 0; i < 3; i++) {
      const wrong = totpCode(secrets[i], Date.now()) === '111111' ? '222222' : '111111';
      assert.equal((await register(h, names[i], '1', wrong)).ack.message, 'TOTP code invalid');
    }
    const blocked = await register(h, 'a4', '1', totpCode(secrets[3], Date.now()));
    assert.equal(blocked.ack.message, 'Too many failed attempts');
    assert.equal(h.gateway.isOnline('a4'), false);
  });
});

describe('approve enrollment', () => {
  it('pending -> approved -> key issued (again after a lost ack) -> delivered -> code required', async () => {
    const h = await harness({ enrollment: 'approve' });
    const enrolled: string[] = [];
    h.gateway.on('enrolled', (e) => enrolled.push(`${e.nodeName}:${e.via}`));

    const first = await register(h, 'hb-new', '900', '123456');
    assert.equal(first.ack.accepted, false);
    assert.equal(first.ack.message, 'Node pending approval');
    await first.client.closed;
    const pending = nodeRow(h, 'hb-new')!;
    assert.equal(pending.enrollment, 'pending');
    assert.equal(pending.remote_address, '127.0.0.1');
    assert.equal(pending.address, '10.0.0.5');
    assert.equal(pending.totp_secret, null);
    // Retries while pending stay pending and are not brute-force failures: more retries than the
    // per-name limit (5) are all answered "pending", never "rate limited".
    for (let i = 0; i < 6; i++) assert.equal((await register(h, 'hb-new', '900')).ack.message, 'Node pending approval');
    assert.equal(await metricValue(h.registry, 'apiary_node_auth_failures_total', { reason: 'rate_limited' }), 0);

    const res = await h.app.inject({ method: 'POST', url: '/api/v1/nodes/hb-new/approve' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().enrollment, 'approved');

    // Accepted without a code check (the node still sends a code of its self-made secret).
    const lost = await register(h, 'hb-new', '901', '999999');
    assert.equal(lost.ack.accepted, true);
    const key1 = lost.ack.totp_key!;
    assert.match(key1, /^[A-Z2-7]{32}$/);
    // The node never got that ack: it reconnects and must get in again, with a fresh key.
    lost.client.close();
    await waitFor(() => !h.gateway.isOnline('hb-new'));
    const again = await register(h, 'hb-new', '902', totpCode(key1, Date.now()), 'ws');
    assert.equal(again.ack.accepted, true);
    const key2 = again.ack.totp_key!;
    assert.match(key2, /^[A-Z2-7]{32}$/);
    assert.notEqual(key2, key1);
    assert.equal(nodeRow(h, 'hb-new')!.enrollment, 'approved');
    assert.deepEqual(enrolled, []);

    // Any message after the ack means the node stored the key.
    again.client.send(statusUpdate('902', 'Running'));
    await waitFor(() => nodeRow(h, 'hb-new')!.enrollment === 'enrolled');
    assert.deepEqual(enrolled, ['hb-new:key_delivered']);
    again.client.close();
    await waitFor(() => !h.gateway.isOnline('hb-new'));

    assert.equal((await register(h, 'hb-new', '903')).ack.message, 'TOTP code required');
    assert.equal((await register(h, 'hb-new', '903', totpCode(key1, Date.now()))).ack.message, 'TOTP code invalid');
    const ok = await register(h, 'hb-new', '903', totpCode(key2, Date.now()));
    assert.equal(ok.ack.accepted, true);
    assert.equal(ok.ack.totp_key, undefined);
    for (const line of h.rawLogs) {
      assert.equal(line.includes(key1) || line.includes(key2), false, 'key in a log line');
    }
  });
});

describe('open enrollment', () => {
  it('accepts first contact with a key; the node then needs a code', async () => {
    const h = await harness({ enrollment: 'open' });
    const first = await register(h, 'hb-open', '1', '000000', 'ws');
    assert.equal(first.ack.accepted, true);
    const key = first.ack.totp_key!;
    assert.match(key, /^[A-Z2-7]{32}$/);
    first.client.send(statusUpdate('1', 'Running'));
    await waitFor(() => nodeRow(h, 'hb-open')!.enrollment === 'enrolled');
    first.client.close();
    await waitFor(() => !h.gateway.isOnline('hb-open'));
    assert.equal((await register(h, 'hb-open', '2')).ack.message, 'TOTP code required');
    assert.equal((await register(h, 'hb-open', '2', totpCode(key, Date.now()))).ack.accepted, true);
  });
});

describe('sessions', () => {
  it('a new session replaces the old one; the old one closing does not take the node offline', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    const offline: string[] = [];
    h.gateway.on('offline', (e) => offline.push(`${e.nodeName}:${e.reason}`));
    const { secret } = await h.gateway.service.createNode('hb-r');
    const oldOne = await register(h, 'hb-r', '1', totpCode(secret, Date.now()), 'ws');
    assert.equal(oldOne.ack.accepted, true);
    const newOne = await register(h, 'hb-r', '2', nextStepCode(secret));
    assert.equal(newOne.ack.accepted, true);
    await oldOne.client.closed;
    assert.equal(h.gateway.isOnline('hb-r'), true);
    assert.deepEqual(offline, []);
    assert.equal(h.gateway.sendCommand('hb-r', { GetInstalledPots: {} }), true);
    assert.match(await newOne.client.next(), /^\{"version":2,"message":\{"NodeCommand":\{"node_id":2,/);
    assert.equal(nodeRow(h, 'hb-r')!.node_id, '2');
    assert.equal(nodeRow(h, 'hb-r')!.status, 'Connected');
    assert.ok(nodeLog(h, 'hb-r').some((e) => e.kind === 'replaced'));
    newOne.client.close();
    await waitFor(() => offline.length === 1);
    assert.deepEqual(offline, ['hb-r:disconnect']);
  });

  it('revoke closes the live session at once and refuses the node afterwards', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    const { secret } = await h.gateway.service.createNode('hb-x');
    const live = await register(h, 'hb-x', '1', totpCode(secret, Date.now()));
    assert.equal(live.ack.accepted, true);
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/nodes/hb-x/revoke' });
    assert.equal(res.statusCode, 200);
    assert.equal(h.gateway.isOnline('hb-x'), false, 'offline as soon as the revoke answers');
    await live.client.closed;
    assert.equal(nodeRow(h, 'hb-x')!.disconnect_reason, 'revoked');
    const retry = await register(h, 'hb-x', '1', nextStepCode(secret));
    assert.equal(retry.ack.message, 'Node revoked');
    // Re-approval issues a new key at the next registration.
    await h.app.inject({ method: 'POST', url: '/api/v1/nodes/hb-x/approve' });
    const back = await register(h, 'hb-x', '1');
    assert.equal(back.ack.accepted, true);
    assert.match(back.ack.totp_key ?? '', /^[A-Z2-7]{32}$/);
  });

  it('rotating the secret closes the live session; only the new secret works after it', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    const { secret } = await h.gateway.service.createNode('hb-rot');
    const live = await register(h, 'hb-rot', '1', totpCode(secret, Date.now()));
    assert.equal(live.ack.accepted, true);
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/nodes/hb-rot/rotate-secret' });
    assert.equal(res.statusCode, 200);
    const rotated = res.json().secret as string;
    assert.match(rotated, /^[A-Z2-7]{32}$/);
    assert.notEqual(rotated, secret);
    await live.client.closed;
    assert.equal((await register(h, 'hb-rot', '1', nextStepCode(secret))).ack.message, 'TOTP code invalid');
    assert.equal((await register(h, 'hb-rot', '1', totpCode(rotated, Date.now()))).ack.accepted, true);
  });

  it('shutdown closes sessions with reason shutdown and marks nodes Offline; a restart starts all Offline', async () => {
    const h = await startHarness({ enrollment: 'open' });
    try {
      const a = await register(h, 'hb-s', '1');
      assert.equal(a.ack.accepted, true);
      const offline: string[] = [];
      h.gateway.on('offline', (e) => offline.push(e.reason));
      await h.gateway.close();
      await a.client.closed;
      assert.deepEqual(offline, ['shutdown']);
      assert.equal(nodeRow(h, 'hb-s')!.status, 'Offline');
      assert.equal(nodeRow(h, 'hb-s')!.disconnect_reason, 'shutdown');
    } finally {
      await h.close();
    }
  });
});
