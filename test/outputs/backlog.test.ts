import assert from 'node:assert/strict';
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileBacklog } from '../../src/outputs/backlog.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('apiary-backlog-');
after(() => tmp.cleanup());
let n = 0;
const dirOf = () => join(tmp.path, `b${n++}`);
const bufs = (from: number, count: number, pad = '') => Array.from({ length: count }, (_, i) => Buffer.from(`entry-${from + i}${pad}`));
const texts = (b: Buffer[]) => b.map((x) => x.toString());

describe('FileBacklog', () => {
  it('keeps order, survives reopening, and forgets what was acknowledged', () => {
    const dir = dirOf();
    let b = new FileBacklog({ dir, segmentBytes: 64 * 1024 });
    assert.equal(b.append(bufs(0, 10), 1000), 0);
    assert.equal(b.pendingEntries, 10);
    assert.equal(b.oldestAppendedAt, 1000);
    const first = b.peek(4, 1 << 20)!;
    assert.deepEqual(texts(first.entries), ['entry-0', 'entry-1', 'entry-2', 'entry-3']);
    // Peeking again without an ack gives the same batch (in flight, not removed).
    assert.deepEqual(texts(b.peek(4, 1 << 20)!.entries), texts(first.entries));
    b.ack(first.next, 4);
    assert.equal(b.pendingEntries, 6);
    b.close();
    b = new FileBacklog({ dir, segmentBytes: 64 * 1024 });
    assert.equal(b.pendingEntries, 6);
    assert.deepEqual(texts(b.peek(100, 1 << 20)!.entries), texts(bufs(4, 6)));
    b.append(bufs(10, 2));
    const all = b.peek(100, 1 << 20)!;
    assert.deepEqual(texts(all.entries), texts(bufs(4, 8)));
    b.ack(all.next, 8);
    assert.equal(b.pendingEntries, 0);
    assert.equal(b.pendingBytes, 0);
    assert.equal(b.peek(10, 1000), null);
    b.close();
  });

  it('rolls segments, reads across them and deletes the acknowledged ones', () => {
    const dir = dirOf();
    const b = new FileBacklog({ dir, segmentBytes: 64 * 1024 });
    const pad = 'x'.repeat(1000);
    for (let i = 0; i < 300; i += 30) b.append(bufs(i, 30, pad));
    const segs = () => readdirSync(dir).filter((f) => f.endsWith('.seg')).length;
    assert.ok(segs() >= 4, `segments: ${segs()}`);
    const seen: string[] = [];
    for (;;) {
      const batch = b.peek(47, 20_000);
      if (!batch) break;
      seen.push(...texts(batch.entries));
      b.ack(batch.next, batch.entries.length);
    }
    assert.deepEqual(seen, texts(bufs(0, 300, pad)));
    assert.equal(segs(), 1, 'only the segment being written remains');
    assert.equal(b.pendingEntries, 0);
    b.close();
  });

  it('refuses new entries past its bound and says how many', () => {
    const dir = dirOf();
    const b = new FileBacklog({ dir, maxBytes: 1024 * 1024, segmentBytes: 256 * 1024 });
    const big = Buffer.alloc(100 * 1024, 0x61);
    const refused = b.append(Array.from({ length: 12 }, () => big));
    assert.equal(refused, 2);
    assert.equal(b.pendingEntries, 10);
    b.close();
  });

  it('cuts a torn frame at the tail after a crash', () => {
    const dir = dirOf();
    let b = new FileBacklog({ dir });
    b.append(bufs(0, 3));
    b.close();
    const seg = readdirSync(dir).find((f) => f.endsWith('.seg'))!;
    appendFileSync(join(dir, seg), Buffer.from([50, 0, 0, 0, 1, 2, 3]));
    b = new FileBacklog({ dir });
    assert.equal(b.pendingEntries, 3);
    b.append(bufs(3, 1));
    assert.deepEqual(texts(b.peek(10, 1 << 20)!.entries), texts(bufs(0, 4)));
    b.close();
  });
});
