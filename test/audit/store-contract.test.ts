// One AuditStore contract, run against both implementations (SQLite and PostgreSQL): what the
// audit routes, the recorder and retention rely on, asserted on the store itself.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgAuditStore, SqliteAuditStore, type AuditStore, type NewAuditEntry } from '../../src/audit/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';

const entry = (over: Partial<NewAuditEntry> = {}): NewAuditEntry => ({
  at: 1_000,
  actorId: 'tok-1',
  actorName: 'alice',
  actorRole: 'admin',
  actorKind: 'token',
  source: '192.0.2.1',
  action: 'tokens.create',
  method: 'POST',
  route: '/api/v1/tokens',
  target: 't1',
  status: 201,
  changes: '{"name":"t1","secret":"***"}',
  ...over,
});

for (const backend of await databaseBackends()) {
  describe(`AuditStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedBackend;
    let store: AuditStore;
    before(async () => {
      opened = await backend.open();
      store = opened.kind === 'sqlite' ? new SqliteAuditStore(opened.database) : new PgAuditStore(opened.database);
    });
    after(() => opened?.close());

    it('append returns increasing ids; list gives every field back, newest first', async () => {
      const a = await store.append(entry({ at: 10, actorKind: null, target: null, changes: null }));
      const b = await store.append(entry({ at: 20, action: 'nodes.approve', route: '/api/v1/nodes/:name/approve', target: 'n1', status: 403, actorId: null, actorName: null, actorRole: null }));
      assert.equal(typeof a, 'number');
      assert.ok(b > a);
      const rows = await store.list({ limit: 10 });
      assert.deepEqual(rows, [
        { id: b, ...entry({ at: 20, action: 'nodes.approve', route: '/api/v1/nodes/:name/approve', target: 'n1', status: 403, actorId: null, actorName: null, actorRole: null }) },
        { id: a, ...entry({ at: 10, actorKind: null, target: null, changes: null }) },
      ]);
      await store.deleteOlderThan(Number.MAX_SAFE_INTEGER, 100);
    });

    it('filters: actor by name or id, exact action or escaped prefix, target, since/until, keyset cursor, limit', async () => {
      const ids = [
        await store.append(entry({ at: 100, actorName: 'bob', actorId: 'tok-b', action: 'tokens.create', target: 'x' })),
        await store.append(entry({ at: 200, actorName: 'carol', actorId: 'tok-c', action: 'tokens.revoke', target: 'y' })),
        await store.append(entry({ at: 300, actorName: 'bob', actorId: 'tok-b', action: 'nodes.approve', target: 'y' })),
        await store.append(entry({ at: 400, actorName: 'dave', actorId: 'tok-d', action: 'a_b.c', target: 'z' })),
        await store.append(entry({ at: 500, actorName: 'dave', actorId: 'tok-d', action: 'axb.c', target: 'z' })),
      ];
      const idsOf = async (q: Parameters<AuditStore['list']>[0]) => (await store.list(q)).map((e) => e.id);
      assert.deepEqual(await idsOf({ actor: 'bob', limit: 10 }), [ids[2], ids[0]]);
      assert.deepEqual(await idsOf({ actor: 'tok-c', limit: 10 }), [ids[1]]);
      assert.deepEqual(await idsOf({ action: 'tokens.revoke', limit: 10 }), [ids[1]]);
      assert.deepEqual(await idsOf({ action: 'tokens.*', limit: 10 }), [ids[1], ids[0]]);
      assert.deepEqual(await idsOf({ action: 'a_b.*', limit: 10 }), [ids[3]], '_ in a prefix is literal');
      assert.deepEqual(await idsOf({ action: '%*', limit: 10 }), [], '% in a prefix is literal');
      assert.deepEqual(await idsOf({ target: 'y', limit: 10 }), [ids[2], ids[1]]);
      assert.deepEqual(await idsOf({ since: 200, until: 400, limit: 10 }), [ids[2], ids[1]], 'since inclusive, until exclusive');
      assert.deepEqual(await idsOf({ before: ids[2], limit: 10 }), [ids[1], ids[0]]);
      assert.deepEqual(await idsOf({ limit: 2 }), [ids[4], ids[3]]);
      assert.deepEqual(await idsOf({ actor: 'dave', target: 'z', action: 'axb.*', since: 450, limit: 10 }), [ids[4]]);
      await store.deleteOlderThan(Number.MAX_SAFE_INTEGER, 100);
    });

    it('deleteOlderThan removes at most `limit` of the entries older than the cutoff, oldest first', async () => {
      const ids: number[] = [];
      for (const at of [1, 2, 3, 4, 5]) ids.push(await store.append(entry({ at })));
      assert.equal(await store.deleteOlderThan(4, 2), 2);
      assert.deepEqual((await store.list({ limit: 10 })).map((e) => e.id), [ids[4], ids[3], ids[2]]);
      assert.equal(await store.deleteOlderThan(4, 10), 1, 'at = cutoff stays');
      assert.deepEqual((await store.list({ limit: 10 })).map((e) => e.at), [5, 4]);
      assert.equal(await store.deleteOlderThan(4, 10), 0);
    });
  });
}
