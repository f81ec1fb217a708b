// What an unauthenticated or hostile peer can cost the broker: pre-auth bytes, connection caps,
// AUTH guessing, and metric label cardinality (issue 10, hpfeeds rows).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { OP_PUBLISH, encodeAuthFromSecret, encodePublish, encodeSubscribe } from '../../src/hpfeeds/codec.js';
import { RawPeer, key, startBroker, waitFor, waitForMetric, waitSubscriptions, withTimeout } from './harness.js';

const KEYS = [key('alice', 'alice-secret', ['events'], ['events']), key('bob', 'bob-secret', [], ['events'])];

/** A RawPeer whose socket leaves from `localAddress` (any 127.0.0.0/8 address works on Linux). */
const closedOf = new WeakMap<Socket, Promise<unknown>>();
async function connectFrom(port: number, localAddress: string): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => {});
  closedOf.set(socket, once(socket, 'close'));
  await once(socket, 'connect');
  return socket;
}
const closed = (s: Socket) => closedOf.get(s)!;

async function loginFrom(port: number, localAddress: string, ident: string, secret: string): Promise<{ socket: Socket; error: Promise<string | undefined> }> {
  const socket = await connectFrom(port, localAddress);
  let buf = Buffer.alloc(0);
  let authSent = false;
  const error = new Promise<string | undefined>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && buf.length >= buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const op = buf[4];
        if (op === 1 && !authSent) {
          authSent = true;
          const nonce = buf.subarray(6 + buf[5], len);
          socket.write(encodeAuthFromSecret(nonce, ident, secret));
        } else if (op === 0) {
          resolve(buf.toString('utf8', 5, len));
        }
        buf = buf.subarray(len);
      }
    });
    socket.once('close', () => resolve(undefined));
  });
  return { socket, error };
}

describe('hpfeeds broker: pre-auth budget', () => {
  it('refuses a 1 MiB PUBLISH before AUTH at its header, without buffering its body', async () => {
    const t = await startBroker({ keys: KEYS });
    try {
      const p = await RawPeer.connect(t.port);
      const header = Buffer.alloc(5 + 2 + 5 + 6);
      header.writeUInt32BE(5 + 1024 * 1024, 0); // the largest frame the broker takes
      header[4] = OP_PUBLISH;
      header[5] = 5;
      header.write('alice', 6);
      header[11] = 6;
      header.write('events', 12);
      // Only the header and a little body: the old broker waited for the whole MiB (until the auth timeout).
      p.write(Buffer.concat([header, Buffer.alloc(1000)]));
      assert.equal(await withTimeout(p.expectErrorAndClose(2000), 3000, 'pre-auth PUBLISH refused'), 'First message was not AUTH');
      assert.match(await t.metrics(), /hpfeeds_broker_connection_error\{ident="",category="invalid-first-message"\} 1/);
    } finally {
      await t.broker.close();
    }
  });

  it('still takes AUTH + SUBSCRIBE + a large PUBLISH in one write', async () => {
    const t = await startBroker({ keys: KEYS });
    try {
      const sub = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
      await waitSubscriptions(t, 'bob', 'events', 1);
      const pub = await RawPeer.connect(t.port);
      const big = Buffer.alloc(200 * 1024, 0x41);
      pub.write(Buffer.concat([pub.auth('alice', 'alice-secret'), encodePublish('alice', 'events', big)]));
      await waitFor(() => sub.frames.some((f) => f.op === OP_PUBLISH && f.payload.length === big.length), 5000, 'big publish delivered');
      assert.ok(!pub.isClosed);
      sub.destroy();
      pub.destroy();
    } finally {
      await t.broker.close();
    }
  });
});

describe('hpfeeds broker: connection caps', () => {
  it('caps connections per address and globally, with metrics and one log line per address', async () => {
    const t = await startBroker({ keys: KEYS, maxConnectionsPerAddress: 3, maxConnections: 5 });
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) sockets.push(await connectFrom(t.port, '127.0.0.2'));
      await waitForMetric(t, /^hpfeeds_broker_open_sockets 3$/m);
      // Ten more from the same address: each is closed at once; the first three still work.
      const refused: Socket[] = [];
      for (let i = 0; i < 10; i++) refused.push(await connectFrom(t.port, '127.0.0.2'));
      await Promise.all(refused.map((s) => withTimeout(closed(s), 3000, 'refused socket closed')));
      await waitForMetric(t, /hpfeeds_broker_connections_refused_total\{reason="per-address"\} 10/);
      const lines = t.logger.entries.filter((e) => e.msg.includes('connection cap reached'));
      assert.equal(lines.length, 1, 'one log line for the address, not one per connection');
      assert.equal(lines[0].obj.address, '127.0.0.2');
      // Another address gets in, up to the global cap.
      for (let i = 0; i < 2; i++) sockets.push(await connectFrom(t.port, '127.0.0.3'));
      await waitForMetric(t, /^hpfeeds_broker_open_sockets 5$/m);
      const over = await connectFrom(t.port, '127.0.0.4');
      await withTimeout(closed(over), 3000, 'global cap');
      await waitForMetric(t, /hpfeeds_broker_connections_refused_total\{reason="global"\} 1/);
      // Slots come back when connections close.
      sockets.splice(0).forEach((s) => s.destroy());
      await waitForMetric(t, /^hpfeeds_broker_open_sockets 0$/m);
      const ok = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
      await waitSubscriptions(t, 'bob', 'events', 1);
      ok.destroy();
    } finally {
      sockets.forEach((s) => s.destroy());
      await t.broker.close();
    }
  });
});

