// BrokerOptions.onClientPublish: every PUBLISH a client makes that passed its ACL, and nothing else
// (not Broker.publish, not a refused publish), with the exact payload; a hook that throws is logged
// and changes nothing for subscribers.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { key, sleep, startBroker, waitFor, type TestBroker } from './harness.js';

describe('broker onClientPublish hook', () => {
  const brokers: TestBroker[] = [];
  const clients: HpfeedsClient[] = [];
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const b of brokers) await b.broker.close();
  });

  const client = async (port: number, ident: string, secret: string) => {
    const c = new HpfeedsClient({ host: '127.0.0.1', port, ident, secret, reconnect: false });
    c.on('error', () => undefined);
    clients.push(c);
    await c.connect();
    return c;
  };

  it('sees client publishes (copyable payload view), not in-process ones nor refused ones', async () => {
    const seen: { ident: string; channel: string; payload: Buffer }[] = [];
    const t = await startBroker({
      keys: [key('pub', 's1', ['a', 'b'], []), key('sub', 's2', [], ['a', 'b', 'c'])],
      onClientPublish: (ident, channel, payload) => seen.push({ ident, channel, payload: Buffer.from(payload) }),
    });
    brokers.push(t);
    const sub = await client(t.port, 'sub', 's2');
    const got: string[] = [];
    sub.on('message', (_i, channel, payload) => got.push(`${channel}:${payload.toString('hex')}`));
    sub.subscribe(['a', 'b', 'c']);
    await sleep(50);
    const pub = await client(t.port, 'pub', 's1');
    pub.publish('a', Buffer.from([1, 2, 3]));
    pub.publish('b', 'two');
    t.broker.publish('core', 'c', 'in-process');
    await waitFor(() => got.length === 3, 5000, 'three messages at the subscriber');
    assert.deepEqual(seen, [
      { ident: 'pub', channel: 'a', payload: Buffer.from([1, 2, 3]) },
      { ident: 'pub', channel: 'b', payload: Buffer.from('two') },
    ]);
    // A channel the key may not publish on: refused, so not mirrored either.
    pub.publish('c', 'nope');
    await sleep(150);
    assert.equal(seen.length, 2);
  });

  it('a hook that throws is logged; subscribers still get the message', async () => {
    const t = await startBroker({
      keys: [key('pub', 's1', ['a'], []), key('sub', 's2', [], ['a'])],
      onClientPublish: () => {
        throw new Error('mirror down');
      },
    });
    brokers.push(t);
    const sub = await client(t.port, 'sub', 's2');
    const got: string[] = [];
    sub.on('message', (_i, _c, payload) => got.push(payload.toString()));
    sub.subscribe(['a']);
    await sleep(50);
    const pub = await client(t.port, 'pub', 's1');
    pub.publish('a', 'one');
    pub.publish('a', 'two');
    await waitFor(() => got.length === 2, 5000, 'both messages');
    assert.deepEqual(got, ['one', 'two']);
    assert.match(t.logger.text(), /onClientPublish hook failed/);
  });
});
