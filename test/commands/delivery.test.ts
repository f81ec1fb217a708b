// Delivery and status inference end to end: HTTP API -> BullMQ/Redis -> node gateway -> simulated
// HoneyBee node over TCP, and the node's answers back into the command status.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NodeCommandBody } from '../../src/protocol/index.js';
import type { SimulatedNodeOptions } from '../../src/simulator/node.js';
import { sleep, startStack, waitFor, type Stack } from './harness.js';

describe('command delivery', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({ answerTimeoutMs: { GetPotStatus: 1500, UpdateConfig: 5000 }, quietPeriodMs: 300, updateConfigGraceMs: 300 });
  });
  after(async () => {
    await stack.close();
  });

  const online = (name: string, extra: Partial<SimulatedNodeOptions> = {}) => stack.node(name, extra);
  const post = (name: string, command: unknown) => stack.post(name, command);
  const settled = (id: string, ms?: number) => stack.settled(id, ms);

  it('delivers a pot command and infers success from the pot status', async () => {
    const node = await online('n-basic', { pots: [{ id: 'pot-01', type: 'cowrie', status: 'Stopped' }] });
    const received = node.waitFor('command');
    const queued = await post('n-basic', { DeployPot: 'pot-01' });
    assert.equal(queued.kind, 'DeployPot');
    assert.equal(queued.potId, 'pot-01');
    assert.equal(queued.node, 'n-basic');
    assert.deepEqual((await received)[0], { DeployPot: 'pot-01' });
    const done = await settled(queued.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.result?.potStatus, 'Running');
    assert.match(done.result?.message ?? '', /started/);
    assert.ok(done.sentAt && done.finishedAt);
    // GET by id answers the same record.
    const res = await stack.app.inject({ method: 'GET', url: `/api/v1/commands/${queued.id}` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().status, 'succeeded');
  });

  it('sends unit commands as {"X":{}} on the wire', async () => {
    const node = await online('n-unit');
    const got = node.waitFor('command');
    const c = await post('n-unit', { UpdateConfig: {} });
    assert.deepEqual((await got)[0], { UpdateConfig: {} });
    const done = await settled(c.id);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(done.command, { UpdateConfig: {} });
  });

  it('keeps strict per-node order with one command in flight at a time', async () => {
    const node = await online('n-order', { pots: [{ id: 'p1', type: 'cowrie', status: 'Stopped' }] });
    const seen: Array<{ body: NodeCommandBody; at: number }> = [];
    node.on('command', (body) => seen.push({ body, at: Date.now() }));
    const bodies: NodeCommandBody[] = [];
    for (let i = 0; i < 12; i++) bodies.push(i % 2 === 0 ? { DeployPot: 'p1' } : { StopPot: 'p1' });
    // Fired concurrently: acceptance order defines seq, and seq is the delivery order.
    const views = await Promise.all(bodies.map((b) => post('n-order', b)));
    const bySeq = [...views].sort((a, b) => a.seq - b.seq);
    const done = await Promise.all(views.map((v) => settled(v.id)));
    assert.ok(done.every((d) => d.status === 'succeeded'), JSON.stringify(done.map((d) => d.status)));
    assert.equal(seen.length, 12);
    assert.deepEqual(
      seen.map((s) => s.body),
      bySeq.map((v) => v.command),
    );
    // One in flight: each command was sent only after the previous one finished.
    const final = await Promise.all(bySeq.map(async (v) => (await stack.service.get(v.id))!));
    for (let i = 1; i < final.length; i++) {
      assert.ok(Date.parse(final[i].sentAt!) >= Date.parse(final[i - 1].finishedAt!), `command ${i} overlapped its predecessor`);
    }
  });

  it('InstallPot: Installing is progress, Running is success; auto_start false succeeds on Stopped', async () => {
    await online('n-install');
    const a = await post('n-install', { InstallPot: { pot_id: 'c1', honeypot_type: 'cowrie', config: { ssh_port: '2222' }, auto_start: true } });
    const b = await post('n-install', { InstallPot: { pot_id: 'c2', honeypot_type: 'cowrie', auto_start: false } });
    const da = await settled(a.id);
    const db = await settled(b.id);
    assert.equal(da.status, 'succeeded');
    assert.equal(da.result?.potStatus, 'Running');
    assert.equal(db.status, 'succeeded');
    assert.equal(db.result?.potStatus, 'Stopped');
    assert.match(db.result?.message ?? '', /Installation complete/);
  });

  it('InstallPot fails on a Failed pot status, with the node\'s message', async () => {
    await online('n-install-fail', { failures: { InstallPot: 'Git clone failed: exit status 128' } });
    const c = await post('n-install-fail', { InstallPot: { pot_id: 'bad', honeypot_type: 'cowrie', auto_start: true } });
    const d = await settled(c.id);
    assert.equal(d.status, 'failed');
    assert.equal(d.result?.reason, 'pot_failed');
    assert.equal(d.result?.potStatus, 'Failed');
    assert.match(d.result?.message ?? '', /Git clone failed/);
  });

  it('fails on a NodeEvent Error while in flight, then delivers the next command', async () => {
    const node = await online('n-error', { pots: [{ id: 'real', type: 'cowrie', status: 'Running' }] });
    const bad = await post('n-error', { GetPotStatus: 'nope' });
    const good = await post('n-error', { GetPotInfo: 'real' });
    const d = await settled(bad.id);
    assert.equal(d.status, 'failed');
    assert.equal(d.result?.reason, 'node_error');
    assert.match(d.result?.message ?? '', /pot nope not found/);
    const g = await settled(good.id);
    assert.equal(g.status, 'succeeded');
    assert.match(g.result?.message ?? '', /Info: cowrie pot real is Running/);
    assert.equal(node.stats.commands, 2);
  });

  it('GetInstalledPots collects the pots until a quiet period, empty when there are none', async () => {
    await online('n-pots', {
      pots: [
        { id: 'a', type: 'cowrie', status: 'Running' },
        { id: 'b', type: 'dionaea', status: 'Stopped' },
      ],
    });
    await online('n-nopots');
    const withPots = await post('n-pots', { GetInstalledPots: {} });
    const without = await post('n-nopots', { GetInstalledPots: {} });
    const d1 = await settled(withPots.id);
    const d2 = await settled(without.id);
    assert.equal(d1.status, 'succeeded');
    assert.deepEqual(
      d1.result?.pots?.map((p) => [p.potId, p.potType, p.status]).sort(),
      [
        ['a', 'cowrie', 'Running'],
        ['b', 'dionaea', 'Stopped'],
      ],
    );
    assert.equal(d2.status, 'succeeded');
    assert.deepEqual(d2.result?.pots ?? [], []);
  });

  it('times out a command the node never answers', async () => {
    const node = await online('n-silent', { pots: [{ id: 'x', type: 'cowrie', status: 'Running' }] });
    // A node that takes the command and never says anything about it.
    (node as unknown as { answer: () => void }).answer = () => {};
    const t0 = Date.now();
    const c = await post('n-silent', { GetPotStatus: 'x' });
    const d = await settled(c.id);
    assert.equal(d.status, 'failed');
    assert.equal(d.result?.reason, 'timeout');
    assert.ok(Date.now() - t0 >= 1400, 'timed out too early');
  });

  it('Restart succeeds when the node re-registers (new node_id)', async () => {
    let offset = 0;
    const node = await online('n-restart', { clock: () => Date.now() + offset });
    // A restarted node reuses the TOTP code of the current 30 s window, which the gateway refuses
    // once used; move its clock to the next window like a real node a little later.
    node.on('restarting', () => {
      offset += 30_000;
    });
    const before = node.nodeId;
    const c = await post('n-restart', { Restart: {} });
    const d = await settled(c.id, 20_000);
    assert.equal(d.status, 'succeeded', JSON.stringify(d.result));
    assert.notEqual(node.nodeId, before);
  });

  it('a reconnect of the same node process keeps the command in flight; a new process fails it', async () => {
    // Three registrations inside one TOTP window need three distinct steps: t-1, t, t+1.
    let offset = -30_000;
    const clock = () => Date.now() + offset;
    const node = await online('n-flaky', { clock, pots: [{ id: 'p', type: 'cowrie', status: 'Running' }] });
    const original = (node as unknown as { answer: (c: unknown) => void }).answer;
    const held: unknown[] = [];
    (node as unknown as { answer: (c: unknown) => void }).answer = (c) => held.push(c);
    const c = await post('n-flaky', { StopPot: 'p' });
    await waitFor(() => held.length === 1, 'command received');
    // Network drop: same node_id comes back (next TOTP window, the current code is spent).
    offset += 30_000;
    const back = node.waitFor('registered');
    (node as unknown as { link: { close(): void } }).link.close();
    await back;
    await sleep(100);
    assert.equal((await stack.service.get(c.id))?.status, 'sent');
    (node as unknown as { answer: (c: unknown) => void }).answer = original;
    original.call(node, held[0]);
    assert.equal((await settled(c.id)).status, 'succeeded');

    // Same again, but the node process restarts (new node_id) instead of answering.
    (node as unknown as { answer: (c: unknown) => void }).answer = () => {};
    const c2 = await post('n-flaky', { StopPot: 'p' });
    await waitFor(async () => (await stack.service.get(c2.id))?.status === 'sent', 'second command sent');
    await node.stop();
    const reborn = stack.nodeFor('n-flaky', node.secret, { clock: () => Date.now() + 30_000 });
    reborn.start();
    const d2 = await settled(c2.id);
    assert.equal(d2.status, 'failed');
    assert.equal(d2.result?.reason, 'node_restarted');
  });

  it('waits while the node is offline and delivers when it registers', async () => {
    const secret = await stack.provision('n-later');
    const a = await post('n-later', { GetInstalledPots: {} });
    const b = await post('n-later', { UpdateConfig: {} });
    await sleep(600);
    assert.equal((await stack.service.get(a.id))?.status, 'queued');
    assert.equal((await stack.service.get(b.id))?.status, 'queued');
    const node = stack.nodeFor('n-later', secret);
    const order: string[] = [];
    node.on('command', (c) => order.push(Object.keys(c)[0]));
    node.start();
    assert.equal((await settled(a.id)).status, 'succeeded');
    assert.equal((await settled(b.id)).status, 'succeeded');
    assert.deepEqual(order, ['GetInstalledPots', 'UpdateConfig']);
  });

  it('broadcasts to a list, to online nodes and by status, with a batch id', async () => {
    await online('b1');
    await online('b2');
    const res = await stack.app.inject({
      method: 'POST',
      url: '/api/v1/commands/broadcast',
      payload: { nodes: ['b1', 'b2', 'b1'], command: { GetInstalledPots: {} } },
    });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json() as { batchId: string; count: number; commands: Array<{ id: string; node: string }> };
    assert.equal(body.count, 2);
    assert.deepEqual(body.commands.map((c) => c.node).sort(), ['b1', 'b2']);
    for (const c of body.commands) assert.equal((await settled(c.id)).status, 'succeeded');
    const list = await stack.app.inject({ method: 'GET', url: `/api/v1/commands?batch=${body.batchId}` });
    assert.equal(list.json().commands.length, 2);

    const onlineNow = stack.gateway.onlineNodes().sort();
    const res2 = await stack.app.inject({ method: 'POST', url: '/api/v1/commands/broadcast', payload: { nodes: 'online', command: { UpdateConfig: {} } } });
    assert.equal(res2.statusCode, 201, res2.body);
    assert.deepEqual(
      (res2.json().commands as Array<{ node: string }>).map((c) => c.node).sort(),
      onlineNow,
    );
    // 'all': every node allowed to connect, online or not.
    const resAll = await stack.app.inject({ method: 'POST', url: '/api/v1/commands/broadcast', payload: { nodes: 'all', command: { UpdateConfig: {} } } });
    assert.equal(resAll.statusCode, 201, resAll.body);
    const allNodes = (resAll.json().commands as Array<{ node: string }>).map((c) => c.node);
    assert.ok(allNodes.includes('b1') && allNodes.includes('n-later') && allNodes.length >= onlineNow.length);
    // Status selector: offline nodes ('Offline' status) only.
    await stack.provision('b-off');
    const res3 = await stack.app.inject({ method: 'POST', url: '/api/v1/commands/broadcast', payload: { nodes: { status: 'Offline' }, command: { UpdateConfig: {} } } });
    assert.equal(res3.statusCode, 201, res3.body);
    const offNodes = (res3.json().commands as Array<{ node: string }>).map((c) => c.node);
    assert.ok(offNodes.includes('b-off'));
    assert.ok(!offNodes.includes('b1'));
  });
});
