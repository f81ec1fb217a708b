// bin/apiary.js picks what to run: dist/ when a build is there and no source changed since, else
// the TypeScript sources through tsx. Checked on a copy of the entry point with stand-in programs
// that only say which one ran.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);

describe('bin/apiary.js', () => {
  const dir = tempDir('apiary-entry-');
  after(() => dir.cleanup());
  const root = dir.path;
  mkdirSync(join(root, 'bin'));
  copyFileSync(join(repoRoot, 'bin', 'apiary.js'), join(root, 'bin', 'apiary.js'));
  // tsx is resolved from the entry point's own tree, as in a checkout.
  symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
  mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
  writeFileSync(join(root, 'dist', 'cli', 'main.js'), "process.stdout.write('compiled');\n");
  // A type annotation: only tsx can run it.
  const writeSourceMain = () => {
    mkdirSync(join(root, 'src', 'cli', 'deep'), { recursive: true });
    writeFileSync(join(root, 'src', 'cli', 'main.ts'), "const said: string = 'sources';\nprocess.stdout.write(said);\n");
  };
  writeSourceMain();
  const source = join(root, 'src', 'cli', 'deep', 'part.ts');
  writeFileSync(source, 'export {};\n');

  const ran = async () => (await run(process.execPath, [join(root, 'bin', 'apiary.js')], { cwd: root })).stdout;
  const setTimes = (path: string, seconds: number) => utimesSync(path, seconds, seconds);

  it('runs dist/ when it is newer than every file under src/', async () => {
    const now = Date.now() / 1000;
    for (const f of [join(root, 'src', 'cli', 'main.ts'), source]) setTimes(f, now - 60);
    setTimes(join(root, 'dist', 'cli', 'main.js'), now - 30);
    assert.equal(await ran(), 'compiled');
  });

  it('runs the sources once any file under src/, however deep, changed after the build', async () => {
    setTimes(source, Date.now() / 1000);
    assert.equal(await ran(), 'sources');
  });

  it('runs dist/ where there are no sources (the container image)', async () => {
    rmSync(join(root, 'src'), { recursive: true });
    assert.equal(await ran(), 'compiled');
  });

  it('runs the sources when nothing was built', async () => {
    writeSourceMain();
    rmSync(join(root, 'dist'), { recursive: true });
    assert.equal(await ran(), 'sources');
  });
});
