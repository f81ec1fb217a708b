// `apiary token` and `apiary authkey` find the database the server uses: <APIARY_DATA_DIR>/apiary.sqlite
// by default, --db or APIARY_DB when given. Separate processes, real files.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers/tmp.js';
import { apiary } from './run.js';

describe('apiary CLI: which database', () => {
  const dir = tempDir('apiary-cli-db-');
  after(() => dir.cleanup());

  it('token and authkey use <APIARY_DATA_DIR>/apiary.sqlite by default and --db when given', async () => {
    const dataDir = join(dir.path, 'data-a');
    const byDir = await apiary(['token', 'create', '--role', 'viewer', '--name', 'dash'], { APIARY_DATA_DIR: dataDir });
    assert.equal(byDir.code, 0, byDir.stderr);
    assert.match(byDir.stdout, /role: viewer/);
    assert.ok(existsSync(join(dataDir, 'apiary.sqlite')));
    const listed = await apiary(['token', 'list'], { APIARY_DATA_DIR: dataDir });
    assert.match(listed.stdout, /\tdash\tviewer\t/);

    const other = join(dir.path, 'elsewhere.sqlite');
    const byFlag = await apiary(['authkey', 'add', 'cli-sensor', '--pub', 'cowrie.sessions', '--db', other], { APIARY_DATA_DIR: dataDir });
    assert.equal(byFlag.code, 0, byFlag.stderr);
    assert.ok(existsSync(other));
    assert.doesNotMatch((await apiary(['authkey', 'list'], { APIARY_DATA_DIR: dataDir })).stdout, /cli-sensor/, 'not in the data dir database');
    assert.match((await apiary(['authkey', 'list', '--db', other])).stdout, /cli-sensor/);
    // APIARY_DB works like --db.
    assert.match((await apiary(['authkey', 'list'], { APIARY_DB: other })).stdout, /cli-sensor/);
  });
});
