// The /api/v1 events routes on the real HTTP server (createHttpServer): REST over real HTTP on
// port 0 and the live WebSocket stream with real ws clients; the same answers with the events in
// SQLite (writer thread + read pool) and in PostgreSQL (PgEventStore).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { createHttpServer } from '../../src/api/index.js';
import { ReadPool } from '../../src/db/index.js';
import { createEventService, eventQueryModules, eventRoutes, PgEventStore, SqliteEventStore, type EventService, type EventStore } from '../../src/events/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';
import { metricValue, newRegistry, potEvent, silentLogger, statusEvent, waitFor } from './helpers.js';

for (const backend of await databaseBackends()) describe(`events API: ${backend.name}`, { skip: backend.skip }, () => {
  let opened: OpenedBackend;
  let pool: ReadPool | undefined;
  let svc: EventService;
  let app: FastifyInstance;
  let base: string;
  let wsBase: string;
  let registry: ReturnType<typeof newRegistry>;
  const t0 = Date.UTC(2024, 5, 1, 12, 0, 0);

  before(async () => {
    opened = await backend.open();
    let store: EventStore;
    if (opened.kind === 'sqlite') {
      pool = new ReadPool({ dbPath: opened.database.path, modules: eventQueryModules(), size: 1 });
      store = new SqliteEventStore({ dbPath: opened.database.path, readPool: pool });
    } else {
      store = new PgEventStore(opened.database);
    }
    registry = newRegistry();
    svc = createEventService({
      store,
      logger: silentLogger(),
      registry,
      batch: { maxDelayMs: 1 },
      stream: { maxClients: 3, maxBufferedBytes: 64 * 1024, slowClientTimeoutMs: 300 },
    });
    for (let i = 0; i < 30; i++) {
      svc.ingest(potEvent(i % 2 ? 'hb-a' : 'hb-b', { event_type: i % 3 ? 'cowrie.login.failed' : 'cowrie.command.input', timestamp: new Date(t0 + i * 600_000).toISOString(), data: { i } }));
    }
    svc.ingest(statusEvent('hb-a', 'free text that is no cowrie format'));
    await svc.flush();
    app = await createHttpServer();
    await app.register(eventRoutes, { prefix: '/api/v1', events: svc });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}/api/v1`;
    wsBase = `ws://127.0.0.1:${port}/api/v1`;
  });

  after(async () => {
    await svc.close();
    await app.close();
    await pool?.close();
    await opened?.close();
  });

  const get = async (path: string) => {
    const res = await fetch(base + path);
    return { status: res.status, body: (await res.json()) as any };
  };

  it('GET /events lists with filters and keyset paging', async () => {
    const first = await get('/events?node=hb-a&limit=4');
    assert.equal(first.status, 200);
    assert.equal(first.body.events.length, 4);
    assert.equal(first.body.events[0].event_type, 'status_message');
    assert.ok(first.body.events.every((e: any) => e.node === 'hb-a'));
    const second = await get(`/events?node=hb-a&limit=4&cursor=${first.body.next_cursor}`);
    assert.ok(second.body.events[0].id < first.body.events[3].id);
    const ranged = await get(`/events?since=${new Date(t0 + 10 * 600_000).toISOString()}&until=${t0 + 13 * 600_000}&order=asc`);
    assert.deepEqual(ranged.body.events.map((e: any) => e.data.i), [10, 11, 12]);
    const typed = await get('/events?event_type=cowrie.command.input&pot_type=cowrie&pot=pot-01&limit=1000');
    assert.equal(typed.body.events.length, 10);
    assert.equal(typed.body.next_cursor, null);
  });

  it('GET /events rejects bad input with a clear 400', async () => {
    for (const q of ['since=yesterday', 'limit=0', 'limit=5000', 'cursor=nope', 'order=sideways']) {
      const r = await get(`/events?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error, 'bad_request');
      assert.equal(typeof r.body.message, 'string');
    }
  });

  it('GET /events/:id returns one event or 404', async () => {
    const list = await get('/events?limit=1');
    const one = await get(`/events/${list.body.events[0].id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, list.body.events[0]);
    const missing = await get('/events/987654');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'not_found');
    assert.equal((await get('/events/abc')).status, 400);
  });

  it('GET /events/stats aggregates over a range', async () => {
    const r = await get(`/events/stats?since=${t0}&until=${t0 + 5 * 3_600_000}&bucket=hour`);
    assert.equal(r.status, 200);
    assert.equal(r.body.total, 30);
    assert.deepEqual(r.body.by_node, [
      { node: 'hb-a', count: 15 },
      { node: 'hb-b', count: 15 },
    ]);
    assert.deepEqual(r.body.by_event_type, [
      { event_type: 'cowrie.login.failed', count: 20 },
      { event_type: 'cowrie.command.input', count: 10 },
    ]);
    assert.deepEqual(r.body.buckets.map((b: any) => b.count), [6, 6, 6, 6, 6]);
    const recent = await get('/events/stats');
    assert.equal(recent.body.total, 1, 'default range is the last 24 h (only the status message is recent)');
    assert.equal((await get(`/events/stats?since=0&until=${t0}&bucket=hour`)).status, 400);
  });

  it('documents the routes in OpenAPI under the events tag', async () => {
    await app.ready();
    const spec = app.swagger() as any;
    for (const p of ['/api/v1/events', '/api/v1/events/stats', '/api/v1/events/{id}']) {
      assert.deepEqual(spec.paths[p].get.tags, ['events'], p);
    }
  });

  it('streams committed events matching the filters, one JSON event per message', async () => {
    const ws = new WebSocket(`${wsBase}/events/stream?node=hb-live&event_type=cowrie.login.failed`);
    const got: any[] = [];
    ws.on('message', (data) => got.push(JSON.parse(data.toString())));
    await once(ws, 'open');
    await waitFor(() => svc.streamClientCount === 1, 5000, 'registration');
    assert.equal(await metricValue(registry, 'apiary_event_stream_clients'), 1);
    svc.ingest(potEvent('hb-live', { data: { n: 1 } }));
    svc.ingest(potEvent('hb-other', { data: { n: 2 } }));
    svc.ingest(potEvent('hb-live', { event_type: 'cowrie.command.input', data: { n: 3 } }));
    svc.ingest(potEvent('hb-live', { data: { n: 4 } }));
    await waitFor(() => got.length === 2, 5000, 'stream messages');
    assert.deepEqual(got.map((e) => e.data.n), [1, 4]);
    assert.deepEqual(await svc.get(got[0].id), got[0]);
    ws.close();
    await waitFor(() => svc.streamClientCount === 0, 5000, 'unregistration');
  });

  it('answers a stream request with bad filters with HTTP 400 instead of upgrading', async () => {
    const ws = new WebSocket(`${wsBase}/events/stream?since=yesterday`);
    ws.on('error', () => undefined);
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage];
    assert.equal(res.statusCode, 400);
    res.resume();
    ws.terminate();
  });

  it('refuses stream clients beyond the limit', async () => {
    const clients = [0, 1, 2].map(() => new WebSocket(`${wsBase}/events/stream`));
    await Promise.all(clients.map((c) => once(c, 'open')));
    await waitFor(() => svc.streamClientCount === 3, 5000, 'three clients');
    const extra = new WebSocket(`${wsBase}/events/stream`);
    const [code] = (await once(extra, 'close')) as [number];
    assert.equal(code, 1013);
    for (const c of clients) c.close();
    await waitFor(() => svc.streamClientCount === 0, 5000, 'all closed');
  });

  it('bounds what a slow client costs: drops and counts, then disconnects it', async () => {
    const ws = new WebSocket(`${wsBase}/events/stream?node=hb-flood`);
    await once(ws, 'open');
    await waitFor(() => svc.streamClientCount === 1, 5000, 'registration');
    // The client stops reading: the kernel buffers fill, then the server's ws send buffer.
    (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    const closed = once(ws, 'close');
    const big = 'x'.repeat(16 * 1024);
    const deadline = Date.now() + 20_000;
    while (svc.streamClientCount > 0 && Date.now() < deadline) {
      for (let i = 0; i < 100; i++) svc.ingest(potEvent('hb-flood', { data: { big } }));
      await svc.flush();
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(svc.streamClientCount, 0, 'slow client disconnected');
    assert.ok((await metricValue(registry, 'apiary_event_stream_dropped_total')) > 0);
    assert.equal(await metricValue(registry, 'apiary_event_stream_disconnected_total', { reason: 'slow' }), 1);
    (ws as unknown as { _socket: import('node:net').Socket })._socket.resume();
    await closed;
  });
});
