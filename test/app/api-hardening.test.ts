// The operator API of the composed core under abuse: query tokens only on WebSocket upgrades,
// revocation that reaches open streams, bounded selectors, and slow clients cut off.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { SqliteTokenStore, TokenService } from '../../src/access/index.js';
import { buildCore, type Core } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { openDatabase } from '../../src/db/index.js';
import { quoteInexactNumbers } from '../../src/protocol/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { waitFor } from '../events/helpers.js';
import { tempDir } from '../helpers/tmp.js';

describe('core API hardening', () => {
  const dir = tempDir('apiary-api-hardening-');
  let core: Core;
  let base: string;
  let wsBase: string;
  let admin: string;
  const sockets: WebSocket[] = [];

  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${admin}` }) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  /** Opens a stream socket; resolves once open, rejects on an HTTP refusal. */
  const openStream = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }>((resolve, reject) => {
      const ws = new WebSocket(`${wsBase}${path}`, { headers });
      sockets.push(ws);
      const closed = new Promise<{ code: number; reason: string }>((res) => ws.once('close', (code, reason) => res({ code, reason: reason.toString() })));
      ws.once('open', () => resolve({ ws, closed }));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });

  before(async () => {
    const config = loadConfig(
      ['--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'],
      { APIARY_DATA_DIR: dir.path, LOG_LEVEL: 'silent', ENROLLMENT_MODE: 'provisioned', HTTP_REQUEST_TIMEOUT: '2', HTTP_HEADERS_TIMEOUT: '2' },
    );
    core = await buildCore(config);
    base = `http://127.0.0.1:${core.addresses.api.port}`;
    wsBase = `ws://127.0.0.1:${core.addresses.api.port}/api/v1`;
    admin = readFileSync(join(dir.path, 'admin-token'), 'utf8').trim();
  });
  after(async () => {
    for (const ws of sockets) ws.terminate();
    await core?.close();
    dir.cleanup();
  });

  it('accepts a query token only on a WebSocket upgrade, in no encoding elsewhere; Bearer is case-insensitive', async () => {
    for (const name of ['access_token', 'access%5Ftoken', 'access%5ftoken']) {
      const res = await api('GET', `/api/v1/nodes?${name}=${admin}`, undefined, {});
      assert.equal(res.status, 401, name);
      assert.match(res.body.message, /only on WebSocket upgrades/);
    }
    for (const scheme of ['bearer', 'BEARER', 'Bearer', 'bEaReR']) {
      assert.equal((await api('GET', '/api/v1/nodes', undefined, { authorization: `${scheme} ${admin}` })).status, 200, scheme);
    }
    assert.equal((await api('GET', '/api/v1/nodes', undefined, { authorization: `Basic ${admin}` })).status, 401);
    const { ws } = await openStream(`/events/stream?access_token=${encodeURIComponent(admin)}`);
    assert.equal(ws.readyState, WebSocket.OPEN);
    ws.close();
    await assert.rejects(openStream('/events/stream?access_token=wrong'), /HTTP 401/);
  });

  it('revoking a token closes its open event streams at once, including revocations by the CLI', async () => {
    const viewer = await api('POST', '/api/v1/tokens', { name: 'dash', role: 'viewer' });
    assert.equal(viewer.status, 201);
    const other = await api('POST', '/api/v1/tokens', { name: 'other', role: 'viewer' });
    const byHeader = await openStream('/events/stream', { authorization: `bearer ${viewer.body.token}` });
    const byQuery = await openStream(`/events/stream?access_token=${encodeURIComponent(viewer.body.token)}`);
    const bystander = await openStream('/events/stream', { authorization: `Bearer ${other.body.token}` });
    await waitFor(() => core.events.streamClientCount === 3, 5000, 'three stream clients');

    const t0 = Date.now();
    assert.equal((await api('DELETE', `/api/v1/tokens/${viewer.body.id}`)).status, 204);
    for (const s of [byHeader, byQuery]) {
      const closed = await Promise.race([s.closed, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('stream not closed')), 3000))]);
      assert.equal(closed.code, 1008);
      assert.match(closed.reason, /revoked/);
    }
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(bystander.ws.readyState, WebSocket.OPEN, 'streams of other tokens stay open');

    // Revoked by another process (the CLI writes the database directly).
    const cliDb = openDatabase(core.database!.sqlite.name);
    try {
      assert.ok(await new TokenService(new SqliteTokenStore(cliDb)).revoke(other.body.id));
    } finally {
      cliDb.close();
    }
    const closed = await Promise.race([bystander.closed, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('stream not closed')), 5000))]);
    assert.equal(closed.code, 1008);
    await waitFor(() => core.events.streamClientCount === 0, 5000, 'hub emptied');
  });

  it('bounds broadcast selectors: 40000 statuses are a 400, never a 500', async () => {
    const statuses = Array.from({ length: 40_000 }, (_, i) => `S${i}`);
    const res = await api('POST', '/api/v1/commands/broadcast', { nodes: { status: statuses }, command: { Restart: {} } });
    assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 200));
    assert.equal(res.body.error, 'bad_request');
    const long = await api('POST', '/api/v1/commands/broadcast', { nodes: { status: 'x'.repeat(100_000) }, command: { Restart: {} } });
    assert.equal(long.status, 400);
    const many = await api('POST', '/api/v1/commands/broadcast', { nodes: Array.from({ length: 20_000 }, (_, i) => `n${i}`), command: { Restart: {} } });
    assert.equal(many.status, 400);
    const config = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, 'v']));
    const install = await api('POST', '/api/v1/commands/broadcast', {
      nodes: 'all',
      command: { InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', auto_start: true, config } },
    });
    assert.equal(install.status, 400);
    assert.match(install.body.message, /256 entries/);
  });

  it('cuts off a client that trickles its request body', async () => {
    const sock = connect(core.addresses.api.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let answer = '';
    sock.on('data', (d) => (answer += d.toString()));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write(`POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`);
    const start = Date.now();
    const trickle = setInterval(() => sock.writable && sock.write('{'), 500);
    try {
      await Promise.race([closed, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('still connected after 15 s')), 15_000))]);
    } finally {
      clearInterval(trickle);
      sock.destroy();
    }
    assert.ok(Date.now() - start < 15_000);
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.equal((await fetch(`${base}/healthz`)).status, 200, 'others are still served');
  });

  it('stores event values as received: early years, big and overflowing numbers as text, __proto__ keys', async () => {
    const created = await api('POST', '/api/v1/nodes', { name: 'exact-1' });
    assert.equal(created.status, 201);
    const node = new SimulatedNode({ name: 'exact-1', host: '127.0.0.1', port: core.addresses.nodeTcp.port, secret: created.body.secret, heartbeatMs: 60_000, pots: [] });
    const registered = node.waitFor('registered', { timeoutMs: 10_000 });
    node.start();
    try {
      await registered;
      const data =
        '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}},"big":123456789012345678901,"neg":-9007199254740993,' +
        '"safe":9007199254740991,"inf":1e999,"tiny":1e-999,"ids":[18446744073709551615],"nested":{"__proto__":5}}';
      const line = `{"version":2,"message":{"PotEvent":{"node_id":${node.nodeId},"pot_id":"p1","pot_type":"cowrie","event_type":"probe","timestamp":"0042-03-04T05:06:07Z","data":${data}}}}`;
      assert.ok(node.sendRaw(line));
      let events: { id: number; timestamp: string; data: Record<string, unknown> }[] = [];
      const deadline = Date.now() + 10_000;
      while (events.length === 0 && Date.now() < deadline) {
        events = (await api('GET', '/api/v1/events?node=exact-1&since=0001-01-01T00:00:00Z')).body.events;
        if (events.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(events.length, 1);
      const [event] = events;
      assert.equal(event!.timestamp, '0042-03-04T05:06:07.000Z');
      const expected =
        '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}},"big":"123456789012345678901","neg":"-9007199254740993",' +
        '"safe":9007199254740991,"inf":"1e999","tiny":"1e-999","ids":["18446744073709551615"],"nested":{"__proto__":5}}';
      const one = await fetch(`${base}/api/v1/events/${event!.id}`, { headers: { authorization: `Bearer ${admin}` } });
      const text = await one.text();
      assert.ok(text.includes(`"data":${expected}`), text);
      const row = core.database!.sqlite.prepare('SELECT data, timestamp FROM events WHERE id = ?').get(event!.id) as { data: string; timestamp: number };
      // Stored either as the strings above or as the node's text verbatim: either way nothing is lost.
      assert.equal(JSON.stringify(JSON.parse(quoteInexactNumbers(row.data))), expected);
      assert.equal(new Date(row.timestamp).toISOString(), '0042-03-04T05:06:07.000Z');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    } finally {
      await node.stop();
    }
  });
});
