// One AlertStore contract, run against both implementations (SQLite and PostgreSQL): what the alert
// service relies on, asserted on the store itself; and the service on each store, so a rule made
// through one service is seen by another that reads the same database (two cores).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { AlertService, PgAlertStore, SqliteAlertStore, type AlertChannel, type AlertRule, type AlertStore } from '../../src/alerts/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';

const rule = (over: Partial<AlertRule> = {}): AlertRule => ({
  id: 'r1',
  name: 'offline',
  kind: 'node_offline',
  params: { nodes: ['n1', 'n2'], nested: { a: [1, 2.5, null] } },
  channels: ['c1', 'c2'],
  dedupSeconds: 300,
  quietSeconds: 0,
  enabled: true,
  createdAt: 1_000,
  updatedAt: 1_000,
  ...over,
});

const channel = (over: Partial<AlertChannel> = {}): AlertChannel => ({
  id: 'c1',
  name: 'hook',
  type: 'webhook',
  config: { url: 'https://example.org/hook' },
  secrets: { hmacSecret: 'secret-0123456789abcdef' },
  enabled: true,
  createdAt: 1_000,
  updatedAt: 1_000,
  ...over,
});

for (const backend of await databaseBackends()) {
  describe(`AlertStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedBackend;
    let store: AlertStore;
    const newStore = (): AlertStore => (opened.kind === 'sqlite' ? new SqliteAlertStore(opened.database) : new PgAlertStore(opened.database));
    before(async () => {
      opened = await backend.open();
      store = newStore();
    });
    after(() => opened?.close());

    it('rules: put inserts, get and list give every field back, put again updates all but id and createdAt', async () => {
      assert.deepEqual(await store.listRules(), []);
      await store.putRule(rule());
      assert.deepEqual(await store.getRule('r1'), rule());
      await store.putRule(rule({ id: 'r2', name: 'failed', kind: 'pot_failed', params: {}, channels: [], enabled: false, quietSeconds: 60, createdAt: 500 }));
      assert.deepEqual((await store.listRules()).map((r) => r.id), ['r2', 'r1'], 'oldest first');
      const changed = rule({ name: 'offline-2', kind: 'node_online', params: { x: 'é' }, channels: ['c9'], dedupSeconds: 1, quietSeconds: 2, enabled: false, createdAt: 99, updatedAt: 2_000 });
      await store.putRule(changed);
      assert.deepEqual(await store.getRule('r1'), { ...changed, createdAt: 1_000 }, 'createdAt stays');
      assert.equal(await store.getRule('nope'), undefined);
      assert.equal(await store.deleteRule('r1'), true);
      assert.equal(await store.deleteRule('r1'), false);
      assert.equal(await store.deleteRule('r2'), true);
      assert.deepEqual(await store.listRules(), []);
    });

    it('rules: same created_at are listed by id in byte order; names are unique', async () => {
      for (const id of ['b', 'B', '_a']) await store.putRule(rule({ id, name: `n-${id}`, createdAt: 7 }));
      assert.deepEqual((await store.listRules()).map((r) => r.id), ['B', '_a', 'b']);
      await assert.rejects(store.putRule(rule({ id: 'other', name: 'n-b' })));
      for (const id of ['b', 'B', '_a']) await store.deleteRule(id);
    });

    it('channels: put, get, by name, list, update, delete; secrets and config back as stored', async () => {
      assert.deepEqual(await store.listChannels(), []);
      await store.putChannel(channel());
      await store.putChannel(channel({ id: 'c2', name: 'mail', type: 'email', config: { host: 'smtp.example.org', port: 587 }, secrets: { password: 'p"w\'' }, enabled: false, createdAt: 1_000 }));
      assert.deepEqual(await store.getChannel('c1'), channel());
      assert.deepEqual(await store.channelByName('mail'), channel({ id: 'c2', name: 'mail', type: 'email', config: { host: 'smtp.example.org', port: 587 }, secrets: { password: 'p"w\'' }, enabled: false }));
      assert.equal(await store.channelByName('nope'), undefined);
      assert.equal(await store.getChannel('nope'), undefined);
      assert.deepEqual((await store.listChannels()).map((c) => c.id), ['c1', 'c2']);
      await store.putChannel(channel({ name: 'hook-2', config: { url: 'https://example.org/2' }, secrets: {}, enabled: false, createdAt: 5, updatedAt: 9 }));
      assert.deepEqual(await store.getChannel('c1'), channel({ name: 'hook-2', config: { url: 'https://example.org/2' }, secrets: {}, enabled: false, updatedAt: 9 }));
      await assert.rejects(store.putChannel(channel({ id: 'c3', name: 'mail' })), 'names are unique');
      assert.equal(await store.deleteChannel('c1'), true);
      assert.equal(await store.deleteChannel('c1'), false);
      assert.deepEqual((await store.listChannels()).map((c) => c.id), ['c2']);
      await store.deleteChannel('c2');
    });

    it('the service on this store: changes are stored, a second service on the database loads them and reloads', async () => {
      const logger = pino({ level: 'silent' }) as never;
      const a = new AlertService({ store, logger, registry: new Registry() });
      const b = new AlertService({ store: newStore(), logger, registry: new Registry(), reloadEveryMs: 20 });
      try {
        await a.load();
        const ch = await a.createChannel({ name: 'svc-hook', type: 'webhook', config: { url: 'https://example.org/h' }, secrets: { hmacSecret: 'secret-0123456789abcdef' } });
        // Concurrent changes run one after the other: the second sees the first's name.
        const results = await Promise.allSettled([
          a.createRule({ name: 'same', kind: 'node_offline', channels: [ch.id] }),
          a.createRule({ name: 'same', kind: 'node_online', channels: [ch.id] }),
        ]);
        assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected']);
        assert.match(String((results[1] as PromiseRejectedResult).reason), /exists/);
        await b.load();
        assert.deepEqual(b.listRules(), a.listRules());
        assert.deepEqual(b.listChannels().map((c) => c.name), ['svc-hook']);
        const r = a.listRules()[0]!;
        await a.updateRule(r.id, { enabled: false });
        const deadline = Date.now() + 10_000;
        while (b.listRules()[0]?.enabled !== false && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
        assert.equal(b.listRules()[0]?.enabled, false, 'b read the change again');
        assert.deepEqual(await b.getRule(r.id), { ...r, enabled: false, updatedAt: b.listRules()[0]!.updatedAt });
        await a.deleteRule(r.id);
        await assert.rejects(a.deleteRule(r.id), /no alert rule/);
        await a.deleteChannel(ch.id);
        assert.deepEqual(await store.listChannels(), []);
      } finally {
        a.close();
        b.close();
      }
    });
  });
}
