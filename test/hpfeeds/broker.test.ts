import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Broker } from '../../src/hpfeeds/broker.js';
import { parseEndpoint } from '../../src/hpfeeds/endpoint.js';
import { MemoryAuthStore } from '../../src/hpfeeds/auth-stores.js';
import {
  OP_ERROR,
  OP_PUBLISH,
  encodeError,
  encodeInfo,
  encodePublish,
  encodeSubscribe,
  encodeUnsubscribe,
} from '../../src/hpfeeds/codec.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';
import { ALICE_BOB_KEYS, RawPeer, publishes, sleep, startBroker, waitFor, waitForMetric, waitSubscriptions, type TestBroker } from './harness.js';

const KEYS = ALICE_BOB_KEYS;

function header(length: number, op: number): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(length, 0);
  b[4] = op;
  return b;
}



describe('hpfeeds broker: publish/subscribe', () => {
  // A broker per test, so subscription gauges start from zero.
  let t: TestBroker;
  let peers: RawPeer[] = [];
  const login = async (ident: string, secret: string, then: Buffer[] = []) => {
    const p = await RawPeer.login(t.port, ident, secret, then);
    peers.push(p);
    return p;
  };
  beforeEach(async () => {
    t = await startBroker({ keys: KEYS });
  });
  afterEach(async () => {
    peers.forEach((p) => p.destroy());
    peers = [];
    await t.broker.close();
  });

  it('delivers to subscribers, echoes to a subscribed publisher, and unsubscribes silently', async () => {
    const bob = await login('bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    const alice = await login('alice', 'alice-secret', [encodeSubscribe('alice', 'events'), encodePublish('alice', 'events', 'hello')]);
    await waitFor(() => publishes(alice).length === 1, 3000, 'echo');
    await waitFor(() => publishes(bob).length === 1, 3000, 'delivery');
    const got = publishes(bob)[0];
    assert.deepEqual([got.ident, got.channel, got.payload.toString()], ['alice', 'events', 'hello']);

    bob.write(encodeUnsubscribe('bob', 'events'));
    await waitSubscriptions(t, 'bob', 'events', 0);
    alice.publish('alice', 'events', Buffer.from([0, 1, 2, 255]));
    await waitFor(() => publishes(alice).length === 2, 3000, 'second echo');
    await sleep(50);
    assert.equal(publishes(bob).length, 1, 'no delivery after unsubscribe');
    assert.ok(!bob.frames.some((f) => f.op === OP_ERROR), 'unsubscribe sends nothing back');
    assert.ok(!bob.isClosed);
    assert.deepEqual(publishes(alice)[1].payload, Buffer.from([0, 1, 2, 255]));
  });

  it('keeps the publish order across channels within one turn, and shares nothing wrongly between subscribers', async () => {
    const both = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events'), encodeSubscribe('alice', 'alerts')]);
    const one = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    try {
      await waitSubscriptions(t, 'alice', 'alerts', 1);
      await waitSubscriptions(t, 'bob', 'events', 1);
      // One turn: interleaved channels, and enough bytes to span several 64 KiB pieces.
      const big = Buffer.alloc(150 * 1024, 0x7a);
      t.broker.publish('core', 'events', 'e1');
      t.broker.publish('core', 'alerts', 'a1');
      t.broker.publish('core', 'events', big);
      t.broker.publish('core', 'alerts', 'a2');
      t.broker.publish('core', 'events', 'e2');
      await waitFor(() => publishes(both).length === 5 && publishes(one).length === 3);
      assert.deepEqual(publishes(both).map((f) => `${f.channel}:${f.payload.length > 100 ? 'big' : f.payload.toString()}`), ['events:e1', 'alerts:a1', 'events:big', 'alerts:a2', 'events:e2']);
      assert.deepEqual(publishes(one).map((f) => (f.payload.length > 100 ? 'big' : f.payload.toString())), ['e1', 'big', 'e2']);
      assert.ok(publishes(one)[1].payload.equals(big) && publishes(both)[2].payload.equals(big));
    } finally {
      both.destroy();
      one.destroy();
    }
  });

  it('does not deliver twice for a repeated SUBSCRIBE', async () => {
    const sub = await login('bob', 'bob-secret', [encodeSubscribe('bob', 'events'), encodeSubscribe('bob', 'events')]);
    const pub = await login('alice', 'alice-secret');
    await waitSubscriptions(t, 'bob', 'events', 1);
    pub.publish('alice', 'events', 'once');
    await waitFor(() => publishes(sub).length >= 1);
    await sleep(50);
    assert.equal(publishes(sub).length, 1);
  });


  it('delivers in-process publishes (no ACL check) and counts them', async () => {
    const sub = await login('bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    await waitSubscriptions(t, 'bob', 'events', 1);
    t.broker.publish('apiary-core', 'events', '{"k":1}');
    t.broker.publish('apiary-core', 'events', new Uint8Array([1, 2, 3]));
    await waitFor(() => publishes(sub).length === 2);
    assert.deepEqual(
      publishes(sub).map((f) => [f.ident, f.channel, f.payload.toString('hex')]),
      [
        ['apiary-core', 'events', Buffer.from('{"k":1}').toString('hex')],
        ['apiary-core', 'events', '010203'],
      ],
    );
    assert.match(await t.metrics(), /hpfeeds_broker_receive_publish_count\{ident="apiary-core",chan="events"\} 2/);
  });

  it('handles AUTH + PUBLISH then a half-close: publishes are processed, then the broker hangs up', async () => {
    const sub = await login('bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    await waitSubscriptions(t, 'bob', 'events', 1);
    const pub = await RawPeer.connect(t.port);
    peers.push(pub);
    pub.write(Buffer.concat([pub.auth('alice', 'alice-secret'), encodePublish('alice', 'events', 'last words')]));
    pub.socket.end();
    await pub.waitClosed();
    await waitFor(() => publishes(sub).some((f) => f.payload.toString() === 'last words'));
  });
});

describe('hpfeeds broker: malformed input', () => {
  let t: TestBroker;
  const peers: RawPeer[] = [];
  before(async () => {
    t = await startBroker({ keys: KEYS, maxFrameLength: 4096 });
  });
  after(async () => {
    peers.forEach((p) => p.destroy());
    await t.broker.close();
  });

  const cases: Array<[string, (p: RawPeer) => Buffer, RegExp, string]> = [
    ['length < 5 (the reference spins)', () => header(3, OP_PUBLISH), /shorter than the 5-byte header/, 'frame-too-short'],
    ['length over the configured max', () => header(4097, OP_PUBLISH), /exceeds the limit of 4096/, 'frame-too-long'],
    ['unknown opcode', () => Buffer.concat([header(6, 9), Buffer.from([0])]), /unknown opcode 9/, 'unknown-opcode'],
    [
      'truncated string',
      (p) => Buffer.concat([p.auth('alice', 'alice-secret'), header(8, OP_PUBLISH), Buffer.from([200, 1, 2])]),
      /claims 200 bytes/,
      'truncated-string',
    ],
    [
      'bad UTF-8 in the channel',
      (p) => Buffer.concat([p.auth('alice', 'alice-secret'), header(5 + 6 + 2, 4), Buffer.from('\x05alice'), Buffer.from([0xff, 0xfe])]),
      /channel is not valid UTF-8/,
      'bad-utf8',
    ],
    ['client-sent INFO', (p) => Buffer.concat([p.auth('alice', 'alice-secret'), encodeInfo('x', Buffer.alloc(4))]), /Unexpected opcode 1/, 'unexpected-opcode'],
    ['client-sent ERROR', (p) => Buffer.concat([p.auth('alice', 'alice-secret'), encodeError('hi')]), /Unexpected opcode 0/, 'unexpected-opcode'],
    ['a second AUTH', (p) => Buffer.concat([p.auth('alice', 'alice-secret'), p.auth('alice', 'alice-secret')]), /Unexpected opcode 2/, 'unexpected-opcode'],
  ];
  for (const [name, bytes, text, category] of cases) {
    it(`closes cleanly on ${name}`, async () => {
      const p = await RawPeer.connect(t.port);
      peers.push(p);
      p.write(bytes(p));
      assert.match(await p.expectErrorAndClose(), text);
      assert.match(await t.metrics(), new RegExp(`hpfeeds_broker_connection_error\\{ident="[a-z]*",category="${category}"\\} [1-9]`));
    });
  }

  it('keeps serving others while a peer misbehaves', async () => {
    const sub = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    peers.push(sub);
    const bad = await RawPeer.connect(t.port);
    peers.push(bad);
    bad.write(header(0, 0));
    await bad.waitClosed();
    t.broker.publish('core', 'events', 'still here');
    await waitFor(() => publishes(sub).length === 1);
  });
});

describe('hpfeeds broker: listeners', () => {
  let cert: TestCertificate;
  before(() => {
    cert = makeTestCertificate();
  });
  after(() => cert.cleanup());

  it('parses endpoint strings', () => {
    assert.deepEqual(parseEndpoint('tcp:port=10000'), { kind: 'tcp', port: 10000 });
    assert.deepEqual(parseEndpoint('tcp:10000:interface=127.0.0.1'), { kind: 'tcp', port: 10000, host: '127.0.0.1' });
    assert.deepEqual(parseEndpoint('tcp:port=1:interface=\\:\\:1'), { kind: 'tcp', port: 1, host: '::1' });
    assert.deepEqual(parseEndpoint('tls:port=10001:cert=/a/b.crt:key=/a/b.key'), {
      kind: 'tls',
      port: 10001,
      certPath: '/a/b.crt',
      keyPath: '/a/b.key',
    });
    assert.deepEqual(parseEndpoint('tls:port=10001:cert=/a/both.pem'), { kind: 'tls', port: 10001, certPath: '/a/both.pem', keyPath: '/a/both.pem' });
    for (const bad of ['udp:port=1', 'tcp:port=70000', 'tcp:interface=1.2.3.4', 'tls:port=1', 'tcp:port=1:cert=x', 'tcp:port=1:bogus=2', 'tcp:port=']) {
      assert.throws(() => parseEndpoint(bad), Error, bad);
    }
  });

  it('serves TLS and plain TCP side by side, bound to the given interface', async () => {
    const broker = new Broker({ authStore: new MemoryAuthStore(KEYS) });
    try {
      const plain = await broker.listen('tcp:port=0:interface=127.0.0.1');
      const secure = await broker.listen(`tls:port=0:interface=127.0.0.1:cert=${cert.certPath}:key=${cert.keyPath}`);
      assert.deepEqual([plain.host, plain.tls, secure.host, secure.tls], ['127.0.0.1', false, '127.0.0.1', true]);
      assert.equal(broker.addresses.length, 2);
      const sub = await RawPeer.login(plain.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
      const pub = await RawPeer.connect(secure.port, { ca: cert.ca });
      assert.equal(pub.info.nonce.length, 4);
      pub.write(Buffer.concat([pub.auth('alice', 'alice-secret'), encodePublish('alice', 'events', 'over tls')]));
      await waitFor(() => publishes(sub).length === 1);
      assert.equal(publishes(sub)[0].payload.toString(), 'over tls');
      sub.destroy();
      pub.destroy();
    } finally {
      await broker.close();
    }
  });

  it('reports a busy port as a listen error', async () => {
    const a = new Broker({ authStore: new MemoryAuthStore() });
    const b = new Broker({ authStore: new MemoryAuthStore() });
    try {
      const { port } = await a.listen('tcp:port=0:interface=127.0.0.1');
      await assert.rejects(b.listen(`tcp:port=${port}:interface=127.0.0.1`), /EADDRINUSE/);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('close() flushes what is queued, closes clients and resolves', async () => {
    const t = await startBroker({ keys: KEYS });
    const sub = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    await waitSubscriptions(t, 'bob', 'events', 1);
    for (let i = 0; i < 2000; i++) t.broker.publish('core', 'events', `message ${i}`);
    await t.broker.close();
    await sub.waitClosed();
    assert.equal(publishes(sub).length, 2000);
    assert.equal(publishes(sub)[1999].payload.toString(), 'message 1999');
    await assert.rejects(t.broker.listen('tcp:port=0'), /closed/);
  });
});

describe('hpfeeds broker: slow subscribers', () => {
  it('pauses the publisher for a stuck subscriber, cuts it off at the deadline with its data then the ERROR, and the others lose nothing', async () => {
    const deadlineMs = 800;
    const t = await startBroker({ keys: KEYS, highWaterBytes: 64 * 1024, maxSendBufferBytes: 1024 * 1024, backpressureDeadlineMs: deadlineMs, closeTimeoutMs: 5000 });
    const slow = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    const fast = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]);
    const publisher = await RawPeer.login(t.port, 'alice', 'alice-secret');
    try {
      await waitSubscriptions(t, 'bob', 'events', 1);
      await waitSubscriptions(t, 'alice', 'events', 1);
      slow.socket.pause();
      const pausedAt = Date.now();
      // Far more than the kernel buffers of a paused loopback peer absorb.
      const count = 3000;
      const body = Buffer.alloc(8 * 1024, 0x61);
      for (let i = 0; i < count; i++) {
        body.writeUInt32BE(i, 0);
        publisher.publish('alice', 'events', body);
      }
      await waitForMetric(t, /hpfeeds_broker_connection_error\{ident="bob",category="deadline-timer-expired"\} 1/, 10_000);
      const cutAfter = Date.now() - pausedAt;
      assert.ok(cutAfter >= deadlineMs && cutAfter < deadlineMs + 5000, `cut off ${cutAfter} ms after it stopped reading (deadline ${deadlineMs})`);
      // The stuck peer reads again: it gets what was queued for it, whole frames in order, then the ERROR.
      slow.socket.resume();
      await slow.waitClosed(10_000);
      const got = publishes(slow).map((f) => f.payload.readUInt32BE(0));
      assert.ok(got.length > 0, 'the data queued before the cut-off is delivered');
      assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i), 'a gapless prefix, in order');
      const last = slow.frames.at(-1)!;
      assert.equal(last.op, OP_ERROR);
      assert.equal((last as { message: string }).message, 'Backpressure deadline timer expired');
      assert.equal(slow.bufferedBytes, 0, 'no partial frame before EOF');
      // Everyone else loses nothing: the publisher was slowed, never dropped.
      await waitFor(() => publishes(fast).length >= count, 20_000, 'fast subscriber receives everything');
      assert.deepEqual(publishes(fast).map((f) => f.payload.readUInt32BE(0)), Array.from({ length: count }, (_, i) => i));
      assert.ok(!publisher.isClosed && !fast.isClosed, 'publisher and fast subscriber unaffected');
      const text = await t.metrics();
      assert.match(text, /hpfeeds_broker_backpressure_disconnects_total 1/);
      assert.match(text, /^hpfeeds_broker_publisher_paused_total [1-9]/m);
      assert.doesNotMatch(text, /hpfeeds_broker_publish_dropped_total\{ident="alice"\} [1-9]/);
      assert.match(t.logger.text(), /not keeping up/);
      assert.match(t.logger.text(), /Backpressure deadline timer expired/);
    } finally {
      [slow, fast, publisher].forEach((p) => p.destroy());
      await t.broker.close();
    }
  });

  it('loses nothing for 10 subscribers over a 5-second burst at 3x their read rate (the publisher is slowed)', async () => {
    // A per-subscriber cap far below the burst: the previous broker dropped most of it.
    const t = await startBroker({ keys: KEYS, maxSendBufferBytes: 1024 * 1024 });
    const readRate = 1024 * 1024; // bytes/s per subscriber
    const payloadBytes = 4000;
    const burstRate = Math.round((3 * readRate) / payloadBytes); // messages/s
    const count = burstRate * 5;
    const subs: RawPeer[] = [];
    const stops: Array<() => void> = [];
    let publisher: RawPeer | undefined;
    try {
      for (let i = 0; i < 10; i++) subs.push(await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]));
      await waitSubscriptions(t, 'bob', 'events', 10);
      publisher = await RawPeer.login(t.port, 'alice', 'alice-secret');
      for (const s of subs) stops.push(s.throttle(readRate));
      const body = Buffer.alloc(payloadBytes, 0x62);
      const started = performance.now();
      let sent = 0;
      while (sent < count) {
        const due = Math.min(count, Math.ceil(((performance.now() - started) / 1000) * burstRate));
        for (; sent < due; sent++) {
          body.writeUInt32BE(sent, 0);
          publisher.publish('alice', 'events', body);
        }
        await sleep(10);
      }
      // Everything arrives, at the subscribers' pace (~15 s for 15 s of reading).
      await waitFor(() => subs.every((s) => publishes(s).length >= count), 60_000, 'every subscriber has the whole burst');
      const expected = Array.from({ length: count }, (_, i) => i);
      for (const s of subs) {
        assert.deepEqual(publishes(s).map((f) => f.payload.readUInt32BE(0)), expected);
        assert.ok(!s.isClosed);
      }
      const text = await t.metrics();
      assert.doesNotMatch(text, /hpfeeds_broker_publish_dropped_total\{ident="bob"\} [1-9]/);
      assert.match(text, /^hpfeeds_broker_backpressure_disconnects_total 0$/m);
      assert.match(text, /^hpfeeds_broker_publisher_paused_total [1-9]/m, 'the publisher was slowed down');
    } finally {
      stops.forEach((stop) => stop());
      [...subs, publisher].forEach((p) => p?.destroy());
      await t.broker.close();
    }
  });

  it('lets a subscriber that catches up before the deadline stay connected', async () => {
    const t = await startBroker({ keys: KEYS, maxSendBufferBytes: 128 * 1024, backpressureDeadlineMs: 3000 });
    const sub = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    try {
      await waitSubscriptions(t, 'bob', 'events', 1);
      sub.socket.pause();
      const payload = Buffer.alloc(32 * 1024, 0x62);
      for (let round = 0; round < 500 && !/dropped_total\{ident="bob"\} [1-9]/.test(await t.metrics()); round++) {
        for (let i = 0; i < 64; i++) t.broker.publish('core', 'events', payload);
        await sleep(1);
      }
      assert.match(await t.metrics(), /dropped_total\{ident="bob"\} [1-9]/);
      sub.socket.resume();
      await waitFor(() => /deadline_recover\{ident="bob"\} 1/.test(t.logger.text()) || t.logger.text().includes('caught up'), 5000, 'recovery');
      t.broker.publish('core', 'events', 'fresh');
      await waitFor(() => publishes(sub).at(-1)?.payload.toString() === 'fresh');
      assert.ok(!sub.isClosed);
      assert.match(await t.metrics(), /hpfeeds_broker_connection_send_buffer_deadline_recover\{ident="bob"\} 1/);
      assert.match(await t.metrics(), /hpfeeds_broker_backpressure_disconnects_total 0/);
    } finally {
      sub.destroy();
      await t.broker.close();
    }
  });
});


describe('hpfeeds broker: metrics', () => {
  it('exposes the reference metric names and ours after traffic', async () => {
    const t = await startBroker({ keys: KEYS });
    try {
      const sub = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
      const pub = await RawPeer.login(t.port, 'alice', 'alice-secret');
      await waitSubscriptions(t, 'bob', 'events', 1);
      await waitForMetric(t, /^hpfeeds_broker_connection_ready\{ident="alice"\} 1$/m);
      pub.publish('alice', 'events', Buffer.alloc(1500));
      pub.publish('alice', 'events', Buffer.alloc(10));
      await waitFor(() => publishes(sub).length === 2);
      const text = await t.metrics();
      for (const line of [
        /^hpfeeds_broker_client_connections 2$/m,
        /^hpfeeds_broker_connection_made 2$/m,
        /^hpfeeds_broker_connection_ready\{ident="alice"\} 1$/m,
        /^hpfeeds_broker_subscriptions\{ident="bob",chan="events"\} 1$/m,
        /^hpfeeds_broker_receive_publish_count\{ident="alice",chan="events"\} 2$/m,
        /^hpfeeds_broker_receive_publish_size_bucket\{ident="alice",chan="events",le="1024"\} 1$/m,
        /^hpfeeds_broker_receive_publish_size_bucket\{ident="alice",chan="events",le="2048"\} 2$/m,
        /^hpfeeds_broker_receive_publish_size_bucket\{ident="alice",chan="events",le="\+Inf"\} 2$/m,
        /^hpfeeds_broker_receive_publish_size_sum\{ident="alice",chan="events"\} 1510$/m,
        /^hpfeeds_broker_receive_publish_size_count\{ident="alice",chan="events"\} 2$/m,
        /^hpfeeds_broker_deliveries_total 2$/m,
        /^# TYPE hpfeeds_broker_connection_send_buffer_size gauge$/m,
        /^hpfeeds_broker_connection_send_buffer_size\{ident="bob"\} \d+$/m,
        /^hpfeeds_broker_connection_receive_buffer_size\{ident="alice"\} 0$/m,
        /^hpfeeds_broker_connection_send_buffer_fill\{ident="bob"\} [1-9]\d*$/m,
        /^hpfeeds_broker_connection_receive_buffer_fill\{ident="alice"\} [1-9]\d*$/m,
        /^# TYPE hpfeeds_broker_publish_dropped_total counter$/m,
        /^hpfeeds_broker_backpressure_disconnects_total 0$/m,
        /^# TYPE hpfeeds_broker_connection_error counter$/m,
        /^# TYPE hpfeeds_broker_receive_publish_size histogram$/m,
      ]) {
        assert.match(text, line);
      }
      // Counters only grow: a second scrape does not double count.
      assert.match(await t.metrics(), /^hpfeeds_broker_receive_publish_count\{ident="alice",chan="events"\} 2$/m);
      assert.match(await t.metrics(), /^hpfeeds_broker_deliveries_total 2$/m);
      sub.destroy();
      pub.destroy();
      let after = '';
      for (let i = 0; i < 200 && !/^hpfeeds_broker_client_connections 0$/m.test(after); i++) {
        await sleep(10);
        after = await t.metrics();
      }
      assert.match(after, /^hpfeeds_broker_client_connections 0$/m);
      assert.match(after, /^hpfeeds_broker_connection_lost\{ident="bob"\} 1$/m);
      assert.match(after, /^hpfeeds_broker_subscriptions\{ident="bob",chan="events"\} 0$/m);
    } finally {
      await t.broker.close();
    }
  });
});

describe('hpfeeds broker: socket fuzz', () => {
  /** mulberry32, seeded so a failure replays. */
  function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('survives random and mutated input from many peers, closing each, while serving a legitimate pair', async () => {
    const t = await startBroker({ keys: KEYS, authTimeoutMs: 400, maxFrameLength: 2048 });
    const rand = prng(0xf00d);
    const sub = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
    const peers: RawPeer[] = [];
    try {
      const valid = (p: RawPeer) => [
        p.auth('alice', 'alice-secret'),
        encodeSubscribe('alice', 'events'),
        encodePublish('alice', 'events', Buffer.alloc(Math.floor(rand() * 300), 7)),
        encodeUnsubscribe('alice', 'alerts'),
      ];
      for (let batch = 0; batch < 6; batch++) {
        const round = await Promise.all(Array.from({ length: 25 }, () => RawPeer.connect(t.port)));
        peers.push(...round);
        for (const p of round) {
          let bytes: Buffer;
          if (rand() < 0.4) {
            bytes = Buffer.from(Array.from({ length: Math.floor(rand() * 400) }, () => Math.floor(rand() * 256)));
          } else {
            // A valid authenticated session with a few corrupted bytes and possibly cut short.
            bytes = Buffer.from(Buffer.concat(valid(p)));
            for (let m = Math.floor(rand() * 3); m > 0; m--) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
            if (rand() < 0.3) bytes = bytes.subarray(0, Math.floor(rand() * bytes.length));
          }
          // Random chunking, some chunks sent in separate turns.
          for (let o = 0; o < bytes.length; ) {
            const n = 1 + Math.floor(rand() * 64);
            p.write(bytes.subarray(o, o + n));
            o += n;
            if (rand() < 0.1) await sleep(1);
          }
          if (rand() < 0.5) p.socket.end();
        }
        t.broker.publish('core', 'events', `alive ${batch}`);
      }
      // Every peer is closed by the broker: by an error, by its own half-close, or by the auth timeout.
      // Peers that authenticated cleanly and did not half-close stay; close them from our side.
      await sleep(1000);
      for (const p of peers) if (!p.isClosed) p.socket.end();
      await Promise.all(peers.map((p) => p.waitClosed(5000)));
      await waitFor(() => publishes(sub).length >= 6);
      assert.deepEqual(
        publishes(sub)
          .filter((f) => f.ident === 'core')
          .map((f) => f.payload.toString()),
        Array.from({ length: 6 }, (_, i) => `alive ${i}`),
      );
      assert.ok(!sub.isClosed);
      const text = await t.metrics();
      assert.match(text, /^hpfeeds_broker_client_connections 1$/m, 'only the legitimate subscriber remains');
      const categories = [...text.matchAll(/^hpfeeds_broker_connection_error\{ident="[^"]*",category="([^"]+)"\} (\d+)$/gm)];
      assert.ok(new Set(categories.map((m) => m[1])).size >= 4, 'several kinds of bad input were seen');
      assert.ok(categories.reduce((sum, m) => sum + Number(m[2]), 0) >= 50);
    } finally {
      sub.destroy();
      peers.forEach((p) => p.destroy());
      await t.broker.close();
    }
  });
});
