// The broker reuses its 64 KiB turn pieces (route.ts PiecePool): a piece may go back to the pool only
// once every subscriber's write of it has completed. A slow subscriber still has writes of a turn's
// pieces pending long after a fast one got them; every byte it receives must be what was published.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSubscribe } from '../../src/hpfeeds/codec.js';
import { CHUNK_BYTES, PiecePool } from '../../src/hpfeeds/route.js';
import { ALICE_BOB_KEYS, publishes, RawPeer, sleep, startBroker, waitFor, waitSubscriptions } from './harness.js';

const PAYLOAD = 3000;
const PER_TURN = 100; // ~300 KiB a turn: four full pieces and a short one
const TURNS = 30;

/** A payload whose every byte depends on its sequence number. */
function payload(seq: number): Buffer {
  const b = Buffer.allocUnsafe(PAYLOAD);
  b.writeUInt32BE(seq, 0);
  for (let i = 4; i < PAYLOAD; i++) b[i] = (seq * 31 + i * 7) & 0xff;
  return b;
}

describe('hpfeeds broker: turn pieces reused across turns', () => {
  it('PiecePool hands out full pieces again, keeps at most its bound, and never a short one', () => {
    const pool = new PiecePool(2);
    const a = pool.take(CHUNK_BYTES);
    const b = pool.take(CHUNK_BYTES);
    const c = pool.take(CHUNK_BYTES);
    const short = pool.take(100);
    pool.give([a, b, c, short]);
    assert.equal(pool.size, 2);
    const again = [pool.take(CHUNK_BYTES), pool.take(CHUNK_BYTES)];
    assert.ok(again.includes(a) && again.includes(b));
    assert.notEqual(pool.take(CHUNK_BYTES), c);
    assert.equal(pool.take(100).length, 100);
  });

  it('a slow subscriber gets every byte published while a fast one keeps the pieces turning over', async () => {
    const t = await startBroker({ keys: ALICE_BOB_KEYS, maxSendBufferBytes: 64 * 1024 * 1024, highWaterBytes: 32 * 1024 * 1024 });
    const slow = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    const fast = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]);
    try {
      await waitSubscriptions(t, 'bob', 'events', 1);
      await waitSubscriptions(t, 'alice', 'events', 1);
      const stop = slow.throttle(512 * 1024);
      let seq = 0;
      for (let turn = 0; turn < TURNS; turn++) {
        for (let i = 0; i < PER_TURN; i++) t.broker.publish('core', 'events', payload(seq++));
        // Next turn: the fast subscriber's writes complete while the slow one's are still queued.
        await sleep(5);
      }
      const total = seq;
      await waitFor(() => publishes(fast).length >= total, 20_000, 'fast subscriber gets everything');
      stop();
      await waitFor(() => publishes(slow).length >= total, 30_000, 'slow subscriber gets everything');
      for (const peer of [fast, slow]) {
        const got = publishes(peer);
        assert.equal(got.length, total);
        for (let i = 0; i < total; i++) {
          if (!got[i]!.payload.equals(payload(i))) assert.fail(`${peer === slow ? 'slow' : 'fast'} subscriber: payload ${i} was overwritten`);
        }
      }
    } finally {
      slow.destroy();
      fast.destroy();
      await t.broker.close();
    }
  });
});
