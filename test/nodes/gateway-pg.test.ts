// The node gateway on PostgreSQL, end to end over TCP: two gateways (two cores) on one database,
// each with its own pool. A TOTP code is spent once across both, the state writes of one node land
// in the order its messages arrived, and closing a gateway waits for the writes its sessions caused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { openPgDatabase, type PgDatabaseHandle } from '../../src/db/index.js';
import { createNodeGateway, type NodeGatewayHandle, type TcpListener } from '../../src/nodes/index.js';
import { totpCode } from '../../src/protocol/index.js';
import { createTestPgDatabase, pgSkipReason, type TestPgDatabase } from '../helpers/pg.js';
import { parseAck, potStatus, registration, statusUpdate, tcpClient, waitFor } from './harness.js';

interface Core {
  db: PgDatabaseHandle;
  gateway: NodeGatewayHandle;
  tcp: TcpListener;
}

async function startCore(url: string): Promise<Core> {
  const db = await openPgDatabase(url, { max: 4 });
  const gateway = await createNodeGateway({ db, logger: pino({ level: 'silent' }), registry: new Registry(), enrollment: 'provisioned' });
  const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });
  return { db, gateway, tcp };
}

describe('node gateway on PostgreSQL', { skip: await pgSkipReason() }, () => {
  let testDb: TestPgDatabase;
  let a: Core;
  let b: Core;
  const row = async (name: string) =>
    (await a.db.pool.query<{ status: string; disconnect_reason: string | null; last_totp_step: number | null }>('SELECT * FROM nodes WHERE name = $1', [name])).rows[0];
  const log = async (name: string) => (await a.db.pool.query<{ kind: string }>('SELECT kind FROM node_log WHERE node_name = $1 ORDER BY id', [name])).rows.map((r) => r.kind);

  before(async () => {
    testDb = await createTestPgDatabase();
    a = await startCore(testDb.url);
    b = await startCore(testDb.url);
  });
  after(async () => {
    for (const core of [a, b]) {
      await core?.gateway.close();
      await core?.db.close();
    }
    await testDb?.drop();
  });

  it('a code accepted by one core is refused by the other (one-time use across cores)', async () => {
    const { secret } = await a.gateway.service.createNode('pg-one');
    const code = totpCode(secret, Date.now());
    const first = await tcpClient(a.tcp.port);
    first.send(registration('pg-one', '1', code));
    assert.equal(parseAck(await first.next()).accepted, true);
    const second = await tcpClient(b.tcp.port);
    second.send(registration('pg-one', '2', code));
    const refused = parseAck(await second.next());
    assert.deepEqual([refused.accepted, refused.message], [false, 'TOTP code already used']);
    first.close();
    second.close();
  });

  it('the same code sent to both cores at once: exactly one registration is accepted', async () => {
    for (let round = 0; round < 3; round++) {
      const name = `pg-race-${round}`;
      const { secret } = await b.gateway.service.createNode(name);
      const code = totpCode(secret, Date.now());
      const clients = await Promise.all([tcpClient(a.tcp.port), tcpClient(b.tcp.port)]);
      clients.forEach((c, i) => c.send(registration(name, String(10 + i), code)));
      const acks = await Promise.all(clients.map(async (c) => parseAck(await c.next())));
      assert.equal(acks.filter((x) => x.accepted).length, 1, `round ${round}: ${acks.map((x) => x.message).join(' / ')}`);
      for (const c of clients) c.close();
    }
  });

  it("one node's state writes land in message order; its disconnect is written before close() resolves", async () => {
    const { secret } = await a.gateway.service.createNode('pg-order');
    const c = await tcpClient(a.tcp.port);
    c.send(registration('pg-order', '7', totpCode(secret, Date.now())));
    assert.equal(parseAck(await c.next()).accepted, true);
    // Back to back, as fast as the socket carries them: each is one write on a pool of 4.
    const cycle = ['Deploying', 'Running', 'Stopped', 'Unknown'];
    for (let i = 0; i < 60; i++) c.send(statusUpdate('7', cycle[i % cycle.length]!));
    c.send(potStatus('7', 'cowrie-1', 'Running', 'up'));
    c.send(statusUpdate('7', 'Failed')); // sent once, last
    await waitFor(async () => (await a.db.pool.query("SELECT 1 FROM pots WHERE node_name = 'pg-order'")).rowCount === 1, 5000, 'the pot stored');
    await waitFor(async () => (await row('pg-order'))?.status === 'Failed', 5000, 'the last status stored');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await row('pg-order'))?.status, 'Failed', 'no earlier status written after the last one');
    c.end();
    await c.closed;
    await waitFor(async () => (await row('pg-order'))?.status === 'Offline', 5000, 'Offline after the disconnect');
    assert.equal((await row('pg-order'))?.disconnect_reason, 'disconnect');
    await waitFor(async () => (await log('pg-order')).length === 3, 5000, 'the disconnect logged');
    assert.deepEqual(await log('pg-order'), ['created', 'registered', 'disconnected']);
  });

  it('deleting a connected node: its log reads disconnected, then deleted', async () => {
    for (let round = 0; round < 3; round++) {
      const name = `pg-delete-${round}`;
      const { secret } = await a.gateway.service.createNode(name);
      const c = await tcpClient(a.tcp.port);
      c.send(registration(name, '9', totpCode(secret, Date.now())));
      assert.equal(parseAck(await c.next()).accepted, true);
      await waitFor(async () => (await log(name)).includes('registered'), 5000, 'registered');
      await a.gateway.service.deleteNode(name);
      assert.deepEqual((await log(name)).slice(-2), ['disconnected', 'deleted']);
      assert.equal(await row(name), undefined);
      c.close();
    }
  });

  it('a gateway closing with a live session writes Offline before its close() resolves', async () => {
    const { secret } = await b.gateway.service.createNode('pg-shutdown');
    const c = await tcpClient(b.tcp.port);
    c.send(registration('pg-shutdown', '8', totpCode(secret, Date.now())));
    assert.equal(parseAck(await c.next()).accepted, true);
    await waitFor(async () => (await row('pg-shutdown'))?.status === 'Connected', 5000, 'registered');
    await b.gateway.close();
    const r = await row('pg-shutdown');
    assert.deepEqual([r?.status, r?.disconnect_reason], ['Offline', 'shutdown']);
    assert.deepEqual((await log('pg-shutdown')).slice(-1), ['disconnected']);
    c.close();
  });
});
