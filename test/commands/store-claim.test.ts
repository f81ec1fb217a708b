// The delivery claim and seq allocation when several stores (instances) share one SQLite file:
// claimNext lets a command go out only while nothing of its node is sent and nothing earlier is
// queued, and seq numbers stay unique and increasing whichever store inserts.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CommandStore, type NewCommand } from '../../src/commands/store.js';
import { openDatabase } from '../../src/db/index.js';
import { tempDir } from '../helpers/tmp.js';

let n = 0;
const cmd = (nodeName: string): NewCommand => ({
  id: `k${++n}`,
  nodeName,
  kind: 'Restart',
  potId: null,
  command: { Restart: {} } as unknown as NewCommand['command'],
  batchId: null,
  requestedBy: null,
  createdAt: n,
  expiresAt: 1e12,
});

describe('command store shared by two instances', () => {
  const dir = tempDir();
  const file = join(dir.path, 'shared.sqlite');
  const h1 = openDatabase(file);
  const h2 = openDatabase(file);
  after(() => {
    h1.close();
    h2.close();
    dir.cleanup();
  });

  it('hands out unique, increasing seq numbers whichever store inserts', () => {
    const s1 = new CommandStore(h1);
    const s2 = new CommandStore(h2);
    const seqs = [
      ...s1.insert([cmd('a'), cmd('b')]),
      ...s2.insert([cmd('a')]),
      ...s1.insert([cmd('a')]),
      ...s2.insert([cmd('b'), cmd('a')]),
    ].map((r) => r.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.equal(new Set(seqs).size, seqs.length);
  });

  it('claimNext: one in flight per node, in seq order, across stores', () => {
    const s1 = new CommandStore(h1);
    const s2 = new CommandStore(h2);
    const [x, y] = s1.insert([cmd('z'), cmd('z')]);
    assert.equal(s2.claimNext(y.id, 1), false, 'an earlier command is still queued');
    assert.equal(s1.claimNext(x.id, 1), true);
    assert.equal(s2.claimNext(x.id, 2), false, 'claimed once');
    assert.equal(s2.claimNext(y.id, 2), false, 'the node has one in flight');
    assert.equal(s1.finish(x.id, 'sent', 'succeeded', null, 3), true);
    assert.equal(s2.claimNext(y.id, 4), true);
    const [other] = s2.insert([cmd('w')]);
    assert.equal(s1.claimNext(other.id, 5), true, 'other nodes are not held up');
  });
});
