// The core as a person runs it, in real processes: `npm start` stopped with SIGTERM, the compiled
// entry point stopped with SIGTERM, a core killed with SIGKILL whose redis-server is left behind,
// its redis-server killed with SIGKILL under it, and the startup errors a person can make. Every
// listener is on a free port of 127.0.0.1; every process is killed when the test process ends.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { findLeftovers } from '../../src/redis/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { alive, coreEnv, freePortFlags, killAll, portClosed, readyCore, start, track, until, type CoreAddresses, type Proc } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const dirs: { path: string; cleanup(): void }[] = [];
function dataDir(): string {
  const d = tempDir('apiary-ops-');
  dirs.push(d);
  return d.path;
}
after(async () => {
  killAll();
  // A core killed mid-test leaves its redis-server (own process group) behind: sweep the data dirs.
  for (const d of dirs) for (const left of await findLeftovers(join(d.path, 'redis'))) process.kill(left.pid, 'SIGKILL');
  for (const d of dirs) d.cleanup();
});

const serve = (dir: string, extraArgs: string[] = [], env: Record<string, string> = {}) =>
  start(process.execPath, ['bin/apiary.js', 'serve', ...freePortFlags, ...extraArgs], { env: coreEnv(dir, env) });

async function allClosed(a: CoreAddresses): Promise<boolean> {
  return (await portClosed(a.api)) && (await portClosed(a.nodeTcp)) && (await portClosed(a.hpfeeds));
}

describe('signals', () => {
  it('SIGTERM to `npm start` stops the core: ports free, no child left', async () => {
    const dir = dataDir();
    const npm = start('npm', ['start', '--', ...freePortFlags], { env: coreEnv(dir) });
    const addr = await readyCore(npm);
    assert.equal((await fetch(`http://127.0.0.1:${addr.api}/healthz`)).status, 200);
    const corePid = npm.logs.find((r) => r.msg === 'apiary is ready')!.pid as number;
    assert.notEqual(corePid, npm.pid, 'npm runs the core as a child');
    assert.ok(addr.redisPid && alive(addr.redisPid));
    npm.child.kill('SIGTERM');
    await until(() => !alive(corePid), 30_000, 'the core to exit');
    await until(() => !alive(addr.redisPid!), 10_000, 'its redis-server to exit');
    assert.ok(await allClosed(addr), 'every port is free');
    assert.deepEqual(await findLeftovers(join(dir, 'redis')), []);
    assert.ok(!npm.logs.some((r) => /GET \/healthz/.test(r.msg)), 'no access line at LOG_LEVEL=info');
  });

  it('SIGTERM to the entry point: graceful stop, exit code 0', async () => {
    const dir = dataDir();
    const core = serve(dir, [], { LOG_LEVEL: 'debug' });
    const addr = await readyCore(core);
    assert.equal((await fetch(`http://127.0.0.1:${addr.api}/healthz`)).status, 200);
    const access = await core.waitLog((r) => /^GET \/healthz 200 \d+ ms$/.test(r.msg), 10_000, 'the access line');
    assert.equal(access.level, 20, 'access lines are debug');
    core.child.kill('SIGTERM');
    const { code } = await core.exited;
    assert.equal(code, 0);
    assert.ok(core.logs.some((r) => r.msg === 'stopped'));
    assert.ok(!alive(addr.redisPid!), 'redis-server stopped with the core');
    assert.ok(await allClosed(addr));
  });
});

