// One UserStore contract, run against both implementations (SQLite and PostgreSQL): what the user
// service relies on (case-insensitive names, cascades, session expiry bounds), on the store itself.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgUserStore, SqliteUserStore, UsernameTakenError, type SessionRecord, type UserRecord, type UserStore } from '../../src/users/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';

const user = (id: string, username: string, over: Partial<UserRecord> = {}): UserRecord => ({
  id,
  username,
  role: 'viewer',
  passwordHash: `scrypt$hash-of-${id}`,
  createdAt: 1_700_000_000_000,
  disabledAt: null,
  lastLoginAt: null,
  ...over,
});

const session = (idHash: string, userId: string, over: Partial<SessionRecord> = {}): SessionRecord => ({
  idHash,
  userId,
  csrfToken: `csrf-${idHash}`,
  createdAt: 1_000,
  lastSeenAt: 1_000,
  expiresAt: 10_000,
  source: '192.0.2.7',
  ...over,
});

for (const backend of await databaseBackends()) {
  describe(`UserStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedBackend;
    let store: UserStore;
    before(async () => {
      opened = await backend.open();
      store = opened.kind === 'sqlite' ? new SqliteUserStore(opened.database) : new PgUserStore(opened.database);
    });
    after(() => opened?.close());

    it('users: found by id and by name whatever its case; a name taken in another case is refused; listed by creation then name', async () => {
      const alice = user('u-alice', 'Alice', { role: 'admin', createdAt: 2_000 });
      await store.insertUser(alice);
      await store.insertUser(user('u-bob', 'bob', { createdAt: 1_000 }));
      await store.insertUser(user('u-aaron', 'aaron', { createdAt: 2_000, disabledAt: 5, lastLoginAt: 6 }));
      assert.deepEqual(await store.userById('u-alice'), alice);
      assert.deepEqual(await store.userByName('aLiCe'), alice);
      assert.equal(await store.userByName('alic'), undefined);
      assert.equal(await store.userById('nobody'), undefined);
      await assert.rejects(store.insertUser(user('u-other', 'ALICE')), UsernameTakenError);
      // Creation time, then name in byte order (uppercase before lowercase) on both databases.
      assert.deepEqual((await store.listUsers()).map((u) => u.username), ['bob', 'Alice', 'aaron']);
      assert.deepEqual(await store.userById('u-aaron'), user('u-aaron', 'aaron', { createdAt: 2_000, disabledAt: 5, lastLoginAt: 6 }));
    });

    it('updateUser changes only what is given (null enables); unknown ids are false; setLastLogin', async () => {
      await store.insertUser(user('u-carol', 'carol'));
      assert.equal(await store.updateUser('u-carol', { role: 'operator', disabledAt: 42 }), true);
      assert.deepEqual(await store.userById('u-carol'), user('u-carol', 'carol', { role: 'operator', disabledAt: 42 }));
      assert.equal(await store.updateUser('u-carol', { passwordHash: 'new-hash', disabledAt: null }), true);
      assert.deepEqual(await store.userById('u-carol'), user('u-carol', 'carol', { role: 'operator', passwordHash: 'new-hash' }));
      assert.equal(await store.updateUser('u-carol', {}), true, 'no change, but the user exists');
      assert.equal(await store.updateUser('nobody', { role: 'admin' }), false);
      assert.equal(await store.updateUser('nobody', {}), false);
      await store.setLastLogin('u-carol', 1_234);
      assert.equal((await store.userById('u-carol'))!.lastLoginAt, 1_234);
    });

    it('sessions: stored with their user, touched, listed oldest first, deleted one by one or all but one', async () => {
      await store.insertUser(user('u-dave', 'dave', { role: 'operator' }));
      await store.insertSession(session('h2', 'u-dave', { createdAt: 2_000 }));
      await store.insertSession(session('h1', 'u-dave', { createdAt: 1_000 }));
      await store.insertSession(session('h3', 'u-dave', { createdAt: 3_000 }));
      const found = await store.sessionByHash('h1');
      assert.deepEqual(found, { session: session('h1', 'u-dave', { createdAt: 1_000 }), user: user('u-dave', 'dave', { role: 'operator' }) });
      assert.equal(await store.sessionByHash('nope'), undefined);
      await store.touchSession('h1', 5_000);
      assert.equal((await store.sessionByHash('h1'))!.session.lastSeenAt, 5_000);
      assert.deepEqual(await store.sessionsOf('u-dave'), ['h1', 'h2', 'h3']);
      assert.deepEqual(await store.existingSessions(['h1', 'zz', 'h3']), new Set(['h1', 'h3']));
      assert.deepEqual(await store.existingSessions([]), new Set());
      assert.equal(await store.deleteSession('h2'), true);
      assert.equal(await store.deleteSession('h2'), false);
      await store.insertSession(session('h4', 'u-dave', { createdAt: 4_000 }));
      assert.deepEqual(await store.deleteSessionsOf('u-dave', 'h3'), ['h1', 'h4']);
      assert.deepEqual(await store.sessionsOf('u-dave'), ['h3']);
      assert.deepEqual(await store.deleteSessionsOf('u-dave'), ['h3']);
      assert.deepEqual(await store.sessionsOf('u-dave'), []);
    });

    it('deleting a user deletes their sessions; expired sessions go by absolute end (<= now) or idleness (< cutoff)', async () => {
      await store.insertUser(user('u-erin', 'erin'));
      await store.insertSession(session('e1', 'u-erin'));
      assert.equal(await store.deleteUser('u-erin'), true);
      assert.equal(await store.deleteUser('u-erin'), false);
      assert.equal(await store.sessionByHash('e1'), undefined);
      assert.deepEqual(await store.existingSessions(['e1']), new Set());

      await store.insertUser(user('u-frank', 'frank'));
      await store.insertSession(session('end-now', 'u-frank', { expiresAt: 5_000, lastSeenAt: 4_900 }));
      await store.insertSession(session('end-later', 'u-frank', { expiresAt: 5_001, lastSeenAt: 4_900 }));
      await store.insertSession(session('idle', 'u-frank', { expiresAt: 9_000, lastSeenAt: 3_999 }));
      await store.insertSession(session('idle-edge', 'u-frank', { expiresAt: 9_000, lastSeenAt: 4_000 }));
      assert.equal(await store.deleteExpiredSessions(5_000, 4_000), 2);
      assert.deepEqual(new Set(await store.sessionsOf('u-frank')), new Set(['end-later', 'idle-edge']));
    });
  });
}
