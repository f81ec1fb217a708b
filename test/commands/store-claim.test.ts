// The delivery claim and seq allocation when several stores (instances) share one SQLite file:
// markSent (the claim) lets a command go out only while nothing of its node is sent and nothing earlier is
// queued, and seq numbers stay unique and increasing whichever store inserts.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SqliteCommandStore } from '../../src/commands/sqlite-store.js';
import type { NewCommand } from '../../src/commands/store.js';
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

  it('hands out unique, increasing seq numbers whichever store inserts', async () => {
    const s1 = new SqliteCommandStore(h1);
    const s2 = new SqliteCommandStore(h2);
    const seqs = [
      ...(await s1.insert([cmd('a'), cmd('b')])),
      ...(await s2.insert([cmd('a')])),
      ...(await s1.insert([cmd('a')])),
      ...(await s2.insert([cmd('b'), cmd('a')])),
    ].map((r) => r.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
    assert.equal(new Set(seqs).size, seqs.length);
  });

  it('markSent: one in flight per node, in seq order, across stores', async () => {
    const s1 = new SqliteCommandStore(h1);
    const s2 = new SqliteCommandStore(h2);
    const [x, y] = await s1.insert([cmd('z'), cmd('z')]);
    assert.equal(await s2.markSent(y.id, 1), false, 'an earlier command is still queued');
    assert.equal(await s1.markSent(x.id, 1), true);
    assert.equal(await s2.markSent(x.id, 2), false, 'claimed once');
    assert.equal(await s2.markSent(y.id, 2), false, 'the node has one in flight');
    assert.equal(await s1.finish(x.id, 'sent', 'succeeded', null, 3), true);
    assert.equal(await s2.markSent(y.id, 4), true);
    const [other] = await s2.insert([cmd('w')]);
    assert.equal(await s1.markSent(other.id, 5), true, 'other nodes are not held up');
  });
});
