// In-process publishes are encoded into chunks (publish-arena.ts) that are written again once the
// flusher has sealed every route; a route holds views of its frames until then (several turns when
// the flush lingers): a chunk must never be written over while a frame in it is still to be copied. One turn here publishes several chunks' worth, mixing payload sizes (some
// bigger than a carved frame), string and byte payloads, non-ASCII idents and channels; with the
// flush lingering past the turn (captured frames) and without.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSubscribe } from '../../src/hpfeeds/codec.js';
import { key, publishes, RawPeer, startBroker, waitFor, waitSubscriptions } from './harness.js';

const CHANNEL = 'évènements';
const IDENTS = ['core', 'cœur-ünï', 'n'.repeat(200)];

function payloadOf(seq: number): Buffer | string {
  // Mostly carved sizes (chunks fill and roll over within a turn), now and then one of its own.
  const size = seq % 23 === 22 ? 33_000 : [40, 700, 3000, 5000, 1200][seq % 5]!;
  if (seq % 3 === 0) return `${seq}:` + 'ünï🐝'.repeat(Math.ceil(size / 8)).slice(0, size);
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32BE(seq, 0);
  for (let i = 4; i < size; i++) b[i] = (seq * 13 + i * 5) & 0xff;
  return b;
}

for (const flushLingerMs of [0, 10]) {
  describe(`hpfeeds broker: in-process publishes from shared chunks (flush linger ${flushLingerMs} ms)`, () => {
    it('every frame of a turn arrives as published, in order, with its ident', async () => {
      const t = await startBroker({
        keys: [key('bob', 'bob-secret', [], [CHANNEL])],
        flushLingerMs,
        maxSendBufferBytes: 64 * 1024 * 1024,
        highWaterBytes: 32 * 1024 * 1024,
      });
      const sub = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', CHANNEL)]);
      try {
        await waitSubscriptions(t, 'bob', CHANNEL, 1);
        const sent: Array<{ ident: string; payload: Buffer }> = [];
        for (let turn = 0; turn < 3; turn++) {
          // ~400 KiB in one turn: a dozen 32 KiB chunks.
          for (let i = 0; i < 160; i++) {
            const seq = sent.length;
            const ident = IDENTS[seq % IDENTS.length]!;
            const payload = payloadOf(seq);
            t.broker.publish(ident, CHANNEL, payload);
            sent.push({ ident, payload: Buffer.from(payload) });
          }
          await new Promise((r) => setImmediate(r));
        }
        await waitFor(() => publishes(sub).length >= sent.length, 20_000, 'subscriber gets everything');
        const got = publishes(sub);
        assert.equal(got.length, sent.length);
        for (let i = 0; i < sent.length; i++) {
          assert.equal(got[i]!.ident, sent[i]!.ident, `frame ${i} ident`);
          assert.equal(got[i]!.channel, CHANNEL, `frame ${i} channel`);
          if (!got[i]!.payload.equals(sent[i]!.payload)) assert.fail(`frame ${i} payload differs (written over?)`);
        }
      } finally {
        sub.destroy();
        await t.broker.close();
      }
    });
  });
}