describe('the private redis-server', () => {
  const dir = dataDir();
  let core: Proc;
  let addr: CoreAddresses;
  let node: SimulatedNode | undefined;
  after(() => node?.stop());

  it('a redis-server left by a core killed with SIGKILL is found and stopped by the next core', async () => {
    const crashed = serve(dir);
    const first = await readyCore(crashed);
    crashed.child.kill('SIGKILL');
    await crashed.exited;
    assert.ok(alive(first.redisPid!), 'the killed core left its redis-server running');

    core = serve(dir, [], { ENROLLMENT_MODE: 'provisioned' });
    addr = await readyCore(core);
    const found = core.logs.find((r) => r.redisPid === first.redisPid && /left running by a previous core/.test(r.msg));
    assert.ok(found, 'the new core says what it found');
    assert.match(found.msg, new RegExp(`pid ${crashed.pid}`));
    await until(() => !alive(first.redisPid!), 10_000, 'the leftover to be gone');
    assert.notEqual(addr.redisPid, first.redisPid);
  });

  it('is restarted after SIGKILL; a command accepted before is still delivered', async () => {
    const { readFileSync } = await import('node:fs');
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const base = `http://127.0.0.1:${addr.api}`;
    const api = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    const created = await api('POST', '/api/v1/nodes', { name: 'edge-1' });
    assert.equal(created.status, 201);
    const queued = await api('POST', '/api/v1/nodes/edge-1/commands', { command: { GetInstalledPots: {} } });
    assert.equal(queued.status, 201, JSON.stringify(queued.body));

    process.kill(addr.redisPid!, 'SIGKILL');
    const restarted = await core.waitLog((r) => /private redis-server restarted/.test(r.msg), 30_000, 'the restart log line');
    assert.ok(core.logs.some((r) => r.level === 40 && /exited unexpectedly \(SIGKILL\); restart #1/.test(r.msg)));
    const newPid = restarted.redisPid as number;
    track(newPid);
    assert.ok(newPid && newPid !== addr.redisPid && alive(newPid));
    await until(async () => (await fetch(`${base}/readyz`)).status === 200, 30_000, 'readyz 200');
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    assert.match(metrics, /^apiary_redis_restarts_total 1$/m);
    assert.match(metrics, /^apiary_redis_up 1$/m);

    const secretDir = dataDir();
    writeFileSync(join(secretDir, '.honeybee_totp_secret'), String(created.body.secret));
    node = new SimulatedNode({ name: 'edge-1', host: '127.0.0.1', port: addr.nodeTcp, secretDir, heartbeatMs: 60_000, pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }], announcePots: true });
    node.start();
    await until(
      async () => (await api('GET', `/api/v1/commands/${String(queued.body.id)}`)).body.status === 'succeeded',
      30_000,
      'the command queued before the kill to be delivered',
    );
    const again = await api('POST', '/api/v1/nodes/edge-1/commands', { command: { GetInstalledPots: {} } });
    assert.equal(again.status, 201, 'commands are accepted again');
    // The simulator's pre-installed pot is listed, not only seen in events.
    const pots = await until(async () => {
      const listed = (await api('GET', '/api/v1/nodes/edge-1/pots')).body.pots as unknown[];
      return listed.length > 0 && listed;
    }, 10_000, 'the pot listed');
    assert.match(JSON.stringify(pots), /cowrie-01/);
    // A broadcast without its selector says what a selector is.
    const noNodes = await api('POST', '/api/v1/commands/broadcast', { command: { Restart: {} } });
    assert.equal(noNodes.status, 400);
    assert.match(String(noNodes.body.message), /nodes is required: give a list of node names, "all", "online"/);

    core.child.kill('SIGTERM');
    assert.equal((await core.exited).code, 0);
    assert.ok(!alive(newPid), 'the restarted redis-server stops with the core');
  });
});

describe('startup errors: one line, exit 1, nothing left running', () => {
  let held: Server | undefined;
  after(() => held?.close());

  const oneLine = (p: Proc) => {
    const lines = p.stderr().trim().split('\n');
    assert.equal(lines.length, 1, `one line on stderr, got:\n${p.stderr()}`);
    return lines[0]!;
  };

  it('a port held by another socket names the setting that moves it, and the private Redis is stopped', async () => {
    held = createServer();
    await new Promise<void>((r) => held!.listen(0, '127.0.0.1', r));
    const port = (held.address() as { port: number }).port;
    const dir = dataDir();
    const core = start(process.execPath, ['bin/apiary.js', 'serve', ...freePortFlags, '--api-port', String(port)], { env: coreEnv(dir) });
    const { code } = await core.exited;
    assert.equal(code, 1);
    const line = oneLine(core);
    assert.match(line, new RegExp(`^apiary: port ${port} on 127\\.0\\.0\\.1 \\(HTTP API\\) is already in use`));
    assert.match(line, /API_PORT \/ --api-port/);
    const redis = core.logs.find((r) => r.msg === 'started private redis-server');
    assert.ok(redis, 'Redis had started before the API port was tried');
    assert.ok(!alive(redis.redisPid as number), 'and was stopped');
    assert.deepEqual(await findLeftovers(join(dir, 'redis')), []);
  });

  it('a data directory that cannot be used', async () => {
    const file = join(dataDir(), 'not-a-dir');
    writeFileSync(file, '');
    const core = start(process.execPath, ['bin/apiary.js', 'serve', ...freePortFlags], { env: coreEnv(file) });
    assert.equal((await core.exited).code, 1);
    assert.match(oneLine(core), /^apiary: cannot use the data directory .*not-a-dir \(APIARY_DATA_DIR \/ --data-dir\): /);
  });

  it('a TLS file that cannot be read, or is not a certificate', async () => {
    const dir = dataDir();
    const missing = start(process.execPath, ['bin/apiary.js', 'serve', ...freePortFlags, '--node-tls-cert', join(dir, 'nope.pem'), '--node-tls-key', join(dir, 'nope.key')], { env: coreEnv(dir) });
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const bad = start(process.execPath, ['bin/apiary.js', 'serve', ...freePortFlags, '--node-tls-cert', junk, '--node-tls-key', junk], { env: coreEnv(dir) });
    assert.equal((await missing.exited).code, 1);
    assert.equal((await bad.exited).code, 1);
    assert.match(oneLine(missing), /^apiary: cannot read .*nope\.pem \(NODE_TLS_CERT \/ --node-tls-cert\): no such file or directory$/);
    assert.match(oneLine(bad), /^apiary: .*junk\.pem .*\(NODE_TLS_CERT \/ --node-tls-cert, NODE_TLS_KEY \/ --node-tls-key\) are not a usable PEM certificate and key: /);
  });
});
