// What an unauthenticated or hostile peer can cost the broker: pre-auth bytes, connection caps,
// and metric label cardinality (issue 10, hpfeeds rows; AUTH guessing is in broker-auth.test.ts).
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { OP_PUBLISH, encodePublish, encodeSubscribe } from '../../src/hpfeeds/codec.js';
import { RawPeer, closedOf, connectFrom, key, startBroker, waitFor, waitForMetric, waitSubscriptions, withTimeout } from './harness.js';

const KEYS = [key('alice', 'alice-secret', ['events'], ['events']), key('bob', 'bob-secret', [], ['events'])];

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
      await Promise.all(refused.map((s) => withTimeout(closedOf(s), 3000, 'refused socket closed')));
      await waitForMetric(t, /hpfeeds_broker_connections_refused_total\{reason="per-address"\} 10/);
      const lines = t.logger.entries.filter((e) => e.msg.includes('connection cap reached'));
      assert.equal(lines.length, 1, 'one log line for the address, not one per connection');
      assert.equal(lines[0].obj.address, '127.0.0.2');
      // Another address gets in, up to the global cap.
      for (let i = 0; i < 2; i++) sockets.push(await connectFrom(t.port, '127.0.0.3'));
      await waitForMetric(t, /^hpfeeds_broker_open_sockets 5$/m);
      const over = await connectFrom(t.port, '127.0.0.4');
      await withTimeout(closedOf(over), 3000, 'global cap');
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

