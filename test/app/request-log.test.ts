// `apiary serve` as a process, its log read as an operator would: a token sent in a query string,
// in whatever encoding, never reaches the log.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { trackChild, untrackChild } from '../helpers/children.js';
import { tempDir } from '../helpers/tmp.js';

const main = fileURLToPath(new URL('../../bin/apiary.js', import.meta.url));
const SECRET = 'apiary_querySecretNeverLogged0123456789abcdef';

describe('request log', () => {
  const dir = tempDir('apiary-request-log-');
  let proc: ChildProcess;
  let log = '';
  let base: string;

  before(async () => {
    proc = spawn(
      process.execPath,
      [main, 'serve', '--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'],
      { env: { ...process.env, APIARY_DATA_DIR: dir.path, LOG_LEVEL: 'debug', APIARY_ADMIN_TOKEN: SECRET }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // Killed with the test process however it ends (a test runner timeout included).
    trackChild(proc.pid);
    proc.once('exit', () => untrackChild(proc.pid));
    proc.stdout!.on('data', (d) => (log += d.toString()));
    proc.stderr!.on('data', (d) => (log += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/apiary is ready/.test(log)) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`core did not start:\n${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const ready = log.split('\n').find((l) => l.includes('apiary is ready'))!;
    base = `127.0.0.1:${(JSON.parse(ready) as { api: { port: number } }).api.port}`;
  });
  after(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill('SIGTERM');
      await Promise.race([once(proc, 'exit'), new Promise((r) => setTimeout(r, 20_000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    dir.cleanup();
  });

  it('never writes a query token, in any encoding, to the log', async () => {
    for (const name of ['access_token', 'access%5Ftoken', 'access%5ftoken', 'ACCESS_TOKEN', '%61ccess_token']) {
      const res = await fetch(`http://${base}/api/v1/nodes?${name}=${SECRET}&x=1`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 401, name);
    }
    const ws = new WebSocket(`ws://${base}/api/v1/events/stream?access_token=${SECRET}`);
    await Promise.race([once(ws, 'open'), new Promise((_, rej) => setTimeout(() => rej(new Error('no upgrade')), 10_000))]);
    ws.close();
    assert.equal((await fetch(`http://${base}/api/v1/nodes`, { headers: { authorization: `bearer ${SECRET}` } })).status, 200);
    // Lines reach this process through the child's stdout: wait for both (the WebSocket's is logged
    // when its upgrade ends, which can come after the next request's answer on a loaded machine).
    const deadline = Date.now() + 10_000;
    const logged = () => /access%5Ftoken=\[redacted\]/.test(log) && /\/api\/v1\/events\/stream\?access_token=\[redacted\]/.test(log);
    while (!logged() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(log, /\/api\/v1\/nodes\?access%5Ftoken=\[redacted\]&x=1/);
    assert.match(log, /\/api\/v1\/events\/stream\?access_token=\[redacted\]/);
    assert.ok(!log.includes(SECRET), 'the token appears in the log');
  });
});
