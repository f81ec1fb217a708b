// Operator REST routes for nodes over the real HTTP server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { openDatabase } from '../../src/db/index.js';
import { createNodeGateway } from '../../src/nodes/index.js';
import { totpCode } from '../../src/protocol/index.js';
import { tempDir } from '../helpers/tmp.js';
import { nodeRow, parseAck, registration, startHarness, statusUpdate, potStatus, tcpClient, waitFor, type Harness } from './harness.js';

describe('node routes', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ enrollment: 'approve' });
  });
  after(async () => {
    await h.close();
  });

  it('POST /nodes creates a node and answers its secret once; reads never show it', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/nodes', payload: { name: 'hb-api-1' } });
    assert.equal(res.statusCode, 201);
    const { name, secret } = res.json();
    assert.equal(name, 'hb-api-1');
    assert.match(secret, /^[A-Z2-7]{32}$/);
    for (const url of ['/api/v1/nodes', '/api/v1/nodes/hb-api-1', '/api/v1/nodes/hb-api-1/log', '/api/v1/nodes/hb-api-1/pots']) {
      const r = await h.app.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 200, url);
      assert.equal(r.body.includes(secret), false, `${url} leaks the secret`);
    }
    const one = (await h.app.inject({ method: 'GET', url: '/api/v1/nodes/hb-api-1' })).json();
    assert.equal(one.enrollment, 'enrolled');
    assert.equal(one.hasSecret, true);
    assert.equal(one.online, false);
    assert.deepEqual(one.pots, []);
    assert.equal('totpSecret' in one, false);
  });

  it('imports a secret the node generated itself, and rejects a malformed one', async () => {
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const ok = await h.app.inject({ method: 'POST', url: '/api/v1/nodes', payload: { name: 'hb-import', secret } });
    assert.equal(ok.statusCode, 201);
    assert.equal(ok.json().secret, secret);
    const bad = await h.app.inject({ method: 'POST', url: '/api/v1/nodes', payload: { name: 'hb-import-2', secret: 'jbswy3dp' } });
    assert.equal(bad.statusCode, 400);
  });

  it('answers 409 for an existing node, 400 for a bad name, 404 for an unknown node', async () => {
    await h.app.inject({ method: 'POST', url: '/api/v1/nodes', payload: { name: 'hb-dup' } });
    const dup = await h.app.inject({ method: 'POST', url: '/api/v1/nodes', payload: { name: 'hb-dup' } });
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.json().error, 'conflict');
    for (const name of ['has space', '', 'x'.repeat(254), 'semi;colon']) {
      const r = await h.app.inject({ method: 'POST', url: '/api/v1/nodes', payload: { name } });
      assert.equal(r.statusCode, 400, JSON.stringify(name));
      assert.equal(r.json().error, 'bad_request');
    }
    assert.equal((await h.app.inject({ method: 'GET', url: '/api/v1/nodes/bad%20name' })).statusCode, 400);
    for (const [method, url] of [
      ['GET', '/api/v1/nodes/ghost'],
      ['GET', '/api/v1/nodes/ghost/pots'],
      ['GET', '/api/v1/nodes/ghost/log'],
      ['POST', '/api/v1/nodes/ghost/approve'],
      ['POST', '/api/v1/nodes/ghost/revoke'],
      ['POST', '/api/v1/nodes/ghost/rotate-secret'],
      ['DELETE', '/api/v1/nodes/ghost'],
    ] as const) {
      const r = await h.app.inject({ method, url });
      assert.equal(r.statusCode, 404, `${method} ${url}`);
      assert.equal(r.json().error, 'not_found');
    }
  });

  it('lists with filters, shows online state, pots and log of a live node, deletes it', async () => {
    const { secret } = (await h.app.inject({ method: 'POST', url: '/api/v1/nodes', payload: { name: 'hb-live' } })).json();
    const c = await tcpClient(h.tcp.port);
    c.send(registration('hb-live', '77', totpCode(secret, Date.now())));
    assert.equal(parseAck(await c.next()).accepted, true);
    c.send(statusUpdate('77', 'Running'));
    c.send(potStatus('77', 'cowrie-01', 'Running', 'Status: Running - cowrie honeypot started'));
    await waitFor(() => h.db.sqlite.prepare('SELECT 1 FROM pots WHERE node_name = ?').get('hb-live') !== undefined);

    const live = (await h.app.inject({ method: 'GET', url: '/api/v1/nodes/hb-live' })).json();
    assert.equal(live.online, true);
    assert.equal(live.status, 'Running');
    assert.equal(live.nodeId, '77');
    assert.equal(live.transport, 'tcp');
    assert.deepEqual(live.pots.map((p: { potId: string; status: string }) => [p.potId, p.status]), [['cowrie-01', 'Running']]);
    const onlineOnly = (await h.app.inject({ method: 'GET', url: '/api/v1/nodes?online=true' })).json();
    assert.deepEqual(onlineOnly.nodes.map((n: { name: string }) => n.name), ['hb-live']);
    const enrolled = (await h.app.inject({ method: 'GET', url: '/api/v1/nodes?enrollment=enrolled' })).json();
    assert.ok(enrolled.nodes.length >= 2);
    const log = (await h.app.inject({ method: 'GET', url: '/api/v1/nodes/hb-live/log?limit=1' })).json();
    assert.equal(log.entries.length, 1);
    assert.equal(log.entries[0].kind, 'registered');

    const del = await h.app.inject({ method: 'DELETE', url: '/api/v1/nodes/hb-live' });
    assert.equal(del.statusCode, 204);
    await c.closed;
    assert.equal(h.gateway.isOnline('hb-live'), false);
    assert.equal(nodeRow(h, 'hb-live'), undefined);
    assert.equal((h.db.sqlite.prepare('SELECT count(*) AS n FROM pots WHERE node_name = ?').get('hb-live') as { n: number }).n, 0);
    assert.equal((await h.app.inject({ method: 'GET', url: '/api/v1/nodes/hb-live' })).statusCode, 404);
    // The log outlives the node as an audit trail.
    const kept = (await h.app.inject({ method: 'GET', url: '/api/v1/nodes/hb-live/log' })).json();
    assert.equal(kept.entries[0].kind, 'deleted');
  });

  it('approve: 409 for an enrolled node; pending -> approved; revoke then approve again', async () => {
    assert.equal((await h.app.inject({ method: 'POST', url: '/api/v1/nodes/hb-dup/approve' })).statusCode, 409);
    const c = await tcpClient(h.tcp.port);
    c.send(registration('hb-pend', '1'));
    assert.equal(parseAck(await c.next()).message, 'Node pending approval');
    const pending = (await h.app.inject({ method: 'GET', url: '/api/v1/nodes?enrollment=pending' })).json();
    assert.deepEqual(pending.nodes.map((n: { name: string }) => n.name), ['hb-pend']);
    assert.equal((await h.app.inject({ method: 'POST', url: '/api/v1/nodes/hb-pend/rotate-secret' })).statusCode, 409);
    const ap = await h.app.inject({ method: 'POST', url: '/api/v1/nodes/hb-pend/approve' });
    assert.equal(ap.json().enrollment, 'approved');
    const rv = await h.app.inject({ method: 'POST', url: '/api/v1/nodes/hb-pend/revoke' });
    assert.equal(rv.json().enrollment, 'revoked');
    assert.equal(rv.json().hasSecret, false);
    assert.equal((await h.app.inject({ method: 'POST', url: '/api/v1/nodes/hb-pend/approve' })).json().enrollment, 'approved');
  });

  it('documents the routes in OpenAPI under the nodes tag', async () => {
    const spec = h.app.swagger() as { paths: Record<string, Record<string, { tags?: string[] }>> };
    for (const [path, method] of [
      ['/api/v1/nodes', 'get'],
      ['/api/v1/nodes', 'post'],
      ['/api/v1/nodes/{name}', 'get'],
      ['/api/v1/nodes/{name}', 'delete'],
      ['/api/v1/nodes/{name}/pots', 'get'],
      ['/api/v1/nodes/{name}/log', 'get'],
      ['/api/v1/nodes/{name}/approve', 'post'],
      ['/api/v1/nodes/{name}/revoke', 'post'],
      ['/api/v1/nodes/{name}/rotate-secret', 'post'],
    ]) {
      assert.deepEqual(spec.paths[path]?.[method]?.tags, ['nodes'], `${method} ${path}`);
    }
    assert.equal(spec.paths['/ws/node'], undefined, 'the node socket is not an operator API');
  });
});

