// hpfeeds authkeys changed through the API of the composed core take effect on live connections
// at once: PATCH narrows what a connected client may subscribe to and publish on, rotate closes
// connections that authenticated with the old secret.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { startTestCore, until, type TestCore } from '../helpers/core.js';

describe('authkey PATCH and rotate re-check live hpfeeds connections', () => {
  let t: TestCore;
  const clients: HpfeedsClient[] = [];
  const client = (ident: string, secret: string) => {
    const c = new HpfeedsClient({ host: '127.0.0.1', port: t.core.addresses.hpfeeds[0]!.port, ident, secret, reconnect: false, connectTimeoutMs: 5000 });
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const admin = (method: string, path: string, body?: unknown) => t.api(method, `/api/v1/hpfeeds/authkeys${path}`, { token: t.adminToken, body });

  before(async () => {
    t = await startTestCore();
  });
  after(async () => {
    for (const c of clients) await c.close(1000).catch(() => {});
    await t?.close();
  });

  /** Publishes probes on `channel` until `sub` has received one: its subscription is live. */
  async function probeUntilReceived(pub: HpfeedsClient, sub: { got: { channel: string; payload: string }[] }, channel: string): Promise<void> {
    const tag = `probe-${channel}-${Math.random()}`;
    await until(() => {
      if (sub.got.some((m) => m.payload === tag)) return true;
      pub.publish(channel, tag);
      return false;
    }, `a probe on ${channel}`);
  }

  it('PATCH subchans drops a live subscription; PATCH pubchans makes the next publish fail', async () => {
    const created = await admin('POST', '', { ident: 'reader', owner: 'team', pubchans: ['chan.a'], subchans: ['chan.a', 'chan.b'] });
    assert.equal(created.status, 201);
    const feeder = await admin('POST', '', { ident: 'feeder', pubchans: ['chan.a', 'chan.b'] });
    assert.equal(feeder.status, 201);

    const reader = client('reader', created.body.secret);
    const got: { channel: string; payload: string }[] = [];
    reader.on('message', (_ident, channel, payload) => got.push({ channel, payload: payload.toString() }));
    await reader.connect();
    reader.subscribe(['chan.a', 'chan.b']);
    const pub = client('feeder', feeder.body.secret);
    await pub.connect();
    await probeUntilReceived(pub, { got }, 'chan.a');
    await probeUntilReceived(pub, { got }, 'chan.b');

    const patched = await admin('PATCH', '/reader', { subchans: ['chan.a'] });
    assert.equal(patched.status, 200);
    assert.deepEqual(patched.body.subchans, ['chan.a']);
    assert.deepEqual((await admin('GET', '/reader')).body.subchans, ['chan.a']);
    assert.equal(patched.body.owner, 'team', 'fields not in the patch are kept');

    // One publisher connection is processed in order: once the chan.a marker arrived, a chan.b
    // message published before it would have arrived too, had the subscription survived.
    const before = got.length;
    pub.publish('chan.b', 'after-patch-b');
    pub.publish('chan.a', 'after-patch-a');
    await until(() => got.some((m) => m.payload === 'after-patch-a'), 'the chan.a marker');
    assert.deepEqual(got.slice(before).map((m) => m.payload), ['after-patch-a']);
    assert.ok(reader.connected, 'a narrowed key keeps its connection');

    // pubchans narrowed: the reader may no longer publish on chan.a; the broker closes it.
    assert.equal((await admin('PATCH', '/reader', { pubchans: [] })).status, 200);
    const gone = new Promise<string>((r) => reader.once('disconnect', r));
    reader.publish('chan.a', 'not allowed any more');
    await gone;
    assert.match(reader.lastServerError ?? '', /not allowed to pub/);
  });

  it('PATCH of an unknown ident is a 404 and changes nothing', async () => {
    const res = await admin('PATCH', '/nobody', { owner: 'x' });
    assert.equal(res.status, 404);
    assert.equal((await admin('GET', '/nobody')).status, 404);
  });

  it('rotate closes the connection that used the old secret; only the new secret works', async () => {
    const created = await admin('POST', '', { ident: 'rotating', subchans: ['chan.r'] });
    const old = client('rotating', created.body.secret);
    await old.connect();
    old.subscribe('chan.r');
    const gone = new Promise<string>((r) => old.once('disconnect', r));
    const rotated = await admin('POST', '/rotating/rotate');
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.secret, created.body.secret);
    await gone;
    assert.match(old.lastServerError ?? '', /Authentication failed/);

    // The old secret is refused on a new connection; the new one stays connected and receives.
    const stale = client('rotating', created.body.secret);
    const staleGone = new Promise<string>((r) => stale.once('disconnect', r));
    await stale.connect().catch(() => {});
    await staleGone;
    assert.match(stale.lastServerError ?? '', /Authentication failed/);

    const fresh = client('rotating', rotated.body.secret);
    const got: { channel: string; payload: string }[] = [];
    fresh.on('message', (_i, channel, payload) => got.push({ channel, payload: payload.toString() }));
    await fresh.connect();
    fresh.subscribe('chan.r');
    const feeder = await admin('POST', '', { ident: 'feeder-r', pubchans: ['chan.r'] });
    const pub = client('feeder-r', feeder.body.secret);
    await pub.connect();
    await probeUntilReceived(pub, { got }, 'chan.r');
    assert.ok(fresh.connected);
  });
});