describe('hpfeeds broker: AUTH failure limits', () => {
  it('rate limits failed AUTHs per address and per ident, without locking out the ident\'s last good address', async () => {
    const t = await startBroker({ keys: KEYS, authFailuresPerAddress: 5, authFailuresPerIdent: 8, authFailureWindowMs: 60_000 });
    try {
      // alice last logged in from 127.0.0.1.
      const good = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]);
      await waitSubscriptions(t, 'alice', 'events', 1);
      good.destroy();
      // An attacker at 127.0.0.5 guesses: 5 failures, then even the right secret is refused unchecked.
      for (let i = 0; i < 5; i++) {
        const a = await loginFrom(t.port, '127.0.0.5', 'alice', `guess-${i}`);
        assert.equal(await withTimeout(a.error, 3000, 'guess answered'), 'Authentication failed for alice');
      }
      const blocked = await loginFrom(t.port, '127.0.0.5', 'alice', 'alice-secret');
      assert.equal(await withTimeout(blocked.error, 3000, 'blocked answered'), 'Authentication failed for alice');
      // A second attacker address uses up alice's per-ident budget (8 failures in all).
      for (let i = 0; i < 3; i++) {
        const a = await loginFrom(t.port, '127.0.0.6', 'alice', `guess-${i}`);
        assert.equal(await withTimeout(a.error, 3000, 'guess answered'), 'Authentication failed for alice');
      }
      const third = await loginFrom(t.port, '127.0.0.7', 'alice', 'alice-secret');
      assert.equal(await withTimeout(third.error, 3000, 'third address answered'), 'Authentication failed for alice', 'ident locked for new addresses');
      // The real client at its last good address still gets in.
      const again = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]);
      await waitSubscriptions(t, 'alice', 'events', 1);
      assert.ok(!again.isClosed);
      again.destroy();
      const text = await t.metrics();
      assert.match(text, /hpfeeds_broker_auth_rate_limited_total\{scope="address"\} 1/);
      assert.match(text, /hpfeeds_broker_auth_rate_limited_total\{scope="ident"\} 1/);
      assert.match(text, /hpfeeds_broker_connection_error\{ident="",category="auth-rate-limited"\} 2/);
      const lines = t.logger.entries.filter((e) => e.msg.includes('too many failed attempts'));
      assert.equal(lines.length, 2);
    } finally {
      await t.broker.close();
    }
  });
});

describe('hpfeeds broker: metric label cardinality', () => {
  it('folds channels and idents beyond the configured set into "other"; /metrics stays small', async () => {
    const t = await startBroker({
      keys: KEYS,
      metricLabels: { channels: { known: ['events'], max: 5 }, idents: { known: ['core'], max: 5 } },
    });
    try {
      const sub = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
      await waitSubscriptions(t, 'bob', 'events', 1);
      const before = (await t.metrics()).length;
      // 50k made-up channels and idents, as an in-process publisher would pass peer-chosen pot types and node names.
      for (let i = 0; i < 50_000; i++) t.broker.publish(`node-${i}`, `pot.${i}`, 'x');
      t.broker.publish('core', 'events', 'real');
      await waitFor(() => sub.frames.some((f) => f.op === OP_PUBLISH && f.payload.toString() === 'real'));
      const text = await t.metrics();
      assert.ok(text.length < before + 20_000, `/metrics grew from ${before} to ${text.length} bytes`);
      assert.match(text, /hpfeeds_broker_receive_publish_count\{ident="other",chan="other"\} 49995/);
      assert.match(text, /hpfeeds_broker_receive_publish_count\{ident="core",chan="events"\} 1/);
      assert.match(text, /hpfeeds_broker_metric_labels_folded\{label="chan"\} 49995/);
      sub.destroy();
    } finally {
      await t.broker.close();
    }
  });

  it('measures idents and channels in UTF-8 bytes, as the wire does', async () => {
    const t = await startBroker({ keys: KEYS });
    try {
      // 100 characters, 300 bytes: too long for the 1-byte length prefix.
      assert.throws(() => t.broker.publish('core', '€'.repeat(100), 'x'), /300 bytes; hpfeeds allows at most 255/);
      assert.throws(() => t.broker.publish('ü'.repeat(128), 'events', 'x'), /256 bytes/);
      t.broker.publish('core', '€'.repeat(85), 'x'); // 255 bytes: fine
    } finally {
      await t.broker.close();
    }
  });
});