describe('gateway start', () => {
  it('marks every node Offline at process start', async () => {
    const dir = tempDir('apiary-nodes-start-');
    const db = openDatabase(`${dir.path}/core.db`);
    try {
      const now = Date.now();
      db.sqlite
        .prepare("INSERT INTO nodes (name, status, enrollment, created_at, updated_at) VALUES ('was-running', 'Running', 'enrolled', ?, ?), ('was-off', 'Offline', 'enrolled', ?, ?)")
        .run(now, now, now, now);
      const gw = await createNodeGateway({ db, logger: pino({ level: 'silent' }), registry: new Registry() });
      const row = db.sqlite.prepare("SELECT status, disconnect_reason FROM nodes WHERE name = 'was-running'").get() as { status: string; disconnect_reason: string };
      assert.deepEqual(row, { status: 'Offline', disconnect_reason: 'restart' });
      const off = db.sqlite.prepare("SELECT disconnect_reason FROM nodes WHERE name = 'was-off'").get() as { disconnect_reason: string | null };
      assert.equal(off.disconnect_reason, null);
      await gw.close();
    } finally {
      db.close();
      dir.cleanup();
    }
  });
});

describe('node routes roles', () => {
  it('viewer may read, only admin may change; the node socket needs no operator token', async () => {
    const { createHttpServer } = await import('../../src/api/index.js');
    const dir = tempDir('apiary-nodes-roles-');
    const db = openDatabase(`${dir.path}/core.db`);
    const gw = await createNodeGateway({ db, logger: pino({ level: 'silent' }), registry: new Registry(), enrollment: 'open' });
    const app = await createHttpServer({
      authenticate: (token) =>
        token === 'v'
          ? { id: '1', name: 'viewer', role: 'viewer' }
          : token === 'o'
            ? { id: '3', name: 'operator', role: 'operator' }
            : token === 'a'
              ? { id: '2', name: 'admin', role: 'admin' }
              : undefined,
    });
    await app.register(gw.wsRoute);
    await app.register(gw.routes, { prefix: '/api/v1' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const auth = (t: string) => ({ authorization: `Bearer ${t}` });
      assert.equal((await app.inject({ method: 'GET', url: '/api/v1/nodes' })).statusCode, 401);
      assert.equal((await app.inject({ method: 'GET', url: '/api/v1/nodes', headers: auth('v') })).statusCode, 200);
      assert.equal((await app.inject({ method: 'POST', url: '/api/v1/nodes', headers: auth('v'), payload: { name: 'n' } })).statusCode, 403);
      assert.equal((await app.inject({ method: 'POST', url: '/api/v1/nodes', headers: auth('o'), payload: { name: 'n' } })).statusCode, 403, 'operator is not admin');
      assert.equal((await app.inject({ method: 'POST', url: '/api/v1/nodes', headers: auth('a'), payload: { name: 'n' } })).statusCode, 201);
      assert.equal((await app.inject({ method: 'DELETE', url: '/api/v1/nodes/n', headers: auth('v') })).statusCode, 403);
      const port = (app.server.address() as { port: number }).port;
      const { wsClient } = await import('./harness.js');
      const c = await wsClient(`ws://127.0.0.1:${port}/ws/node`);
      c.send(registration('ws-open', '1'));
      assert.equal(parseAck(await c.next()).accepted, true);
      c.close();
    } finally {
      await gw.close();
      await app.close();
      db.close();
      dir.cleanup();
    }
  });
});
