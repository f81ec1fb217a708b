// Changes made with `apiary token` and `apiary authkey` (straight on the database) are audited
// too: actor cli:<user>, source local, secrets masked; listing is not recorded. The commands work on
// PostgreSQL as well, when DATABASE_URL says so.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runTokenCli } from '../../src/access/index.js';
import { PgAuditStore, SqliteAuditStore } from '../../src/audit/index.js';
import { runAuthkeyCli } from '../../src/authkeys/index.js';
import { openDatabase, openPgDatabase } from '../../src/db/index.js';
import { runUserCli } from '../../src/users/index.js';
import { createTestPgDatabase, pgSkipReason, type TestPgDatabase } from '../helpers/pg.js';
import { captureIo } from '../helpers/cli-io.js';
import { tempDir } from '../helpers/tmp.js';

describe('audit of CLI changes', () => {
  const dir = tempDir('apiary-audit-cli-');
  const db = join(dir.path, 'apiary.sqlite');
  after(() => dir.cleanup());

  it('records token and authkey changes, not lists, with the secret masked', async () => {
    const io = captureIo();
    assert.equal(await runTokenCli(['create', '--role', 'viewer', '--name', 'cli-viewer'], io.io, db), 0);
    const id = /id: (\S+)/.exec(io.out())![1]!;
    assert.equal(await runTokenCli(['list'], io.io, db), 0);
    assert.equal(await runTokenCli(['revoke', id], io.io, db), 0);
    assert.equal(await runTokenCli(['revoke', 'no-such-id'], io.io, db), 1);
    assert.equal(await runAuthkeyCli(['add', 'cli-ident', '--secret', 'cli-hpfeeds-secret', '--sub', 'x'], io.io, db), 0);

    const database = openDatabase(db);
    try {
      const entries = (await new SqliteAuditStore(database).list({ limit: 100 })).reverse();
      assert.deepEqual(
        entries.map((e) => [e.action, e.target, e.status]),
        [
          ['cli.token.create', 'cli-viewer', 0],
          ['cli.token.revoke', id, 0],
          ['cli.token.revoke', 'no-such-id', 1],
          ['cli.authkey.add', 'cli-ident', 0],
        ],
      );
      for (const e of entries) {
        assert.match(e.actorName!, /^cli:/);
        assert.equal(e.actorKind, 'cli');
        assert.equal(e.source, 'local');
        assert.equal(e.method, 'CLI');
      }
      assert.deepEqual(JSON.parse(entries[0]!.changes!), { role: 'viewer', name: 'cli-viewer' });
      const add = JSON.parse(entries[3]!.changes!);
      assert.equal(add.secret, '[masked]');
      assert.deepEqual(add.sub, ['x']);
      assert.ok(!JSON.stringify(entries).includes('cli-hpfeeds-secret'));
    } finally {
      database.close();
    }
  });
});

describe('the database commands on PostgreSQL (DATABASE_URL, as serve uses it)', { skip: await pgSkipReason() }, () => {
  let database: TestPgDatabase;
  const dir = tempDir('apiary-cli-pg-');
  before(async () => {
    database = await createTestPgDatabase();
  });
  after(async () => {
    await database?.drop();
    dir.cleanup();
  });

  it('user, token and authkey commands work there, are audited there, and leave the SQLite path alone', async () => {
    // The SQLite path is named but unused: DATABASE_URL wins, as in serve (--db would name a SQLite file).
    const target = { dbPath: join(dir.path, 'unused.sqlite'), databaseUrl: database.url };
    const io = captureIo();
    const passwordFile = join(dir.path, 'pw');
    writeFileSync(passwordFile, 'correct horse battery staple\n');
    assert.equal(await runUserCli(['create', 'alice', '--role', 'admin', '--password-file', passwordFile], io.io, target), 0, io.err());
    assert.equal(await runTokenCli(['create', '--role', 'viewer', '--name', 'pg-viewer'], io.io, target), 0, io.err());
    assert.equal(await runAuthkeyCli(['add', 'pg-ident', '--secret', 'pg-hpfeeds-secret', '--sub', 'x'], io.io, target), 0, io.err());
    const listed = captureIo();
    assert.equal(await runUserCli(['list'], listed.io, target), 0);
    assert.match(listed.out(), /alice\s+admin/);
    assert.ok(!existsSync(target.dbPath), 'no SQLite file was made');

    const pg = await openPgDatabase(database.url);
    try {
      const entries = (await new PgAuditStore(pg).list({ limit: 10 })).reverse();
      assert.deepEqual(entries.map((e) => [e.action, e.target, e.status]), [
        ['cli.user.create', 'alice', 0],
        ['cli.token.create', 'pg-viewer', 0],
        ['cli.authkey.add', 'pg-ident', 0],
      ]);
      assert.ok(!JSON.stringify(entries).includes('pg-hpfeeds-secret'), 'secrets masked');
    } finally {
      await pg.close();
    }
  });

  it('an unreachable server is one line on stderr and exit code 1, without the password', async () => {
    const io = captureIo();
    assert.equal(await runTokenCli(['list'], io.io, { dbPath: join(dir.path, 'x.sqlite'), databaseUrl: 'postgres://u:sekrit@127.0.0.1:1/apiary' }), 1);
    assert.match(io.err(), /^cannot open the database: .*ECONNREFUSED/);
    assert.ok(!io.err().includes('sekrit'));
  });
});
