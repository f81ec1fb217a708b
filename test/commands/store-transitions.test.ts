// The command state machine as the store enforces it on a real SQLite file: every transition is a
// compare-and-set on `status`, so each one succeeds exactly once and only from its own state
// (queued -> sent -> queued on a failed write; queued|sent -> terminal; queued -> withdrawn), and
// the queries the delivery and expiry loops decide on see exactly the rows they should.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CommandStore, type NewCommand } from '../../src/commands/store.js';
import type { TerminalStatus } from '../../src/commands/types.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { tempDir } from '../helpers/tmp.js';

let n = 0;
function cmd(nodeName: string, extra: Partial<NewCommand> = {}): NewCommand {
  n++;
  return {
    id: `c${n}`,
    nodeName,
    kind: 'Restart',
    potId: null,
    command: { Restart: {} } as unknown as NewCommand['command'],
    batchId: null,
    requestedBy: 'op',
    createdAt: 1_000 + n,
    expiresAt: 100_000,
    ...extra,
  };
}

describe('command store: state transitions', () => {
  const dir = tempDir();
  let handle: DatabaseHandle;
  let store: CommandStore;
  before(() => {
    handle = openDatabase(join(dir.path, 'commands.sqlite'));
  });
  after(() => {
    handle.close();
    dir.cleanup();
  });
  beforeEach(() => {
    handle.sqlite.exec('DELETE FROM commands');
    store = new CommandStore(handle);
  });

  const status = (id: string) => store.get(id)?.status;

  it('queued -> sent once; sent -> queued only when the write did not happen', () => {
    const [a] = store.insert([cmd('n1')]);
    assert.equal(status(a.id), 'queued');
    assert.equal(store.unmarkSent(a.id), false, 'a queued command cannot be un-sent');
    assert.equal(store.markSent(a.id, 5_000), true);
    assert.equal(status(a.id), 'sent');
    assert.equal(store.get(a.id)?.sentAt, 5_000);
    assert.equal(store.markSent(a.id, 6_000), false, 'sent twice');
    assert.equal(store.get(a.id)?.sentAt, 5_000);
    assert.equal(store.unmarkSent(a.id), true);
    assert.equal(status(a.id), 'queued');
    assert.equal(store.get(a.id)?.sentAt, null);
    assert.equal(store.unmarkSent(a.id), false, 'un-sent twice');
    assert.equal(store.markSent('missing', 1), false);
    assert.equal(store.unmarkSent('missing'), false);
  });

  it('finish() moves only from the stated state, once, and records result and time', () => {
    const [q, s] = store.insert([cmd('n1'), cmd('n1')]);
    assert.ok(store.markSent(s.id, 10));
    assert.equal(store.finish(q.id, 'sent', 'succeeded', null, 20), false, 'queued is not sent');
    assert.equal(store.finish(s.id, 'queued', 'cancelled', null, 20), false, 'sent is not queued');
    assert.deepEqual([status(q.id), status(s.id)], ['queued', 'sent']);

    assert.equal(store.finish(s.id, 'sent', 'failed', { reason: 'node_error', message: 'boom' }, 30), true);
    const done = store.get(s.id)!;
    assert.equal(done.status, 'failed');
    assert.deepEqual(JSON.parse(done.result!), { reason: 'node_error', message: 'boom' });
    assert.equal(done.finishedAt, 30);
    assert.equal(store.finish(s.id, 'sent', 'succeeded', null, 40), false, 'a terminal state is final');
    assert.equal(store.get(s.id)?.status, 'failed');
    assert.equal(store.markSent(s.id, 50), false);
    assert.equal(store.unmarkSent(s.id), false);

    assert.equal(store.finish(q.id, 'queued', 'cancelled', null, 60), true);
    assert.equal(store.get(q.id)?.result, null, 'no result is stored as NULL');
    assert.equal(store.get(q.id)?.finishedAt, 60);
    assert.equal(store.finish(q.id, 'queued', 'expired', null, 70), false);
    assert.equal(store.finish('missing', 'queued', 'expired', null, 70), false);
  });

  it('every terminal status can be reached from its source state', () => {
    const cases: Array<['queued' | 'sent', TerminalStatus]> = [
      ['sent', 'succeeded'],
      ['sent', 'failed'],
      ['queued', 'expired'],
      ['queued', 'cancelled'],
    ];
    for (const [from, to] of cases) {
      const [row] = store.insert([cmd('n1')]);
      if (from === 'sent') assert.ok(store.markSent(row.id, 1));
      assert.equal(store.finish(row.id, from, to, { message: to }, 2), true, `${from} -> ${to}`);
      assert.equal(status(row.id), to);
    }
  });

  it('progress() updates the result of a sent command only', () => {
    const [a] = store.insert([cmd('n1')]);
    store.progress(a.id, { potStatus: 'Installing' });
    assert.equal(store.get(a.id)?.result, null, 'queued: no progress');
    store.markSent(a.id, 1);
    store.progress(a.id, { potStatus: 'Installing' });
    assert.deepEqual(JSON.parse(store.get(a.id)!.result!), { potStatus: 'Installing' });
    assert.equal(status(a.id), 'sent', 'progress is not a transition');
    store.finish(a.id, 'sent', 'succeeded', { potStatus: 'Running' }, 2);
    store.progress(a.id, { potStatus: 'Installing' });
    assert.deepEqual(JSON.parse(store.get(a.id)!.result!), { potStatus: 'Running' }, 'finished: result is final');
  });

  it('withdraw() removes a queued command only', () => {
    const [a, b] = store.insert([cmd('n1'), cmd('n1')]);
    store.markSent(b.id, 1);
    assert.equal(store.withdraw(b.id), false);
    assert.equal(status(b.id), 'sent');
    assert.equal(store.withdraw(a.id), true);
    assert.equal(store.get(a.id), undefined);
    assert.equal(store.withdraw(a.id), false);
  });

  it('delivery queries: in flight, next queued and earlier queued are per node, in seq order', () => {
    const [a1, a2, a3] = store.insert([cmd('a'), cmd('a'), cmd('a')]);
    const [b1] = store.insert([cmd('b')]);
    assert.deepEqual([a1.seq + 1, a1.seq + 2, a1.seq + 3], [a2.seq, a3.seq, b1.seq], 'consecutive seq');
    assert.equal(store.inFlight('a'), undefined);
    assert.equal(store.nextQueued('a')?.id, a1.id);
    assert.equal(store.nextQueued('b')?.id, b1.id);
    assert.equal(store.nextQueued('c'), undefined);
    assert.equal(store.hasEarlierQueued('a', a1.seq), false, 'strictly earlier');
    assert.equal(store.hasEarlierQueued('a', a2.seq), true);
    assert.equal(store.hasEarlierQueued('b', b1.seq), false, 'other nodes do not count');

    store.markSent(a1.id, 1);
    assert.equal(store.inFlight('a')?.id, a1.id);
    assert.equal(store.inFlight('b'), undefined);
    assert.equal(store.nextQueued('a')?.id, a2.id);
    assert.equal(store.hasEarlierQueued('a', a2.seq), false, 'a sent command is not queued');
    assert.equal(store.hasEarlierQueued('a', a3.seq), true);
    store.finish(a1.id, 'sent', 'succeeded', null, 2);
    assert.equal(store.inFlight('a'), undefined);
    assert.deepEqual(store.nodesWithQueued().sort(), ['a', 'b']);
    store.finish(b1.id, 'queued', 'cancelled', null, 3);
    assert.deepEqual(store.nodesWithQueued(), ['a']);
  });

  it('pending, due for expiry and counts see only the rows in those states', () => {
    const [q, s, f] = store.insert([cmd('n1', { expiresAt: 500 }), cmd('n1', { expiresAt: 500 }), cmd('n1', { expiresAt: 400 })]);
    const [late] = store.insert([cmd('n2', { expiresAt: 501 })]);
    store.markSent(s.id, 1);
    store.finish(f.id, 'queued', 'cancelled', null, 2);
    assert.deepEqual(store.pending().map((r) => r.id), [q.id, s.id, late.id]);
    assert.deepEqual(store.dueForExpiry(499).map((r) => r.id), []);
    assert.deepEqual(store.dueForExpiry(500).map((r) => r.id), [q.id], 'expires_at <= now; sent commands are timed by their answer');
    assert.deepEqual(store.dueForExpiry(501).map((r) => r.id), [q.id, late.id]);
    assert.deepEqual(
      (['queued', 'sent', 'cancelled', 'failed'] as const).map((st) => store.count(st)),
      [2, 1, 1, 0],
    );
  });

  it('a reopened store continues the seq after the highest one', () => {
    const rows = store.insert([cmd('n1'), cmd('n1')]);
    const again = new CommandStore(handle);
    const [next] = again.insert([cmd('n1')]);
    assert.equal(next.seq, rows[1].seq + 1);
  });
});
