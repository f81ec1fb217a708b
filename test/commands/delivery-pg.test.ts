// The command service on a PgCommandStore, end to end: HTTP API -> BullMQ/Redis -> node gateway ->
// simulated HoneyBee node over TCP, with every command row on PostgreSQL. The delivery rules that
// the store's atomic claim holds (strict per-node order, one in flight), the timeout path, waiting
// for an offline node, and a restarted service picking up a command in flight. The node gateway
// still keeps its nodes in SQLite (its PostgreSQL store is another change): the nodes the command
// store checks are written to PostgreSQL here as well.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgCommandStore } from '../../src/commands/pg-store.js';
import { openPgDatabase, type PgDatabaseHandle } from '../../src/db/index.js';
import type { NodeCommandBody } from '../../src/protocol/index.js';
import { createTestPgDatabase, pgSkipReason, type TestPgDatabase } from '../helpers/pg.js';
import { sleep, startStack, waitFor, type Stack } from './harness.js';

describe('command delivery on PostgreSQL', { skip: await pgSkipReason() }, () => {
  let testDb: TestPgDatabase;
  let database: PgDatabaseHandle;
  let stack: Stack;

  before(async () => {
    testDb = await createTestPgDatabase();
    database = await openPgDatabase(testDb.url, { max: 8 });
    stack = await startStack({ store: new PgCommandStore(database), answerTimeoutMs: { GetPotStatus: 1500 }, quietPeriodMs: 300, updateConfigGraceMs: 300 });
  });
  after(async () => {
    await stack?.close();
    await database?.close();
    await testDb?.drop();
  });

  const known = (name: string) =>
    database.pool.query(`INSERT INTO nodes (name, status, enrollment, created_at, updated_at) VALUES ($1, 'Offline', 'enrolled', 1, 1)`, [name]);

  it('keeps strict per-node order with one command in flight at a time', async () => {
    await known('pg-order');
    const node = await stack.node('pg-order', { pots: [{ id: 'p1', type: 'cowrie', status: 'Stopped' }] });
    const seen: NodeCommandBody[] = [];
    node.on('command', (body) => seen.push(body));
    const bodies: NodeCommandBody[] = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? { DeployPot: 'p1' } : { StopPot: 'p1' }));
    const views = await Promise.all(bodies.map((b) => stack.post('pg-order', b)));
    const bySeq = [...views].sort((a, b) => a.seq - b.seq);
    const done = await Promise.all(views.map((v) => stack.settled(v.id, 30_000)));
    assert.ok(done.every((d) => d.status === 'succeeded'), JSON.stringify(done.map((d) => d.status)));
    assert.deepEqual(seen, bySeq.map((v) => v.command));
    const final = await Promise.all(bySeq.map(async (v) => (await stack.service.get(v.id))!));
    for (let i = 1; i < final.length; i++) {
      assert.ok(Date.parse(final[i].sentAt!) >= Date.parse(final[i - 1].finishedAt!), `command ${i} overlapped its predecessor`);
    }
    const { rows } = await database.pool.query<{ n: number }>("SELECT count(*) AS n FROM commands WHERE node_name = 'pg-order' AND status = 'succeeded'");
    assert.equal(rows[0]!.n, 10, 'the rows are in PostgreSQL');
  });

  it('times out a command the node never answers', async () => {
    await known('pg-silent');
    const node = await stack.node('pg-silent', { pots: [{ id: 'x', type: 'cowrie', status: 'Running' }] });
    (node as unknown as { answer: () => void }).answer = () => {};
    const c = await stack.post('pg-silent', { GetPotStatus: 'x' });
    const d = await stack.settled(c.id);
    assert.equal(d.status, 'failed');
    assert.equal(d.result?.reason, 'timeout');
  });

  it('waits while the node is offline and delivers in order when it registers', async () => {
    await known('pg-later');
    const secret = await stack.provision('pg-later');
    const a = await stack.post('pg-later', { GetInstalledPots: {} });
    const b = await stack.post('pg-later', { UpdateConfig: {} });
    await sleep(600);
    assert.equal((await stack.service.get(a.id))?.status, 'queued');
    const node = stack.nodeFor('pg-later', secret);
    const order: string[] = [];
    node.on('command', (c) => order.push(Object.keys(c)[0]!));
    node.start();
    assert.equal((await stack.settled(a.id)).status, 'succeeded');
    assert.equal((await stack.settled(b.id)).status, 'succeeded');
    assert.deepEqual(order, ['GetInstalledPots', 'UpdateConfig']);
  });

  it('a restarted service finds the command in flight and settles it from the node\'s answer', async () => {
    await known('pg-restart');
    const node = await stack.node('pg-restart', { pots: [{ id: 'p', type: 'cowrie', status: 'Running' }] });
    const original = (node as unknown as { answer: (c: unknown) => void }).answer;
    const held: unknown[] = [];
    (node as unknown as { answer: (c: unknown) => void }).answer = (c) => held.push(c);
    const c = await stack.post('pg-restart', { StopPot: 'p' });
    await waitFor(() => held.length === 1, 'command received');
    await stack.restartService();
    assert.equal((await stack.service.get(c.id))?.status, 'sent');
    original.call(node, held[0]);
    assert.equal((await stack.settled(c.id)).status, 'succeeded');
  });
});
