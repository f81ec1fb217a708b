// Bounds of enrollment: the approve-mode pending cap (unknown names beyond it are refused and
// leave no trace in the database), the once-per-interval node_log limit for repeated rejections,
// and concurrent registrations racing with one valid code.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { totpCode } from '../../src/protocol/index.js';
import { metricValue, nodeLog, nodeRow, parseAck, registration, startHarness, tcpClient, wsClient, type Harness, type TestClient } from './harness.js';

const open: TestClient[] = [];
const harnesses: Harness[] = [];
after(async () => {
  for (const c of open) c.close();
  for (const h of harnesses) await h.close();
});

async function harness(opts: Parameters<typeof startHarness>[0]): Promise<Harness> {
  const h = await startHarness(opts);
  harnesses.push(h);
  return h;
}

async function register(h: Harness, name: string, code?: string, via: 'tcp' | 'ws' = 'tcp') {
  const client = via === 'tcp' ? await tcpClient(h.tcp.port) : await wsClient(h.wsUrl);
  open.push(client);
  client.send(registration(name, '77', code));
  const ack = parseAck(await client.next(10_000));
  return { client, ack };
}

const count = (h: Harness, sql: string, ...args: unknown[]) => (h.db.sqlite.prepare(sql).get(...args) as { n: number }).n;

describe('approve-mode pending cap', () => {
  it('records unknown names up to the cap, refuses the rest without a row or node_log, and frees a place on approval', async () => {
    const h = await harness({ enrollment: 'approve', maxPendingNodes: 2 });
    assert.equal((await register(h, 'pend-1')).ack.message, 'Node pending approval');
    assert.equal((await register(h, 'pend-2')).ack.message, 'Node pending approval');
    assert.equal(nodeRow(h, 'pend-2')!.enrollment, 'pending');

    const over = await register(h, 'pend-3');
    assert.equal(over.ack.accepted, false);
    assert.equal(over.ack.message, 'Too many nodes pending approval');
    await over.client.closed;
    assert.equal(nodeRow(h, 'pend-3'), undefined, 'no row beyond the cap');
    assert.equal(count(h, 'SELECT count(*) AS n FROM node_log WHERE node_name = ?', 'pend-3'), 0, 'no node_log beyond the cap');
    assert.equal(count(h, "SELECT count(*) AS n FROM nodes WHERE enrollment = 'pending'"), 2);
    assert.equal(await metricValue(h.registry, 'apiary_node_auth_failures_total', { reason: 'too_many_pending' }), 1);

    // A name already pending is not new: it is still told it waits, not that the queue is full.
    assert.equal((await register(h, 'pend-1')).ack.message, 'Node pending approval');

    assert.equal((await h.app.inject({ method: 'POST', url: '/api/v1/nodes/pend-1/approve' })).statusCode, 200);
    assert.equal((await register(h, 'pend-3')).ack.message, 'Node pending approval');
    assert.equal(nodeRow(h, 'pend-3')!.enrollment, 'pending');
    assert.equal((await register(h, 'pend-4')).ack.message, 'Too many nodes pending approval');
  });

  it('a name with no node row retrying every few seconds is aggregated per address, not one row per attempt', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    for (let i = 0; i < 5; i++) {
      const r = await register(h, 'ghost');
      assert.equal(r.ack.message, 'Unknown node');
      await r.client.closed;
    }
    assert.equal(nodeLog(h, 'ghost').length, 0, 'unknown names write no node_log rows');
    assert.equal(await metricValue(h.registry, 'apiary_node_auth_failures_total', { reason: 'unknown_node' }), 5, 'every attempt is still counted');
    // The aggregate per source address is written about once a second.
    const row = () =>
      h.db.sqlite.prepare("SELECT attempts, last_names FROM unknown_registrations WHERE last_address = '127.0.0.1'").get() as { attempts: number; last_names: string } | undefined;
    const deadline = Date.now() + 10_000;
    while (row()?.attempts !== 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(row()?.attempts, 5, JSON.stringify(row()));
    assert.ok((JSON.parse(row()!.last_names) as string[]).includes('ghost'));
    assert.equal((h.db.sqlite.prepare('SELECT count(*) AS n FROM unknown_registrations').get() as { n: number }).n, 1, 'one row for the address');
    // Once the name is a node, its rejections are its own story line in node_log.
    await h.gateway.service.createNode('ghost');
    const r = await register(h, 'ghost');
    assert.equal(r.ack.message, 'TOTP code required');
    assert.equal(nodeLog(h, 'ghost').filter((e) => e.kind === 'rejected').length, 1);
  });
});

describe('concurrent registrations', () => {
  it('one valid code sent on several connections at once is accepted exactly once', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    const { secret } = await h.gateway.service.createNode('racer');
    const code = totpCode(secret, Date.now());
    const clients = await Promise.all([tcpClient(h.tcp.port), wsClient(h.wsUrl), tcpClient(h.tcp.port), wsClient(h.wsUrl), tcpClient(h.tcp.port)]);
    open.push(...clients);
    for (const c of clients) c.send(registration('racer', '5', code));
    const acks = await Promise.all(clients.map(async (c) => parseAck(await c.next(10_000))));
    const accepted = acks.filter((a) => a.accepted);
    assert.equal(accepted.length, 1, JSON.stringify(acks));
    for (const a of acks.filter((x) => !x.accepted)) assert.equal(a.message, 'TOTP code already used');
    assert.equal(await metricValue(h.registry, 'apiary_node_registrations_total', { result: 'accepted' }), 1);
    assert.equal(h.gateway.isOnline('racer'), true);
  });
});
