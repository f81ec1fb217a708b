// Failure behaviour: Redis killed and restarted (503s, nothing lost, recovery by itself), Redis
// losing its data, and the command service restarting (gracefully, and after a crash that left a
// job active) against the same Redis and SQLite file.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { NodeCommandBody } from '../../src/protocol/index.js';
import { SimulatedNode } from '../../src/simulator/node.js';
import { sleep, startStack, waitFor, type Stack } from './harness.js';

type Answer = (command: NodeCommandBody) => void;

/** The node receives commands but answers only when told to. */
function holdAnswers(node: SimulatedNode): { release(): number } {
  const original = (SimulatedNode.prototype as unknown as { answer: Answer }).answer;
  const held: NodeCommandBody[] = [];
  (node as unknown as { answer: Answer }).answer = (c) => held.push(c);
  return {
    release() {
      (node as unknown as { answer: Answer }).answer = original;
      const n = held.length;
      for (const c of held.splice(0)) original.call(node, c);
      return n;
    },
  };
}

function kinds(node: SimulatedNode): string[] {
  const got: string[] = [];
  node.on('command', (c) => got.push(`${Object.keys(c)[0]}:${String(Object.values(c)[0] && typeof Object.values(c)[0] === 'string' ? Object.values(c)[0] : '')}`));
  return got;
}

