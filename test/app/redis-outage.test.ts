// Redis going away must cost only the command API: readiness says so, node sessions and events
// keep flowing, and commands are accepted again once Redis is back.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildCore, type Core } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

async function until(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('core with an external Redis that goes down', () => {
  const dir = tempDir('apiary-outage-');
  let redis: TestRedis;
  let core: Core;
  let node: SimulatedNode;
  let base: string;
  let token: string;

  before(async () => {
    redis = await startTestRedis();
    core = await buildCore(
      loadConfig(['--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'], {
        APIARY_DATA_DIR: dir.path,
        LOG_LEVEL: 'silent',
        ENROLLMENT_MODE: 'open',
        REDIS_URL: redis.url,
      }),
    );
    base = `http://127.0.0.1:${core.addresses.api.port}`;
    token = readFileSync(join(dir.path, 'admin-token'), 'utf8').trim();
    node = new SimulatedNode({ name: 'outage-node', host: '127.0.0.1', port: core.addresses.nodeTcp.port, secretDir: join(dir.path, 'node'), heartbeatMs: 60_000 });
    const registered = node.waitFor('registered', { timeoutMs: 10_000 });
    node.start();
    await registered;
  });
  after(async () => {
    await node?.stop();
    await core?.close();
    await redis?.dispose();
    dir.cleanup();
  });

  const send = () =>
    fetch(`${base}/api/v1/nodes/outage-node/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: { GetInstalledPots: {} } }),
    });
  const eventCount = async () =>
    ((await (await fetch(`${base}/api/v1/events?node=outage-node&limit=500`, { headers: { authorization: `Bearer ${token}` } })).json()) as { events: unknown[] }).events.length;

  it('answers 503 for commands and readiness while Redis is down, keeps ingesting events, recovers', async () => {
    await redis.kill();
    await until(async () => (await fetch(`${base}/readyz`)).status === 503, 10_000, 'readyz 503');
    const started = Date.now();
    const refused = await send();
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: string }).error, 'redis_unavailable');
    assert.ok(Date.now() - started < 5000, 'the 503 comes quickly');

    const before = await eventCount();
    for (let i = 0; i < 5; i++) node.sendAttack('potevent', 'pot-x');
    // Bounded generously: the events go through the gateway, the writer thread and a read worker,
    // which on two cores shared with a loaded suite took more than 5 s (a flake, not a loss).
    await until(async () => (await eventCount()) === before + 5, 30_000, 'events stored while Redis is down');
    assert.ok(core.gateway.isOnline('outage-node'));

    await redis.restart();
    await until(async () => (await fetch(`${base}/readyz`)).status === 200, 20_000, 'readyz 200 after restart');
    const accepted = await send();
    assert.equal(accepted.status, 201);
    const { id } = (await accepted.json()) as { id: string };
    await until(
      async () => {
        const r = (await (await fetch(`${base}/api/v1/commands/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { status: string };
        return r.status === 'succeeded';
      },
      15_000,
      'command delivered after recovery',
    );
  });
});
