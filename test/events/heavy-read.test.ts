// Issue 10 row 3: an API caller's expensive read must not freeze the core. Stats over ~1.5 million
// events run in the read pool while a node keeps sending heartbeats and events; the event loop,
// heartbeats, hpfeeds deliveries and /healthz keep their latency meanwhile.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { createHttpServer } from '../../src/api/index.js';
import { openDatabase, ReadPool, type DatabaseHandle } from '../../src/db/index.js';
import { createEventService, eventQueryModules, eventRoutes, SqliteEventStore, type EventService } from '../../src/events/index.js';
import { Broker, HpfeedsClient, MemoryAuthStore } from '../../src/hpfeeds/index.js';
import { createNodeGateway, type NodeGatewayHandle } from '../../src/nodes/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { tempDir } from '../helpers/tmp.js';
import { metricValue, silentLogger, waitFor } from './helpers.js';

const ROWS = 1_000_000;

/**
 * Fills the events table with SQL alone, in a few seconds: the table's secondary indexes are
 * dropped first (a bulk insert maintaining them takes minutes here). Stats over a time range
 * scan the table either way, so the query stays as heavy as in production.
 */
function generateEvents(path: string, rows: number, now: number): void {
  openDatabase(path).close();
  const raw = new Database(path);
  raw.pragma('journal_mode = DELETE');
  raw.pragma('synchronous = OFF');
  const indexes = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL").all() as { name: string }[];
  for (const i of indexes) raw.exec(`DROP INDEX "${i.name}"`);
  raw.exec(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows})
    INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at)
    SELECT 'gen-' || (x % 50), 'pot-' || (x % 7), 'cowrie', 'cowrie.login.failed', ${now} - x * 40, '{}', ${now} - x * 40 FROM c`);
  // The side index tables are filled as the migration fills them (src/events/side-index.ts): left
  // empty, the core's writer would spend the test catching up a million rows, 50 000 per batch,
  // and the deliveries measured below would wait behind that instead of the reads.
  raw.exec(`INSERT INTO events_by_node (node_name, id) SELECT node_name, id FROM events ORDER BY node_name, id;
    INSERT INTO events_by_type (event_type, id) SELECT event_type, id FROM events ORDER BY event_type, id;
    INSERT INTO events_side_state (key, value) SELECT 'indexed_through', max(id) FROM events WHERE true
      ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
  raw.pragma('journal_mode = WAL');
  raw.close();
}

