// What an attack event costs the node store: nothing per event, on either database. A session's
// attack events (PotEvent, and event-shaped PotStatusUpdate lines) and repeated heartbeats only
// mark the node seen; last_seen then goes out in one batched write per flush interval. Counted on
// the real stores, through a Proxy that records each method called.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Enrollment } from '../../src/nodes/enrollment.js';
import { GatewayCore } from '../../src/nodes/gateway.js';
import { PgNodeStore, SqliteNodeStore, type NodeStore } from '../../src/nodes/index.js';
import { NodeMetrics } from '../../src/nodes/metrics.js';
import type { SessionTransport } from '../../src/nodes/session.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';

const ID = '4242';
const lines = [
  `{"version":2,"message":{"PotEvent":{"node_id":${ID},"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2025-01-01T00:00:00Z","data":{"src_ip":"203.0.113.7"}}}}`,
  `{"version":2,"message":{"PotStatusUpdate":{"node_id":${ID},"pot_id":"cowrie-01","pot_type":"","status":"","message":"login attempt [root/123456] failed"}}}`,
  `{"version":2,"message":{"NodeStatusUpdate":{"node_id":${ID},"status":"Running"}}}`,
];

for (const backend of await databaseBackends()) {
  describe(`node store writes per attack event: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedBackend;
    let core: GatewayCore;
    const calls = new Map<string, number>();
    before(async () => {
      opened = await backend.open();
      const real: NodeStore = opened.kind === 'sqlite' ? new SqliteNodeStore(opened.database) : new PgNodeStore(opened.database);
      const store = new Proxy(real, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            calls.set(String(prop), (calls.get(String(prop)) ?? 0) + 1);
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      const logger = pino({ level: 'silent' });
      const metrics = new NodeMetrics(new Registry());
      const enrollment = new Enrollment({ store, metrics, logger, mode: 'open' });
      // Timers far away: the test flushes itself.
      core = new GatewayCore({ store, enrollment, metrics, logger, authTimeoutMs: 60_000, heartbeatIntervalMs: 60_000, staleFactor: 3, sweepIntervalMs: 3_600_000, lastSeenWriteIntervalMs: 3_600_000 });
    });
    after(async () => {
      core?.shutdown();
      await core?.settled();
      await opened?.close();
    });

    it('1500 attack lines and heartbeats of one session: no store call until the flush, then one batched write', async () => {
      const acks: string[] = [];
      const transport: SessionTransport = { kind: 'tcp', remoteAddress: '127.0.0.1', send: (t) => acks.push(t), end() {}, destroy() {} };
      const session = core.openSession(transport)!;
      let attacks = 0;
      core.on('attackEvent', () => attacks++);
      session.handleText(`{"version":2,"message":{"NodeRegistration":{"node_id":${ID},"node_name":"budget","address":"0.0.0.0","port":8080,"node_type":"Full"}}}`);
      const deadline = Date.now() + 10_000;
      while (!core.isOnline('budget') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.ok(core.isOnline('budget'), `registered (${acks.join(' ')})`);
      session.handleText(lines[2]!); // the first Running is a status change: one write
      await core.settled();
      calls.clear();

      for (let i = 0; i < 500; i++) for (const line of lines) session.handleText(line);
      await core.settled();
      assert.equal(attacks, 1000);
      assert.deepEqual([...calls], [], 'no store call for events or unchanged heartbeats');

      await new Promise((r) => setTimeout(r, 2)); // last_seen moves past the persisted value
      session.handleText(lines[0]!);
      await core.flushLastSeen();
      assert.deepEqual([...calls], [['tryTouchAll', 1]], 'one batched last_seen write');
    });
  });
}
