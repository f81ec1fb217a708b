// The `apiary` command end to end, as a user runs it: separate processes, real files, real ports.
// serve (starts, serves, stops on SIGTERM with exit 0) and usage errors; the database token and
// authkey use is in apiary-db.test.ts (a file of its own: each file gets the whole test timeout).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { trackChild, untrackChild } from '../helpers/children.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';
import { MAIN, ROOT, apiary } from './run.js';

describe('apiary CLI', () => {
  const dir = tempDir('apiary-cli-');
  let redis: TestRedis;
  let server: ChildProcess | undefined;

  before(async () => {
    redis = await startTestRedis({ appendOnly: false });
  });
  after(async () => {
    if (server && server.exitCode === null) server.kill('SIGKILL');
    await redis?.dispose();
    dir.cleanup();
  });

  it('usage: no command is exit 2, unknown command is exit 2 with the usage, serve --help lists every env var', async () => {
    const none = await apiary([]);
    assert.equal(none.code, 2);
    assert.match(none.stdout, /usage: apiary <command>/);
    const unknown = await apiary(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const help = await apiary(['serve', '--help']);
    assert.equal(help.code, 0);
    const version = await apiary(['--version']);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.deepEqual([version.code, version.stdout], [0, `${pkg.version}\n`]);
    for (const env of ['APIARY_DATA_DIR', 'APIARY_DB', 'METRICS_PUBLIC', 'ENROLLMENT_MODE', 'REDIS_URL', 'GIT_URL_ALLOW']) assert.match(help.stdout, new RegExp(env));
    const bad = await apiary(['serve', '--api-port', 'seventy'], { APIARY_DATA_DIR: join(dir.path, 'never') });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^apiary: .*api-port|API_PORT/m);
  });

  it('serve: starts on the given ports, serves the token created by the CLI, stops on SIGTERM with exit 0', async () => {
    const dataDir = join(dir.path, 'data-serve');
    const env = {
      ...process.env,
      APIARY_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      REDIS_URL: redis.url,
      API_HOST: '127.0.0.1',
      API_PORT: '0',
      NODE_TCP_HOST: '127.0.0.1',
      NODE_TCP_PORT: '0',
      HPFEEDS_ENDPOINTS: 'tcp:port=0:interface=127.0.0.1',
    };
    server = spawn(process.execPath, [MAIN, 'serve'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(server.pid);
    const exited = new Promise<number | null>((resolve) => server!.once('exit', (code) => resolve(code)));
    let out = '';
    const ready = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve not ready within 30 s:\n${out}`)), 30_000);
      server!.stdout!.on('data', (d) => {
        out += d;
        for (const line of out.split('\n')) {
          if (!line.includes('"apiary is ready"')) continue;
          clearTimeout(timer);
          resolve(JSON.parse(line).api.port as number);
        }
      });
      server!.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}`)));
    });
    const port = await ready;
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(10_000) })).status, 200);
    assert.ok(existsSync(join(dataDir, 'admin-token')), 'bootstrap token written in the data dir');

    // A token made by the CLI in another process, on the same database, works at once.
    const made = await apiary(['token', 'create', '--role', 'operator', '--name', 'ops'], { APIARY_DATA_DIR: dataDir });
    const token = /token: (\S+)/.exec(made.stdout)![1]!;
    const nodes = await fetch(`${base}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
    assert.equal(nodes.status, 200);
    assert.ok(!out.includes(token), 'the token is never logged');

    server.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000).unref())]);
    assert.equal(code, 0);
    untrackChild(server.pid);
    assert.match(out, /shutting down/);
  });
});
