// Changes made with `apiary token` and `apiary authkey` (straight on the database) are audited
// too: actor cli:<user>, source local, secrets masked; listing is not recorded.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runTokenCli } from '../../src/access/index.js';
import { SqliteAuditStore } from '../../src/audit/index.js';
import { runAuthkeyCli } from '../../src/authkeys/index.js';
import { openDatabase } from '../../src/db/index.js';
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
