// The hpfeeds page reads the broker's live figures from /metrics: the Prometheus text parser and
// the rates it derives, on the text the composed core really serves.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { brokerMetricNames, brokerView, parseMetrics, rates } from '../../web/src/pages/hpfeeds/broker-metrics.js';
import { startTestCore, until, type TestCore } from '../helpers/core.js';

describe('console broker figures from /metrics', () => {
  let t: TestCore;
  const clients: HpfeedsClient[] = [];
  before(async () => {
    t = await startTestCore();
  });
  after(async () => {
    for (const c of clients) await c.close(1000).catch(() => {});
    await t?.close();
  });

  it('parses labels with escapes and ignores other metrics and comments', () => {
    const text = [
      '# HELP hpfeeds_broker_subscriptions Number of subscriptions to a channel',
      'hpfeeds_broker_subscriptions{ident="a",chan="odd \\"chan\\""} 2',
      'hpfeeds_broker_client_connections 3',
      'apiary_other_total{chan="x"} 9',
    ].join('\n');
    const samples = parseMetrics(text, brokerMetricNames);
    assert.deepEqual(samples, [
      { name: 'hpfeeds_broker_subscriptions', labels: { ident: 'a', chan: 'odd "chan"' }, value: 2 },
      { name: 'hpfeeds_broker_client_connections', labels: {}, value: 3 },
    ]);
    const v1 = brokerView(samples, 1000);
    assert.equal(v1.connections, 3);
    assert.equal(v1.channels.get('odd "chan"')?.subscribers, 2);
  });

  it('reads connections, subscribers and publish rates from the core', async () => {
    for (const ident of ['pub-1', 'sub-1']) {
      const made = await t.api('POST', '/api/v1/hpfeeds/authkeys', { token: t.adminToken, body: { ident, secret: `${ident}-secret-0123456789`, pubchans: ['feed.x'], subchans: ['feed.x'] } });
      assert.equal(made.status, 201);
      const c = new HpfeedsClient({ host: '127.0.0.1', port: t.core.addresses.hpfeeds[0]!.port, ident, secret: `${ident}-secret-0123456789`, reconnect: false });
      c.on('error', () => {});
      await c.connect();
      clients.push(c);
    }
    clients[1]!.subscribe('feed.x');
    const read = async () => brokerView(parseMetrics((await t.api('GET', '/metrics', { token: t.adminToken })).body, brokerMetricNames), Date.now());
    await until(async () => (await read()).channels.get('feed.x')?.subscribers === 1, 'the subscription in /metrics');
    const before = await read();
    assert.equal(before.connections, 2);
    for (let i = 0; i < 10; i++) clients[0]!.publish('feed.x', `m${i}`);
    await until(async () => ((await read()).channels.get('feed.x')?.published ?? 0) >= (before.channels.get('feed.x')?.published ?? 0) + 10, 'ten publishes counted');
    const now = await read();
    const r = rates(before, { ...now, at: before.at + 2000 });
    assert.equal(r.get('feed.x'), 5, '10 publishes over 2 s');
    assert.equal(rates(undefined, now).size, 0, 'no rate from a single reading');
  });
});
