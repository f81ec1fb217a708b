// One AuthkeyStore contract, run against both implementations (SQLite and PostgreSQL): what
// AuthkeyService (the broker's logins, the API, the change feed) relies on, asserted on the store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthkeyService, authkeyVersion, PgAuthkeyStore, SqliteAuthkeyStore, type AuthkeyRecord, type AuthkeyStore } from '../../src/authkeys/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';

const key = (ident: string, over: Partial<AuthkeyRecord> = {}): AuthkeyRecord => ({
  ident,
  owner: 'ops',
  secret: `secret-of-${ident}`,
  pubchans: ['a.events'],
  subchans: [],
  createdAt: 1_000,
  updatedAt: 1_000,
  ...over,
});

for (const backend of await databaseBackends()) {
  describe(`AuthkeyStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedBackend;
    let store: AuthkeyStore;
    /** A second store on its own connection: another process or another core. */
    let other: AuthkeyStore;
    let otherClose: () => Promise<void> = async () => {};
    before(async () => {
      opened = await backend.open();
      if (opened.kind === 'sqlite') {
        store = new SqliteAuthkeyStore(opened.database);
        const { openDatabase } = await import('../../src/db/index.js');
        const second = openDatabase(opened.database.path);
        other = new SqliteAuthkeyStore(second);
        otherClose = async () => second.close();
      } else {
        store = new PgAuthkeyStore(opened.database);
        other = store; // one pool is already many connections
      }
    });
    after(async () => {
      await otherClose();
      await opened?.close();
    });

    it('upsert creates, get reads every field back; a replace keeps created_at', async () => {
      await store.upsert([key('k1', { subchans: ['x', '€'.repeat(85)] })]);
      assert.deepEqual(await store.get('k1'), key('k1', { subchans: ['x', '€'.repeat(85)] }));
      await store.upsert([key('k1', { owner: 'soc', secret: 'new-secret', pubchans: [], createdAt: 5_000, updatedAt: 5_000 })]);
      assert.deepEqual(await store.get('k1'), key('k1', { owner: 'soc', secret: 'new-secret', pubchans: [], createdAt: 1_000, updatedAt: 5_000 }));
      assert.equal(await store.get('nobody'), undefined);
    });

    it('upsert of many is one transaction: a failing record writes none', async () => {
      const bad = { ...key('bad'), secret: null as unknown as string };
      await assert.rejects(store.upsert([key('m1'), bad]));
      assert.equal(await store.get('m1'), undefined);
      await store.upsert([key('m1'), key('m2')]);
      assert.ok(await store.get('m2'));
    });

    it('insertIfAbsent: true once, then false and nothing changed', async () => {
      assert.equal(await store.insertIfAbsent(key('once', { secret: 'first' })), true);
      assert.equal(await store.insertIfAbsent(key('once', { secret: 'second' })), false);
      assert.equal((await store.get('once'))?.secret, 'first');
      const both = await Promise.all([store.insertIfAbsent(key('race')), store.insertIfAbsent(key('race'))]);
      assert.deepEqual(both.sort(), [false, true], 'concurrent creates: exactly one wins');
    });

    it('remove: true once; list by ident in byte order; versions of every key, moving with any change', async () => {
      assert.equal(await store.remove('m2'), true);
      assert.equal(await store.remove('m2'), false);
      await store.upsert([key('B-upper', { updatedAt: 7 }), key('a-lower', { updatedAt: 8 })]);
      const idents = (await store.list()).map((k) => k.ident);
      assert.deepEqual(idents, [...idents].sort((x, y) => (Buffer.from(x) < Buffer.from(y) ? -1 : 1)));
      assert.ok(idents.indexOf('B-upper') < idents.indexOf('a-lower'), 'upper case sorts first (byte order)');
      const versions = await store.versions();
      assert.equal(versions.get('B-upper'), authkeyVersion((await store.get('B-upper'))!));
      assert.equal(versions.has('m2'), false);
      assert.equal(versions.size, idents.length);
      // Another secret in the same millisecond (same updated_at): another version all the same.
      await store.upsert([key('B-upper', { updatedAt: 7, secret: 'rotated' })]);
      assert.notEqual((await store.versions()).get('B-upper'), versions.get('B-upper'));
      assert.equal((await store.versions()).get('a-lower'), versions.get('a-lower'));
    });

    it('channel lists stored by other tools read as string arrays only', async () => {
      const raw = "INSERT INTO authkeys (ident, owner, secret, pubchans, subchans, created_at, updated_at) VALUES ('odd', '', 's', '[\"a\", 1, null]', 'not json', 1, 1)";
      if (opened.kind === 'sqlite') opened.database.sqlite.exec(raw);
      else await opened.database.pool.query(raw);
      const odd = await store.get('odd');
      assert.deepEqual([odd?.pubchans, odd?.subchans], [['a'], []]);
      await store.remove('odd');
    });

    it("changeMarker moves when another connection changes the table (insert, update, delete)", async () => {
      const m0 = await store.changeMarker();
      assert.equal(await store.changeMarker(), m0, 'stable while nothing changes');
      await other.upsert([key('elsewhere')]);
      const m1 = await store.changeMarker();
      assert.notEqual(m1, m0, 'after an insert');
      await other.upsert([key('elsewhere', { updatedAt: 9_999 })]);
      const m2 = await store.changeMarker();
      assert.notEqual(m2, m1, 'after an update');
      await other.upsert([key('elsewhere', { updatedAt: 9_999, subchans: ['more'] })]);
      assert.notEqual(await store.changeMarker(), m2, 'after an update in the same millisecond');
      const m3 = await store.changeMarker();
      await other.remove('elsewhere');
      assert.notEqual(await store.changeMarker(), m3, 'after a delete');
    });

    it('the service change feed on this store: own changes told once, another connection\'s changes within a poll', async () => {
      const here = new AuthkeyService({ store, pollIntervalMs: 20 });
      const there = new AuthkeyService({ store: other });
      const seen: string[] = [];
      const stop = here.watch((idents) => seen.push(...(idents ?? [])));
      try {
        await here.put({ ident: 'feed-own' });
        await there.put({ ident: 'feed-other' });
        await there.remove('feed-own');
        const deadline = Date.now() + 5000;
        while (!(seen.includes('feed-other') && seen.filter((i) => i === 'feed-own').length >= 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual([...seen].sort(), ['feed-other', 'feed-own', 'feed-own'], 'own put once, then the removal elsewhere; the other put once');
      } finally {
        stop();
      }
    });
  });
}
