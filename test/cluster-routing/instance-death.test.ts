// kill -9 of the instance holding a node's session: instance a runs as its own process (bin/apiary.js
// serve), b in this process, both on one SQLite file and one Redis. The node's session disappears from
// the registry once a's heartbeat stops; the node reconnects to b, which picks up the command a had
// sent (settled once) and delivers the one queued meanwhile, once.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NodeCommandBody } from '../../src/protocol/index.js';
import { SimulatedNode } from '../../src/simulator/node.js';
import { coreEnv, freePortFlags, killAll, readyCore, start, type CoreAddresses, type Proc } from '../helpers/processes.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';
import { ADMIN_TOKEN, apiClient, startInstance, waitFor, type Instance } from './helpers.js';

const POTS = [{ id: 'p1', type: 'cowrie', status: 'Running' as const }];
const kindOf = (c: NodeCommandBody) => Object.keys(c)[0]!;

describe('the instance holding a node is killed', { timeout: 180_000 }, () => {
  const dir = tempDir('apiary-routing-kill-');
  const dbFile = join(dir.path, 'shared.sqlite');
  let redis: TestRedis;
  let procA: Proc;
  let addrA: CoreAddresses;
  let apiA: Instance['api'];
  let b: Instance;
  const nodes: SimulatedNode[] = [];

  before(async () => {
    redis = await startTestRedis({ appendOnly: false });
    procA = start(process.execPath, ['bin/apiary.js', 'serve', ...freePortFlags, '--db', dbFile, '--query-workers', '1', '--analytics', 'false'], {
      env: coreEnv(join(dir.path, 'a'), {
        REDIS_URL: redis.url,
        INSTANCE_ID: 'a',
        APIARY_ADMIN_TOKEN: ADMIN_TOKEN,
        ENROLLMENT_MODE: 'provisioned',
      }),
    });
    addrA = await readyCore(procA).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${procA.stderr()}`);
    });
    apiA = apiClient(`http://127.0.0.1:${addrA.api}`);
    b = await startInstance('b', dbFile, join(dir.path, 'b'), redis.url);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await b?.core.close();
    killAll();
    await redis?.dispose();
    dir.cleanup();
  });

  it('the node reconnects to b: the command a sent settles once, the one queued meanwhile is delivered once', async () => {
    const created = await b.api('POST', '/api/v1/nodes', { name: 'k1' });
    assert.equal(created.status, 201);
    const secret = created.body.secret as string;
    const onA: string[] = [];
    const first = new SimulatedNode({ name: 'k1', host: '127.0.0.1', port: addrA.nodeTcp, secret, reconnect: false, heartbeatMs: 1000, pots: POTS });
    nodes.push(first);
    first.on('command', (c) => onA.push(kindOf(c)));
    const registered = first.waitFor('registered');
    first.start();
    await registered;
    await waitFor(async () => (await b.api('GET', '/api/v1/nodes/k1')).body.online === true, 'b to see k1 online on a');
    await waitFor(() => onA.includes('GetInstalledPots'), 'the registration query');
    await waitFor(async () => {
      const list = (await apiA('GET', '/api/v1/commands?node=k1')).body.commands as Array<{ status: string }>;
      return list.every((x) => x.status !== 'queued' && x.status !== 'sent');
    }, 'the registration query to settle');

    const sent = (await b.api('POST', '/api/v1/nodes/k1/commands', { command: { UpdateConfig: {} } })).body.id as string;
    await waitFor(() => onA.includes('UpdateConfig'), 'UpdateConfig to reach the node on a');
    procA.child.kill('SIGKILL');
    await procA.exited;

    // a's heartbeat stops: after at most three missed beats b no longer counts the node online.
    await waitFor(async () => (await b.api('GET', '/api/v1/nodes/k1')).body.online === false, 'b to see k1 offline', 20_000);
    const queued = (await b.api('POST', '/api/v1/nodes/k1/commands', { command: { GetPotStatus: 'p1' } })).body.id as string;

    const onB: string[] = [];
    const second = new SimulatedNode({ name: 'k1', host: '127.0.0.1', port: b.core.addresses.nodeTcp.port, secret, reconnect: false, heartbeatMs: 1000, pots: POTS, clock: () => Date.now() + 30_000 });
    nodes.push(second);
    second.on('command', (c) => onB.push(kindOf(c)));
    const again = second.waitFor('registered');
    second.start();
    await again;

    const final = async (id: string) =>
      waitFor(async () => {
        const v = (await b.api('GET', `/api/v1/commands/${id}`)).body;
        return v.status !== 'queued' && v.status !== 'sent' ? v : undefined;
      }, `command ${id} to settle`);
    assert.equal((await final(sent)).status, 'succeeded', 'the command in flight on a settles through b');
    assert.equal((await final(queued)).status, 'succeeded');
    assert.deepEqual(onA.filter((k) => k !== 'GetInstalledPots'), ['UpdateConfig']);
    assert.deepEqual(onB.filter((k) => k !== 'GetInstalledPots'), ['GetPotStatus'], 'nothing is sent twice');
  });
});
