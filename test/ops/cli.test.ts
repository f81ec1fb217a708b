// The `apiary` command as a person types it: every subcommand answers --help (exit 0, usage on
// stdout), and validation errors name the ident and the field instead of dumping zod's JSON.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);
const dir = tempDir('apiary-cli-');
after(() => dir.cleanup());

async function apiary(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/apiary.js', ...args], {
      cwd: repoRoot,
      env: { ...process.env, APIARY_DATA_DIR: dir.path, APIARY_DB: join(dir.path, 'cli.sqlite') },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('apiary CLI', () => {
  it('every subcommand answers --help with its usage and exit code 0', async () => {
    const commands = [
      [],
      ['serve'],
      ['token'],
      ['token', 'create'],
      ['user'],
      ['user', 'create'],
      ['authkey'],
      ['authkey', 'import'],
      ['hpfeeds'],
      ['hpfeeds', 'subscribe'],
      ['hpfeeds', 'publish'],
      ['node'],
      ['node', 'simulate'],
    ];
    const results = await Promise.all(commands.map((c) => apiary([...c, '--help'])));
    results.forEach((r, i) => {
      const what = `apiary ${commands[i]!.join(' ')} --help`;
      assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr ${r.stderr}`);
      assert.match(r.stdout, /usage/i, what);
      assert.equal(r.stderr, '', what);
    });
    assert.equal((await apiary(['token', '-h'])).code, 0);
  });

  it('authkey import of a reference auth file with a short secret names the ident and the field', async () => {
    const file = join(dir.path, 'auth.json');
    writeFileSync(file, JSON.stringify({ good: { secret: 'long-enough-secret', subchans: ['a'] }, sensor: { secret: 'short', pubchans: ['a'] } }));
    const r = await apiary(['authkey', 'import', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /ident 'sensor' field secret: /);
    assert.doesNotMatch(r.stderr, /"code"|\[\s*\{/, 'no raw zod JSON');
    assert.match((await apiary(['authkey', 'list'])).stdout, /^IDENT[^\n]*\n$/, 'nothing was imported');

    writeFileSync(file, JSON.stringify({ sensor: { pubchans: ['a'] } }));
    assert.match((await apiary(['authkey', 'import', file])).stderr, /ident 'sensor' field secret: /);
  });

  it('authkey add with a short secret names the ident and the field', async () => {
    const r = await apiary(['authkey', 'add', 'sensor', '--secret', 'short']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: authkey 'sensor' field secret: /);
  });
});
