// Session routing on PostgreSQL (DATABASE_URL): two composed cores sharing one PostgreSQL database
// and one Redis. A command sent through b reaches the node on a once; when the node moves to b
// (takeover), the command in flight and those queued behind it, accepted through both cores, are
// delivered once each and in order: the claim (markSent under the node's advisory lock) and seq
// (the sequence commands_seq) hold across cores there as the shared SQLite file does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestPgDatabase, pgSkipReason, type TestPgDatabase } from '../helpers/pg.js';
import { connectNode, postCommand as post, settledCommands, startFleet, waitFor, type Fleet, type Instance } from './helpers.js';

const skip = await pgSkipReason();

describe('session routing on PostgreSQL', { timeout: 120_000, skip }, () => {
  let db: TestPgDatabase;
  let fleet: Fleet;
  let a: Instance, b: Instance;

  before(async () => {
    db = await createTestPgDatabase();
    fleet = await startFleet(['a', 'b'], { DATABASE_URL: db.url });
    [a, b] = fleet.instances as [Instance, Instance];
  });
  after(async () => {
    await fleet?.close();
    await db?.drop();
  });

  it('runs on PostgreSQL', () => {
    assert.equal(a.core.stores.kind, 'postgresql');
    assert.equal(b.core.stores.kind, 'postgresql');
  });

  it('a command through b reaches the node on a once; after the node moves to b, those in flight and queued are delivered once, in order', async () => {
    const secret = await fleet.provision(b, 'pg1');
    const onA: string[] = [];
    const first = await connectNode(fleet, a, 'pg1', secret, onA);
    await settledCommands(b, 'pg1'); // the GetInstalledPots of the registration
    const one = await post(b, 'pg1', { GetPotStatus: 'p1' });
    await waitFor(async () => (await a.api('GET', `/api/v1/commands/${one}`)).body.status === 'succeeded', 'the command through b');
    assert.deepEqual(onA.filter((k) => k === 'GetPotStatus'), ['GetPotStatus']);
    onA.length = 0;

    // UpdateConfig stays in flight for the answer grace; two more queue behind it, through both cores.
    const ids = [await post(b, 'pg1', { UpdateConfig: {} }), await post(a, 'pg1', { GetPotInfo: 'p1' }), await post(b, 'pg1', { GetPotLogs: 'p1' })];
    await waitFor(() => onA.includes('UpdateConfig'), 'UpdateConfig to reach the node on a');
    const staleClosed = first.waitFor('disconnected');
    const onB: string[] = [];
    await connectNode(fleet, b, 'pg1', secret, onB, { clock: () => Date.now() + 30_000 });
    await staleClosed;

    const list = await settledCommands(a, 'pg1');
    const mine = list.filter((x) => ids.includes(x.id)).sort((x, y) => x.seq - y.seq);
    assert.deepEqual(mine.map((x) => x.id), ids, 'seq in acceptance order across cores');
    assert.deepEqual(mine.map((x) => x.status), ['succeeded', 'succeeded', 'succeeded']);
    const delivered = [...onA, ...onB].filter((k) => k !== 'GetInstalledPots');
    assert.deepEqual(delivered, ['UpdateConfig', 'GetPotInfo', 'GetPotLogs'], 'each once, in order');
    assert.deepEqual(onA.filter((k) => k !== 'GetInstalledPots'), ['UpdateConfig'], 'nothing more went to the stale session');
    const seen = (await a.api('GET', '/api/v1/nodes/pg1')).body;
    assert.equal(seen.online, true);
    assert.notEqual(seen.status, 'Offline');
  });
});