describe('heavy API reads do not stall nodes or hpfeeds (issue 10 row 3)', () => {
  const dir = tempDir('apiary-heavy-read-');
  const path = `${dir.path}/core.db`;
  let db: DatabaseHandle;
  let readPool: ReadPool;
  let store: SqliteEventStore;
  let events: EventService;
  let gateway: NodeGatewayHandle;
  let broker: Broker;
  let app: FastifyInstance;
  let sub: HpfeedsClient;
  let node: SimulatedNode;
  let api: string;
  const registry = new Registry();
  /** Receipt time minus event timestamp, per delivered event, with the receipt time. */
  const deliveries: { at: number; latency: number }[] = [];

  before(async () => {
    const started = Date.now();
    generateEvents(path, ROWS, started);
    console.log(`# generated ${ROWS} events in ${Date.now() - started} ms`);
    db = openDatabase(path);
    const logger = silentLogger();
    readPool = new ReadPool({ dbPath: path, modules: eventQueryModules(), size: 2, timeoutMs: 60_000 });
    store = new SqliteEventStore({ dbPath: path, readPool });
    broker = new Broker({ authStore: new MemoryAuthStore([{ ident: 'soc', owner: 'soc', secret: 's', pubchans: ['probe'], subchans: ['apiary.events', 'probe'] }]) });
    const hp = await broker.listen('tcp:port=0:interface=127.0.0.1');
    gateway = await createNodeGateway({ db, logger, registry, enrollment: 'open' });
    events = createEventService({ store, logger, registry, publisher: broker, retention: { maxAgeDays: 0, maxRows: 0 } });
    events.attach(gateway);
    events.onFlow((saturated) => gateway.setInputPaused(saturated));
    const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });
    app = await createHttpServer();
    app.get('/healthz', async () => ({ status: 'ok' }));
    await app.register(eventRoutes, { prefix: '/api/v1', events });
    await app.listen({ host: '127.0.0.1', port: 0 });
    api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    sub = new HpfeedsClient({ host: '127.0.0.1', port: hp.port, ident: 'soc', secret: 's', reconnect: false });
    sub.on('message', (_ident, channel, payload) => {
      if (channel !== 'apiary.events') return;
      const ts = Date.parse(JSON.parse(payload.toString()).timestamp);
      deliveries.push({ at: Date.now(), latency: Date.now() - ts });
    });
    await sub.connect();
    sub.subscribe(['apiary.events']);
    await readPool.started();
    node = new SimulatedNode({
      name: 'steady',
      host: '127.0.0.1',
      port: tcp.port,
      heartbeatMs: 50,
      eventsPerSecond: 200,
      pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }],
    });
    node.start();
    await once(node, 'registered');
    await waitFor(() => deliveries.length > 50, 10_000, 'events flowing to the subscriber');
  });

  after(async () => {
    await node?.stop();
    await gateway?.close();
    await events?.close();
    await store?.close();
    await readPool?.close();
    await sub?.close();
    await app?.close();
    await broker?.close();
    db?.close();
    dir.cleanup();
  });

  it('parallel stats queries over the table leave heartbeats, deliveries and /healthz on time', async () => {
    const heartbeats = () => metricValue(registry, 'apiary_node_messages_total', { type: 'NodeStatusUpdate' });
    const beatsBefore = await heartbeats();
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const t0 = Date.now();
    const since = new Date(t0 - 7 * 86_400_000).toISOString();
    const queries = [0, 1].map(async () => {
      const started = Date.now();
      const res = await fetch(`${api}/api/v1/events/stats?since=${since}&bucket=day`, { headers: {} });
      return { status: res.status, body: (await res.json()) as { total?: number }, at: Date.now(), ms: Date.now() - started };
    });
    // /healthz is probed throughout the queries.
    const health: number[] = [];
    let done = false;
    const probing = (async () => {
      while (!done) {
        const s = Date.now();
        const res = await fetch(`${api}/healthz`);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
        health.push(Date.now() - s);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const results = await Promise.all(queries);
    done = true;
    await probing;
    lag.disable();
    const t1 = Date.now();
    const queryMs = t1 - t0;
    console.log(`# 2 parallel stats queries took ${queryMs} ms; event loop delay max ${(lag.max / 1e6).toFixed(0)} ms; /healthz max ${Math.max(...health)} ms`);

    for (const r of results) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok((r.body.total ?? 0) >= ROWS, `stats counted the generated rows (${r.body.total})`);
    }
    // The queries were heavy: each ran long enough for the checks below to mean something.
    const single = Math.min(...results.map((r) => r.ms));
    assert.ok(single > 500, `each query ran at least 500 ms (the quickest: ${single} ms)`);
    // Synchronous SQLite on the loop would hold it for at least one query's time. The bounds stay
    // well under that, and leave room for a shared, overloaded test machine (where the scheduler
    // alone costs 100s of ms, and the queries take seconds).
    const bound = Math.min(1000, single * 0.6);
    assert.ok(lag.max / 1e6 < bound, `event loop delay max ${(lag.max / 1e6).toFixed(0)} ms (bound ${bound} ms)`);
    assert.ok(Math.max(...health) < bound, `/healthz answered within ${bound} ms each time (max ${Math.max(...health)} ms)`);
    // Heartbeats (every 50 ms) kept being handled while the queries ran.
    assert.ok((await heartbeats()) - beatsBefore >= queryMs / 50 / 3, 'heartbeats handled during the queries');
    // Events kept reaching the subscriber during the queries, with bounded latency.
    const during = deliveries.filter((d) => d.at >= t0 && d.at <= t1);
    assert.ok(during.length >= (queryMs / 1000) * 200 * 0.5, `deliveries during the queries: ${during.length}`);
    const latencies = during.map((d) => d.latency).sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    console.log(`# deliveries during the queries: ${during.length}, latency p99 ${p99} ms`);
    assert.ok(p99 < 1000, `delivery latency p99 ${p99} ms`);
  });

  it('a query past its time limit answers 503 and the pool keeps serving', async () => {
    const quick = new ReadPool({ dbPath: path, modules: eventQueryModules(), size: 1, timeoutMs: 300 });
    const quickStore = new SqliteEventStore({ dbPath: path, readPool: quick });
    const svc = createEventService({ store: quickStore, logger: silentLogger(), registry: new Registry(), retention: { maxAgeDays: 0, maxRows: 0 } });
    const slowApp = await createHttpServer();
    await slowApp.register(eventRoutes, { prefix: '/api/v1', events: svc });
    try {
      await quick.started();
      const since = new Date(Date.now() - 7 * 86_400_000).toISOString();
      const t = Date.now();
      const res = await slowApp.inject({ method: 'GET', url: `/api/v1/events/stats?since=${since}&bucket=day` });
      assert.equal(res.statusCode, 503, res.body);
      assert.match(res.json().message, /exceeded its time limit of 300 ms/);
      assert.ok(Date.now() - t < 5000, 'answered at the limit, not when the query ended');
      // The worker was replaced: a cheap read works right away.
      await quick.started();
      const page = await slowApp.inject({ method: 'GET', url: '/api/v1/events?limit=1' });
      assert.equal(page.statusCode, 200, page.body);
      assert.equal(page.json().events.length, 1);
    } finally {
      await slowApp.close();
      await svc.close();
      await quickStore.close();
      await quick.close();
    }
  });
});
