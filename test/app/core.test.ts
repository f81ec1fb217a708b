// The whole core as `apiary serve` builds it: every domain wired, real sockets, the private
// redis-server it starts itself, a simulated node and an hpfeeds subscriber; run once on the
// embedded SQLite file and once on PostgreSQL (DATABASE_URL, a database made for the run).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildCore, type Core } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { createTestPgDatabase, pgSkipReason, type TestPgDatabase } from '../helpers/pg.js';
import { tempDir } from '../helpers/tmp.js';

const pgSkip = await pgSkipReason();
for (const backend of ['SQLite', 'PostgreSQL'] as const) describe(`core end to end on ${backend}`, { skip: backend === 'PostgreSQL' && pgSkip }, () => {
  const dir = tempDir('apiary-core-');
  let pgDatabase: TestPgDatabase | undefined;
  let core: Core;
  let base: string;
  let admin: string;
  const closers: (() => Promise<unknown>)[] = [];

  const api = async (method: string, path: string, body?: unknown, token = admin) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  before(async () => {
    if (backend === 'PostgreSQL') pgDatabase = await createTestPgDatabase();
    const config = loadConfig(
      ['--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'],
      { APIARY_DATA_DIR: dir.path, LOG_LEVEL: 'silent', ENROLLMENT_MODE: 'provisioned', ...(pgDatabase ? { DATABASE_URL: pgDatabase.url } : {}) },
    );
    core = await buildCore(config);
    assert.equal(core.stores.kind, backend === 'SQLite' ? 'sqlite' : 'postgresql');
    base = `http://127.0.0.1:${core.addresses.api.port}`;
    admin = readFileSync(join(dir.path, 'admin-token'), 'utf8').trim();
  });
  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await core?.close();
    await pgDatabase?.drop();
    dir.cleanup();
  });

  it('serves health, readiness (DB + its own redis-server), OpenAPI and guarded metrics', async () => {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.deepEqual(await ready.json(), { status: 'ready', database: true, redis: true });
    const spec = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, unknown>; info: { version: string } };
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(spec.info.version, pkg.version, 'OpenAPI carries the package version');
    for (const p of ['/api/v1/nodes', '/api/v1/events', '/api/v1/commands/{id}', '/api/v1/hpfeeds/authkeys', '/api/v1/tokens']) {
      assert.ok(spec.paths[p], `OpenAPI lists ${p}`);
    }
    assert.equal((await fetch(`${base}/metrics`)).status, 401);
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${admin}` } });
    assert.match(await metrics.text(), /hpfeeds_broker_client_connections/);
  });

  it('provisioned node -> events stored and republished on hpfeeds -> command delivered and tracked', async () => {
    const created = await api('POST', '/api/v1/nodes', { name: 'edge-1' });
    assert.equal(created.status, 201);
    const key = await api('POST', '/api/v1/hpfeeds/authkeys', { ident: 'analyst', subchans: ['apiary.events', 'cowrie.events'] });
    assert.equal(key.status, 201);

    const hpfeedsPort = core.addresses.hpfeeds[0]!.port;
    const sub = new HpfeedsClient({ host: '127.0.0.1', port: hpfeedsPort, ident: 'analyst', secret: key.body.secret, reconnect: false });
    closers.push(() => sub.close());
    const received: { ident: string; channel: string; payload: string }[] = [];
    sub.on('message', (ident, channel, payload) => received.push({ ident, channel, payload: payload.toString() }));
    await sub.connect();
    sub.subscribe(['apiary.events', 'cowrie.events']);

    const node = new SimulatedNode({
      name: 'edge-1',
      host: '127.0.0.1',
      port: core.addresses.nodeTcp.port,
      secret: created.body.secret,
      secretDir: join(dir.path, 'node'),
      heartbeatMs: 60_000,
      pots: [],
    });
    closers.push(() => node.stop());
    const registered = node.waitFor('registered', { timeoutMs: 10_000 });
    node.start();
    await registered;
    assert.ok(core.gateway.isOnline('edge-1'));
    // The node was enrolled by provisioning: it got its own hpfeeds authkey.
    assert.equal((await api('GET', '/api/v1/hpfeeds/authkeys/edge-1')).status, 200);

    // hpfeeds never acknowledges SUBSCRIBE: the node sends events until one comes through.
    const deadline = Date.now() + 10_000;
    while (received.filter((m) => m.channel === 'apiary.events').length < 1 && Date.now() < deadline) {
      assert.ok(node.sendAttack('potevent', 'cowrie-01'));
      await new Promise((r) => setTimeout(r, 50));
    }
    const onAll = received.find((m) => m.channel === 'apiary.events');
    assert.ok(onAll, 'event republished on apiary.events');
    assert.equal(onAll.ident, 'edge-1');
    assert.equal(JSON.parse(onAll.payload).pot_id, 'cowrie-01');

    const stored = await api('GET', '/api/v1/events?node=edge-1');
    assert.equal(stored.status, 200);
    assert.ok(stored.body.events.length >= 1);
    // The attack analytics saw them too (written about once a second): the node tops its dimension.
    const sinceHour = new Date(Date.now() - 3_600_000).toISOString();
    let top: { status: number; body: any } | undefined;
    const analyticsDeadline = Date.now() + 10_000;
    do {
      await new Promise((r) => setTimeout(r, 200));
      top = await api('GET', `/api/v1/attacks/top?by=node&since=${sinceHour}`);
    } while (top.status === 200 && top.body.items.length === 0 && Date.now() < analyticsDeadline);
    assert.equal(top.status, 200, JSON.stringify(top.body));
    assert.equal(top.body.items[0]?.key, 'edge-1', JSON.stringify(top.body));

    const cmd = await api('POST', '/api/v1/nodes/edge-1/commands', {
      command: { InstallPot: { pot_id: 'pot-9', honeypot_type: 'cowrie', auto_start: true } },
    });
    assert.equal(cmd.status, 201, JSON.stringify(cmd.body));
    let status = cmd.body.status as string;
    const until = Date.now() + 10_000;
    while (!['succeeded', 'failed', 'expired'].includes(status) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await api('GET', `/api/v1/commands/${cmd.body.id}`)).body.status;
    }
    assert.equal(status, 'succeeded');
    const pots = await api('GET', '/api/v1/nodes/edge-1/pots');
    assert.ok(JSON.stringify(pots.body).includes('pot-9'));
  });

  it('revoking an hpfeeds authkey through the API closes its live connection', async () => {
    const key = await api('POST', '/api/v1/hpfeeds/authkeys', { ident: 'temp', subchans: ['apiary.events'] });
    const client = new HpfeedsClient({ host: '127.0.0.1', port: core.addresses.hpfeeds[0]!.port, ident: 'temp', secret: key.body.secret, reconnect: false });
    closers.push(() => client.close());
    const gone = new Promise<string>((r) => client.once('disconnect', r));
    client.on('error', () => {});
    await client.connect();
    client.subscribe('apiary.events');
    assert.equal((await api('DELETE', '/api/v1/hpfeeds/authkeys/temp')).status, 204);
    await Promise.race([gone, new Promise((_, reject) => setTimeout(() => reject(new Error('connection not closed within 10 s')), 10_000).unref())]);
  });

  it('every /api/v1 route in the OpenAPI document refuses a request without a token (the console login aside)', async () => {
    const spec = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    let checked = 0;
    const open: string[] = [];
    for (const [path, ops] of Object.entries(spec.paths)) {
      if (!path.startsWith('/api/v1/')) continue;
      for (const [method, op] of Object.entries(ops)) {
        if (Array.isArray(op.security) && op.security.length === 0) {
          open.push(`${method.toUpperCase()} ${path}`);
          continue;
        }
        const url = `${base}${path.replace(/\{[^}]+\}/g, 'x')}`;
        const res = await fetch(url, { method: method.toUpperCase(), headers: { 'content-type': 'application/json' }, body: method === 'get' || method === 'delete' ? undefined : '{}' });
        assert.equal(res.status, 401, `${method.toUpperCase()} ${path}`);
        checked++;
      }
    }
    assert.ok(checked >= 25, `checked ${checked} operations`);
    assert.deepEqual(open, ['POST /api/v1/session'], 'the only public operation under /api/v1 is the login');
    const stream = await fetch(`${base}/api/v1/events/stream`);
    assert.equal(stream.status, 401, 'the live event stream needs a token too');
  });

  it('viewer tokens read but cannot command', async () => {
    const viewer = await api('POST', '/api/v1/tokens', { name: 'dash', role: 'viewer' });
    assert.equal((await api('GET', '/api/v1/nodes', undefined, viewer.body.token)).status, 200);
    const denied = await api('POST', '/api/v1/nodes/edge-1/commands', { command: { GetInstalledPots: {} } }, viewer.body.token);
    assert.equal(denied.status, 403);
  });
});
