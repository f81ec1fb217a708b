// One TokenStore contract, run against both implementations (SQLite and PostgreSQL): what
// TokenService (authentication, revocation, bootstrap) relies on, asserted on the store itself.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgTokenStore, SqliteTokenStore, type TokenStore } from '../../src/access/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';

for (const backend of await databaseBackends()) {
  describe(`TokenStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedBackend;
    let store: TokenStore;
    before(async () => {
      opened = await backend.open();
      store = opened.kind === 'sqlite' ? new SqliteTokenStore(opened.database) : new PgTokenStore(opened.database);
    });
    after(() => opened?.close());

    it('insert, then found by hash while active; setLastUsed is read back', async () => {
      await store.insert({ id: 't1', name: 'alice', role: 'operator', tokenHash: 'h1', createdAt: 100 });
      assert.deepEqual(await store.activeByHash('h1'), { id: 't1', name: 'alice', role: 'operator', lastUsedAt: null });
      assert.equal(await store.activeByHash('h2'), undefined);
      await store.setLastUsed('t1', 1_700_000_000_123);
      assert.equal((await store.activeByHash('h1'))?.lastUsedAt, 1_700_000_000_123);
      await assert.rejects(store.insert({ id: 't1b', name: 'dup', role: 'viewer', tokenHash: 'h1', createdAt: 101 }), 'a token hash is unique');
    });

    it('revoke once: then false, the hash no longer found, revokedAt listed; unknown ids false', async () => {
      await store.insert({ id: 't2', name: 'bob', role: 'viewer', tokenHash: 'h2', createdAt: 200 });
      assert.equal(await store.revoke('t2', 250), true);
      assert.equal(await store.revoke('t2', 260), false);
      assert.equal(await store.revoke('nope', 260), false);
      assert.equal(await store.activeByHash('h2'), undefined);
      const listed = (await store.list()).find((t) => t.id === 't2');
      assert.deepEqual(listed, { id: 't2', name: 'bob', role: 'viewer', createdAt: 200, lastUsedAt: null, revokedAt: 250 });
    });

    it('list: oldest first, ties by id, never the hash', async () => {
      await store.insert({ id: 'b-same', name: 'x', role: 'viewer', tokenHash: 'h3', createdAt: 300 });
      await store.insert({ id: 'a-same', name: 'y', role: 'viewer', tokenHash: 'h4', createdAt: 300 });
      const list = await store.list();
      assert.deepEqual(list.map((t) => t.id), ['t1', 't2', 'a-same', 'b-same']);
      assert.ok(list.every((t) => !('tokenHash' in t)));
    });

    it('activeAmong: only present, unrevoked ids; an empty list is fine', async () => {
      assert.deepEqual([...(await store.activeAmong(['t1', 't2', 'ghost', 'a-same']))].sort(), ['a-same', 't1']);
      assert.deepEqual([...(await store.activeAmong([]))], []);
    });

    it('hasActiveAdmin: an unrevoked admin only', async () => {
      assert.equal(await store.hasActiveAdmin(), false);
      await store.insert({ id: 'adm', name: 'root', role: 'admin', tokenHash: 'h5', createdAt: 400 });
      assert.equal(await store.hasActiveAdmin(), true);
      await store.revoke('adm', 401);
      assert.equal(await store.hasActiveAdmin(), false);
    });
  });
}