describe('command queue resilience', () => {
  let stack: Stack;

  before(async () => {
    // A short stalled-check period everywhere: BullMQ runs one check per stalledInterval across all
    // workers of the queue, so a long one left by an earlier service would delay the crash test.
    stack = await startStack({ answerTimeoutMs: { GetPotStatus: 2000 }, updateConfigGraceMs: 200, quietPeriodMs: 200, stalledIntervalMs: 300 });
  });
  after(async () => {
    await stack.close();
  });

  it('Redis killed: 503 at once, reads and node sessions keep working, nothing accepted is lost', async () => {
    const node = await stack.node('r1', { pots: [{ id: 'p', type: 'cowrie', status: 'Stopped' }] });
    const offSecret = await stack.provision('r-off');
    const accepted: string[] = [];
    for (let i = 0; i < 5; i++) accepted.push((await stack.post('r-off', { GetPotLogs: `log-${i}` })).id);
    const hold = holdAnswers(node);
    const inFlight = await stack.post('r1', { DeployPot: 'p' });
    await waitFor(async () => (await stack.service.get(inFlight.id))?.status === 'sent', 'in-flight command sent');

    // SIGKILL right after accepting: the last second of AOF may be gone.
    await stack.redis.kill();
    await waitFor(() => !stack.service.redisReady(), 'service to notice Redis is gone', 5000);

    const t0 = Date.now();
    const res = await stack.app.inject({ method: 'POST', url: '/api/v1/nodes/r1/commands', payload: { command: { StopPot: 'p' } } });
    assert.ok(Date.now() - t0 < 1000, `503 took ${Date.now() - t0} ms`);
    assert.equal(res.statusCode, 503, res.body);
    assert.deepEqual(Object.keys(res.json()).sort(), ['error', 'message']);
    assert.equal(res.json().error, 'redis_unavailable');
    const bc = await stack.app.inject({ method: 'POST', url: '/api/v1/commands/broadcast', payload: { nodes: 'all', command: { UpdateConfig: {} } } });
    assert.equal(bc.statusCode, 503);
    assert.equal((await stack.service.list({ node: 'r1' })).commands.length, 1, 'the refused command left no row');

    // Reads are served from SQLite.
    const list = await stack.app.inject({ method: 'GET', url: '/api/v1/commands?node=r-off' });
    assert.equal(list.statusCode, 200);
    assert.equal(list.json().commands.length, 5);

    // Node sessions and events keep working: the held answer settles the in-flight command, and
    // a node can register.
    assert.equal(hold.release(), 1);
    const settled = await stack.settled(inFlight.id);
    assert.equal(settled.status, 'succeeded');
    const r2 = await stack.node('r2');
    assert.ok(stack.gateway.isOnline('r1') && r2.registered);

    await stack.redis.restart();
    await waitFor(() => stack.service.redisReady(), 'service to reconnect', 10_000);
    const after = await stack.post('r1', { StopPot: 'p' });
    assert.equal((await stack.settled(after.id)).status, 'succeeded');

    // Every command accepted before the crash is delivered, in order.
    const offNode = stack.nodeFor('r-off', offSecret, { pots: [{ id: 'x', type: 'cowrie', status: 'Running' }] });
    const got = kinds(offNode);
    offNode.start();
    const results = await Promise.all(accepted.map((id) => stack.settled(id)));
    // The simulator answers logs of unknown pots with a NodeEvent Error: the command was delivered.
    assert.ok(results.every((r) => r.status === 'failed' && r.result?.reason === 'node_error'), JSON.stringify(results.map((r) => r.status)));
    assert.deepEqual(got, ['GetPotLogs:log-0', 'GetPotLogs:log-1', 'GetPotLogs:log-2', 'GetPotLogs:log-3', 'GetPotLogs:log-4']);
  });

  it('Redis that lost every job: queued commands are still delivered, in order', async () => {
    const secret = await stack.provision('wiped');
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await stack.post('wiped', { GetPotStatus: `q${i}` })).id);
    const raw = new Redis(stack.redis.url);
    await raw.flushall();
    const jobKeys = ids.map((id) => `bull:apiary-commands:${id}`);
    assert.equal(await raw.exists(...jobKeys), 0);
    // A reconnect re-synchronises Redis from SQLite: every queued command gets its job back.
    await raw.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await waitFor(async () => (await raw.exists(...jobKeys)) === ids.length, 'jobs re-created after the reconnect');
    await raw.flushall();
    await raw.quit();
    // And with the jobs gone again and no reconnect, the node coming online still gets them.
    const node = stack.nodeFor('wiped', secret);
    const got = kinds(node);
    node.start();
    for (const id of ids) assert.equal((await stack.settled(id)).status, 'failed'); // unknown pots: node Error
    assert.deepEqual(got, ['GetPotStatus:q0', 'GetPotStatus:q1', 'GetPotStatus:q2', 'GetPotStatus:q3']);
  });

  it('service restart: queued commands are delivered in order, a sent one still gets its answer or times out', async () => {
    const answering = await stack.node('s1', { pots: [{ id: 'p', type: 'cowrie', status: 'Running' }] });
    const silent = await stack.node('s2', { pots: [{ id: 'p', type: 'cowrie', status: 'Running' }] });
    const offSecret = await stack.provision('s-off');
    const hold = holdAnswers(answering);
    (silent as unknown as { answer: Answer }).answer = () => {};
    const waiting = await stack.post('s1', { StopPot: 'p' });
    const doomed = await stack.post('s2', { GetPotStatus: 'p' });
    await waitFor(async () => (await stack.service.get(waiting.id))?.status === 'sent' && (await stack.service.get(doomed.id))?.status === 'sent', 'both sent');
    const queued: string[] = [];
    for (let i = 0; i < 4; i++) queued.push((await stack.post('s-off', { GetPotInfo: `i${i}` })).id);

    await stack.restartService({ answerTimeoutMs: { GetPotStatus: 2000 }, updateConfigGraceMs: 200, quietPeriodMs: 200 });

    // The answer arrives after the restart and is attributed to the command sent before it.
    hold.release();
    const w = await stack.settled(waiting.id);
    assert.equal(w.status, 'succeeded');
    assert.equal(w.result?.potStatus, 'Stopped');
    const d = await stack.settled(doomed.id);
    assert.equal(d.status, 'failed');
    assert.equal(d.result?.reason, 'timeout');

    const node = stack.nodeFor('s-off', offSecret);
    const got = kinds(node);
    node.start();
    await Promise.all(queued.map((id) => stack.settled(id)));
    assert.deepEqual(got, ['GetPotInfo:i0', 'GetPotInfo:i1', 'GetPotInfo:i2', 'GetPotInfo:i3']);
  });

  it('crash recovery: a job left active by a dead core is picked up again after its lock expires', async () => {
    const node = await stack.node('crash1');
    const got = kinds(node);
    // A service that accepts but does not run its worker, and a stand-in for the crashed core's
    // worker that takes the job and dies holding it.
    const svc = await stack.restartService({ lockDurationMs: 1000, stalledIntervalMs: 300 }, { start: false });
    let taken!: () => void;
    const tookIt = new Promise<void>((r) => (taken = r));
    const doomed = new Worker(
      'apiary-commands',
      async () => {
        taken();
        await new Promise(() => {});
      },
      { connection: { url: stack.redis.url, maxRetriesPerRequest: null }, lockDuration: 1000, skipLockRenewal: true, skipStalledCheck: true, autorun: true },
    );
    doomed.on('error', () => {});
    let c;
    try {
      await waitFor(() => svc.redisReady(), 'redis connection');
      c = await svc.send('crash1', { UpdateConfig: {} });
      await tookIt;
    } finally {
      await doomed.close(true);
    }
    assert.equal((await svc.get(c.id))?.status, 'queued');
    await sleep(100);
    assert.deepEqual(got, []);

    await svc.start();
    const done = await stack.settled(c.id, 15_000);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(got, ['UpdateConfig:']);
  });

  it('a service closed while its Redis connections are still initializing stops without an uncaught error', async () => {
    // BullMQ sends INFO once a shared client is ready; closing the Queue/Worker in that window and
    // then disconnecting the clients used to surface "Connection is closed" as an 'error' no one
    // listened to, which killed a core that stopped right after starting (a port in use, say).
    const escaped: Error[] = [];
    const catcher = (err: Error) => escaped.push(err);
    process.on('uncaughtException', catcher);
    try {
      for (let i = 0; i < 40; i++) {
        const service = await stack.restartService({}, { start: true });
        if (i % 4) await sleep(i % 7);
        await service.close();
        await new Promise((r) => setImmediate(r));
      }
      await sleep(200);
    } finally {
      process.off('uncaughtException', catcher);
    }
    assert.deepEqual(escaped.map((e) => e.message), []);
    await stack.restartService();
    assert.ok(stack.service.redisReady() || (await waitFor(() => stack.service.redisReady(), 'service to reach Redis again')));
  });
});
