// Shutdown of the composed core loses nothing it accepted: the core is closed while a node's burst
// of attack events is still arriving, and every event the gateway accepted is committed to SQLite
// and delivered to an hpfeeds subscriber before the broker closes. The order of the parts is
// checked directly too (input first, event flush before the broker, the database last), since a
// wrong order may lose nothing on a lucky run.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { startTestCore, until, type TestCore } from '../helpers/core.js';

describe('core shutdown order', () => {
  let t: TestCore;
  let node: SimulatedNode | undefined;
  let sub: HpfeedsClient | undefined;

  before(async () => {
    t = await startTestCore({ env: { ENROLLMENT_MODE: 'provisioned' } });
  });
  after(async () => {
    await node?.stop().catch(() => {});
    await sub?.close(1000).catch(() => {});
    await t?.close();
  });

  it('every event accepted before close is committed and republished; parts close in order', async () => {
    const created = await t.api('POST', '/api/v1/nodes', { token: t.adminToken, body: { name: 'edge-s' } });
    assert.equal(created.status, 201);
    const key = await t.api('POST', '/api/v1/hpfeeds/authkeys', { token: t.adminToken, body: { ident: 'watcher', subchans: ['apiary.events'] } });
    sub = new HpfeedsClient({ host: '127.0.0.1', port: t.core.addresses.hpfeeds[0]!.port, ident: 'watcher', secret: key.body.secret, reconnect: false });
    sub.on('error', () => {});
    const received: string[] = [];
    sub.on('message', (_ident, _channel, payload) => received.push(payload.toString()));
    await sub.connect();
    sub.subscribe('apiary.events');

    node = new SimulatedNode({ name: 'edge-s', host: '127.0.0.1', port: t.core.addresses.nodeTcp.port, secret: created.body.secret, heartbeatMs: 60_000, reconnect: false, pots: [] });
    const registered = node.waitFor('registered', { timeoutMs: 10_000 });
    node.start();
    await registered;
    // The subscription is live once a probe event makes it through.
    await until(() => {
      if (received.length > 0) return true;
      node!.sendAttack('potevent', 'probe');
      return false;
    }, 'a probe event on hpfeeds');
    // Probes may still be in flight: everything below counts burst events only, by pot_id.
    const isBurst = (payload: string) => String(JSON.parse(payload).pot_id).startsWith('burst-');

    // Instrument the parts (the calls go through unchanged) to see the order they close in.
    const order: string[] = [];
    let pendingAtBrokerClose = -1;
    const spy = <T extends object>(name: string, target: T, method: keyof T, onCall?: () => void) => {
      const original = (target[method] as unknown as (...a: unknown[]) => unknown).bind(target);
      (target as Record<keyof T, unknown>)[method] = (...args: unknown[]) => {
        order.push(name);
        onCall?.();
        return original(...args);
      };
    };
    spy('commands', t.core.commands, 'close');
    spy('gateway', t.core.gateway, 'close');
    spy('events', t.core.events, 'close');
    spy('broker', t.core.broker, 'close', () => (pendingAtBrokerClose = t.core.events.pendingCount));
    spy('database', t.core.stores, 'close');

    // Close from inside the event path: the 5th event of the burst is queued, not yet committed,
    // and more lines may still be in flight when the close begins.
    let accepted = 0;
    let closing: Promise<void> | undefined;
    t.core.gateway.on('attackEvent', (e) => {
      if (!e.message.pot_id.startsWith('burst-')) return;
      accepted++;
      if (accepted === 5) {
        assert.ok(t.core.events.pendingCount > 0, 'events are queued when the close begins');
        closing = t.core.close();
      }
    });
    for (let i = 0; i < 50; i++) node.sendAttack('potevent', `burst-${i}`);
    await until(() => closing !== undefined, 'the close to begin');
    await closing;
    await until(() => !sub!.connected, 'the broker to close the subscriber');

    assert.deepEqual(order, ['commands', 'gateway', 'events', 'broker', 'database']);
    assert.equal(pendingAtBrokerClose, 0, 'the event flush finished before the broker closed');
    const db = new Database(join(t.dataDir, 'apiary.sqlite'), { readonly: true });
    try {
      const stored = (db.prepare("SELECT count(*) AS n FROM events WHERE pot_id LIKE 'burst-%'").get() as { n: number }).n;
      assert.equal(stored, accepted, 'every accepted event is in SQLite');
    } finally {
      db.close();
    }
    assert.ok(accepted >= 5);
    assert.equal(received.filter(isBurst).length, accepted, 'every accepted event reached the subscriber');
  });
});
