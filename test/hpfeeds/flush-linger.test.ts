// The flush linger: in a steady trickle a subscriber gets one write per window, not one per
// message; a message after a quiet spell goes out at once; frames of an external publisher
// survive the turns they wait through (they point into read buffers until captured); and a
// broker closing with lingering frames still delivers them before the end.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { OP_PUBLISH, encodePublish, encodeSubscribe } from '../../src/hpfeeds/codec.js';
import { RawPeer, key, sleep, startBroker, waitFor, waitSubscriptions, type TestBroker } from './harness.js';

const KEYS = [key('pub', 'pub-secret', ['events'], []), key('sub', 'sub-secret', [], ['events'])];

function payloads(peer: RawPeer): string[] {
  return peer.frames.filter((f) => f.op === OP_PUBLISH).map((f) => (f as { payload: Buffer }).payload.toString());
}

describe('hpfeeds broker: flush linger', () => {
  let t: TestBroker | undefined;
  const peers: RawPeer[] = [];
  afterEach(async () => {
    for (const p of peers.splice(0)) p.destroy();
    await t?.broker.close();
    t = undefined;
  });

  async function setUp(flushLingerMs: number): Promise<{ pub: RawPeer; sub: RawPeer }> {
    t = await startBroker({ keys: KEYS, flushLingerMs });
    const sub = await RawPeer.login(t.port, 'sub', 'sub-secret', [encodeSubscribe('sub', 'events')]);
    const pub = await RawPeer.login(t.port, 'pub', 'pub-secret');
    peers.push(sub, pub);
    await waitSubscriptions(t, 'sub', 'events', 1);
    return { pub, sub };
  }

  it('coalesces a steady trickle from an external publisher into few writes, every frame intact and in order', async () => {
    const { pub, sub } = await setUp(40);
    const chunksBefore = sub.chunks.length;
    const sent: string[] = [];
    // Each message is its own write and, 2 ms apart, its own read turn on the broker; payloads
    // differ in length and content so a frame read from a reused buffer would show.
    for (let i = 0; i < 60; i++) {
      const text = `m${i}:${'x'.repeat(i % 17)}`;
      sent.push(text);
      pub.write(encodePublish('pub', 'events', text));
      await sleep(2);
    }
    await waitFor(() => payloads(sub).length === sent.length, 5000, 'all trickled messages');
    assert.deepEqual(payloads(sub), sent);
    // Without the linger each message is one write (60 reads); with 40 ms at most one write per
    // window over the ~120+ ms the trickle lasts (slower machines stretch it: bounded generously).
    const reads = sub.chunks.length - chunksBefore;
    assert.ok(reads <= 20, `subscriber saw ${reads} reads for 60 trickled messages`);
  });

  it('writes a message after a quiet spell at once, and holds the next ones for the window', async () => {
    const { pub, sub } = await setUp(1500);
    const started = performance.now();
    pub.publish('pub', 'events', 'first');
    await waitFor(() => payloads(sub).length === 1, 5000, 'first message');
    const firstMs = performance.now() - started;
    assert.ok(firstMs < 1000, `first message after a quiet spell took ${firstMs.toFixed(0)} ms`);

    const secondAt = performance.now();
    pub.publish('pub', 'events', 'second');
    await sleep(300);
    assert.deepEqual(payloads(sub), ['first'], 'the second message waits for the window');
    await waitFor(() => payloads(sub).length === 2, 5000, 'second message');
    assert.ok(performance.now() - secondAt < 3000);
    assert.deepEqual(payloads(sub), ['first', 'second']);
  });

  it('does not hold anything back after a large flush (high rates are never delayed)', async () => {
    const { pub, sub } = await setUp(1500);
    pub.publish('pub', 'events', 'x'.repeat(20 * 1024));
    await waitFor(() => payloads(sub).length === 1, 5000, 'large message');
    const nextAt = performance.now();
    pub.publish('pub', 'events', 'right after');
    await waitFor(() => payloads(sub).length === 2, 5000, 'next message');
    const ms = performance.now() - nextAt;
    assert.ok(ms < 1000, `the message after a 20 KiB flush took ${ms.toFixed(0)} ms (window 1500 ms)`);
  });

  it('writes what lingers, in-process and external, before the broker closes the subscriber', async () => {
    const { pub, sub } = await setUp(5000);
    pub.publish('pub', 'events', 'opens the window');
    await waitFor(() => payloads(sub).length === 1, 5000, 'first message');
    pub.publish('pub', 'events', 'external, lingering');
    await waitFor(() => t!.broker.queuedBytes > 0, 5000, 'external frame queued');
    t!.broker.publish('core', 'events', 'in-process, lingering');
    await sleep(20);
    assert.equal(payloads(sub).length, 1, 'still lingering');
    const closing = t!.broker.close();
    await sub.waitClosed(4000);
    await closing;
    assert.deepEqual(payloads(sub), ['opens the window', 'external, lingering', 'in-process, lingering']);
  });

  it('with flushLingerMs 0 writes every turn, and rejects values out of range', async () => {
    const { pub, sub } = await setUp(0);
    pub.publish('pub', 'events', 'a');
    await waitFor(() => payloads(sub).length === 1, 5000, 'a');
    pub.publish('pub', 'events', 'b');
    await waitFor(() => payloads(sub).length === 2, 1000, 'b without waiting');
    await assert.rejects(startBroker({ keys: KEYS, flushLingerMs: -1 }), /flushLingerMs/);
    await assert.rejects(startBroker({ keys: KEYS, flushLingerMs: 10_001 }), /flushLingerMs/);
  });
});
