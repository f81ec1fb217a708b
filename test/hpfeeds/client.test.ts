import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { HpfeedsClient, HpfeedsServerError } from '../../src/hpfeeds/client.js';
import { freePort } from '../../src/redis/private-server.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';
import { key, sleep, startBroker, waitFor, waitSubscriptions, type TestBroker } from './harness.js';

const KEYS = [key('sensor', 'sensor-secret', ['events'], ['events', 'commands']), key('reader', 'reader-secret', [], ['events'])];

function collect(client: HpfeedsClient): Array<[string, string, string]> {
  const got: Array<[string, string, string]> = [];
  client.on('message', (ident, channel, payload) => got.push([ident, channel, payload.toString()]));
  return got;
}

describe('hpfeeds client', () => {
  let cert: TestCertificate;
  const clients: HpfeedsClient[] = [];
  const brokers: TestBroker[] = [];
  const client = (opts: Partial<ConstructorParameters<typeof HpfeedsClient>[0]> & { port: number }) => {
    const c = new HpfeedsClient({ host: '127.0.0.1', ident: 'sensor', secret: 'sensor-secret', ...opts });
    clients.push(c);
    return c;
  };
  before(() => {
    cert = makeTestCertificate();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(brokers.map((b) => b.broker.close()));
    cert.cleanup();
  });

  it('publishes and subscribes over TLS with a custom CA', async () => {
    const t = await startBroker({ keys: KEYS, endpoint: `tls:port=0:interface=127.0.0.1:cert=${cert.certPath}:key=${cert.keyPath}` });
    brokers.push(t);
    const reader = client({ port: t.port, ident: 'reader', secret: 'reader-secret', tls: { ca: cert.ca, servername: 'localhost' } });
    const got = collect(reader);
    reader.subscribe('events');
    const ready = once(reader, 'ready');
    await reader.connect();
    assert.deepEqual(await ready, ['testbroker']);
    assert.equal(reader.brokerName, 'testbroker');
    const sensor = client({ port: t.port, tls: { ca: cert.ca, servername: 'localhost' } });
    await sensor.connect();
    await waitSubscriptions(t, 'reader', 'events', 1);
    assert.equal(sensor.publish('events', '{"attack":1}'), true);
    sensor.publish(['events'], Buffer.from([0xde, 0xad]));
    await waitFor(() => got.length === 2);
    assert.deepEqual(got[0], ['sensor', 'events', '{"attack":1}']);
  });

  it('refuses a broker certificate it does not trust', async () => {
    const t = await startBroker({ keys: KEYS, endpoint: `tls:port=0:interface=127.0.0.1:cert=${cert.certPath}:key=${cert.keyPath}` });
    brokers.push(t);
    const c = client({ port: t.port, tls: { servername: 'localhost' }, reconnect: false });
    await assert.rejects(c.connect(), /self[- ]signed|unable to get local issuer|certificate/i);
  });

  it('reports broker ERROR frames as HpfeedsServerError', async () => {
    const t = await startBroker({ keys: KEYS });
    brokers.push(t);
    const c = client({ port: t.port, secret: 'wrong', reconnect: false });
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    const disconnected = new Promise((resolve) => c.once('disconnect', resolve));
    await c.connect();
    await disconnected;
    assert.ok(errors[0] instanceof HpfeedsServerError);
    assert.equal(errors[0].message, 'Authentication failed for sensor');
    assert.equal(c.lastServerError, 'Authentication failed for sensor');
    assert.equal(c.connected, false);
  });

  it('rejects connect() when the broker is unreachable and reconnect is off', async () => {
    const c = client({ port: await freePort(), reconnect: false });
    await assert.rejects(c.connect(), /ECONNREFUSED/);
  });

  it('stops delivery after unsubscribe', async () => {
    const t = await startBroker({ keys: KEYS });
    brokers.push(t);
    const c = client({ port: t.port, ident: 'reader', secret: 'reader-secret' });
    const got = collect(c);
    c.subscribe('events');
    await c.connect();
    await waitSubscriptions(t, 'reader', 'events', 1);
    t.broker.publish('core', 'events', 'a');
    await waitFor(() => got.length === 1);
    c.unsubscribe('events');
    await waitSubscriptions(t, 'reader', 'events', 0);
    t.broker.publish('core', 'events', 'b');
    await sleep(100);
    assert.equal(got.length, 1);
  });

  it('reconnects after a broker restart on the same port, re-subscribes, and sends what was published meanwhile', async () => {
    // Bound once on port 0; the restarted broker takes the same port back.
    let t = await startBroker({ keys: KEYS, endpoint: 'tcp:port=0:interface=127.0.0.1' });
    const port = t.port;
    const endpoint = `tcp:port=${port}:interface=127.0.0.1`;
    const reader = client({ port, ident: 'reader', secret: 'reader-secret', reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 200 });
    const sensor = client({ port, reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 200 });
    const got = collect(reader);
    const echoed = collect(sensor);
    reader.subscribe(['events']);
    sensor.subscribe('events'); // its own channel: echo shows what it sends after reconnecting
    await Promise.all([reader.connect(), sensor.connect()]);
    await waitSubscriptions(t, 'reader', 'events', 1);
    await waitSubscriptions(t, 'sensor', 'events', 1);
    t.broker.publish('core', 'events', 'before');
    await waitFor(() => got.length === 1);

    const disconnected = Promise.all([once(reader, 'disconnect'), once(sensor, 'disconnect')]);
    await t.broker.close();
    await disconnected;
    assert.equal(reader.connected, false);
    sensor.publish('events', 'queued while down');
    await sleep(150); // a few failed reconnect attempts

    t = await startBroker({ keys: KEYS, endpoint });
    brokers.push(t);
    await Promise.all([once(reader, 'ready'), sensor.connected ? Promise.resolve() : once(sensor, 'ready')]);
    // Re-subscription and the queued publish travel in the AUTH write, in that order.
    await waitFor(() => echoed.some(([, , p]) => p === 'queued while down'), 5000, 'queued publish');
    // 'ready' means AUTH + SUBSCRIBE were sent; wait until the broker has handled them.
    await waitSubscriptions(t, 'reader', 'events', 1);
    t.broker.publish('core', 'events', 'after');
    await waitFor(() => got.some(([, , p]) => p === 'after'), 5000, 'delivery after restart');
  });

  it('bounds what it buffers while disconnected', async () => {
    const c = client({ port: await freePort(), maxBufferedBytes: 1000, reconnectInitialDelayMs: 5000 });
    void c.connect().catch(() => {});
    assert.equal(c.publish('events', Buffer.alloc(600)), true);
    assert.equal(c.publish('events', Buffer.alloc(600)), false);
    assert.equal(c.droppedPublishes, 1);
    assert.ok(c.bufferedBytes < 1000);
  });
});
