// The hpfeeds broker behind a load balancer that speaks the PROXY protocol, through its
// resolvePeer hook: the client's address in the header is the one the broker logs and limits
// (connection caps, AUTH failure limits), over TCP and TLS; a client not behind the proxy is
// unaffected; a bad header closes that connection before OP_INFO; close() does not wait for a
// header. Real sockets on 127.0.0.1; the trusted proxy connects from 127.0.0.2.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { BrokerOptions } from '../../src/hpfeeds/broker.js';
import { ProxyProtocol } from '../../src/proxy-protocol/index.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';
import { ALICE_BOB_KEYS, CaptureLogger, RawPeer, publishes, startBroker, waitFor, type TestBroker } from '../hpfeeds/harness.js';
import { closedByServer, connectFrom } from './client.js';
import { v1, v2 } from './wire.js';

const PROXY = '127.0.0.2';

function proxied(opts: Partial<BrokerOptions> & { endpoint?: string } = {}, timeoutMs = 3000) {
  const registry = new Registry();
  const logger = new CaptureLogger();
  const pp = new ProxyProtocol({ trusted: [PROXY], timeoutMs, registry, logger });
  return { registry, logger, broker: startBroker({ keys: ALICE_BOB_KEYS, resolvePeer: pp.resolver('hpfeeds'), ...opts }) };
}

const authenticatedPeers = (t: TestBroker) => t.logger.entries.filter((e) => e.msg === 'hpfeeds client authenticated').map((e) => e.obj.peer);

describe('hpfeeds broker with PROXY protocol (TCP)', () => {
  let t: TestBroker;
  let pp: ReturnType<typeof proxied>;
  before(async () => {
    pp = proxied({ maxConnectionsPerAddress: 1, authFailuresPerAddress: 2 });
    t = await pp.broker;
  });
  after(async () => {
    await t.broker.close();
  });

  it('the header names the client: it is logged with that address and works as any client', async () => {
    const socket = await connectFrom(t.port, PROXY);
    socket.write(v2({ src: '198.51.100.20', sport: 4242, dst: '10.0.0.1', dport: 10000 }));
    const alice = await RawPeer.over(socket);
    alice.write(alice.auth('alice', 'alice-secret'));
    alice.subscribe('alice', 'events');
    alice.publish('alice', 'events', 'hello through the proxy');
    await waitFor(() => publishes(alice).length === 1, 5000, 'own publish back');
    assert.equal(publishes(alice)[0]!.payload.toString(), 'hello through the proxy');
    assert.deepEqual(authenticatedPeers(t), ['198.51.100.20:4242']);
    alice.destroy();
  });

  it('per-address caps count the client, not the proxy', async () => {
    const a = await connectFrom(t.port, PROXY);
    a.write(v1('192.0.2.1', 1, '10.0.0.1', 10000));
    const b = await connectFrom(t.port, PROXY);
    b.write(v1('192.0.2.2', 1, '10.0.0.1', 10000));
    const [pa, pb] = await Promise.all([RawPeer.over(a), RawPeer.over(b)]);
    assert.equal(pa.info.op, 1);
    assert.equal(pb.info.op, 1);
    // A second connection of 192.0.2.1 is over its cap of one.
    const c = await connectFrom(t.port, PROXY);
    const closed = closedByServer(c);
    let got = 0;
    c.on('data', (d: Buffer) => (got += d.length));
    c.write(v1('192.0.2.1', 2, '10.0.0.1', 10000));
    await closed;
    assert.equal(got, 0, 'no OP_INFO for the refused connection');
    assert.match(await t.metrics(), /^hpfeeds_broker_connections_refused_total\{reason="per-address"\} 1$/m);
    pa.destroy();
    pb.destroy();
  });

  it('AUTH failure limits count the client, not the proxy', async () => {
    const login = async (client: string, secret: string) => {
      const s = await connectFrom(t.port, PROXY);
      s.write(v1(client, 7, '10.0.0.1', 10000));
      const p = await RawPeer.over(s);
      p.write(p.auth('bob', secret));
      return p;
    };
    for (let i = 0; i < 2; i++) await (await login('203.0.113.66', 'wrong')).expectErrorAndClose();
    // 203.0.113.66 is now refused even with the right secret; another client behind the proxy is not.
    await (await login('203.0.113.66', 'bob-secret')).expectErrorAndClose();
    assert.match(await t.metrics(), /^hpfeeds_broker_auth_rate_limited_total\{scope="address"\} 1$/m);
    const other = await login('203.0.113.67', 'bob-secret');
    await waitFor(() => authenticatedPeers(t).includes('203.0.113.67:7'), 5000, 'the other client authenticated');
    other.destroy();
  });

  it('a client not behind the proxy connects as before', async () => {
    const direct = await RawPeer.connect(t.port);
    direct.write(direct.auth('alice', 'alice-secret'));
    await waitFor(() => authenticatedPeers(t).some((p) => typeof p === 'string' && p.startsWith('127.0.0.1:')), 5000, 'direct client authenticated');
    direct.destroy();
  });

  it('a trusted connection without a valid header is closed before OP_INFO, logged and counted', async () => {
    for (const [reason, bytes] of [
      ['malformed', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n')],
      ['missing', Buffer.from([0x00, 0x00, 0x00, 0x05, 0x01])],
    ] as const) {
      const s = await connectFrom(t.port, PROXY);
      const closed = closedByServer(s);
      let got = 0;
      s.on('data', (d: Buffer) => (got += d.length));
      s.write(bytes);
      await closed;
      assert.equal(got, 0, `${reason}: nothing sent back`);
      assert.match(await pp.registry.metrics(), new RegExp(`^apiary_proxy_protocol_rejected_total\\{listener="hpfeeds",reason="${reason}"\\} 1$`, 'm'));
      assert.ok(pp.logger.entries.some((e) => e.level === 'warn' && e.obj.reason === reason && e.obj.proxyAddress === PROXY));
    }
  });
});

describe('hpfeeds broker with PROXY protocol (TLS)', () => {
  let t: TestBroker;
  let cert: TestCertificate;
  before(async () => {
    cert = makeTestCertificate();
    t = await proxied({ endpoint: `tls:port=0:interface=127.0.0.1:cert=${cert.certPath}:key=${cert.keyPath}` }).broker;
  });
  after(async () => {
    await t.broker.close();
    cert.cleanup();
  });

  it('the header comes before the handshake; the client is logged with its address', async () => {
    const raw = await connectFrom(t.port, PROXY);
    raw.write(v2({ src: '2001:db8:77::9', sport: 5555, dst: '2001:db8::1', dport: 10000 }));
    const socket = tls.connect({ socket: raw, ca: cert.ca, servername: 'localhost' });
    socket.on('error', () => undefined);
    await once(socket, 'secureConnect', { signal: AbortSignal.timeout(10_000) });
    const peer = await RawPeer.over(socket);
    peer.write(peer.auth('alice', 'alice-secret'));
    await waitFor(() => authenticatedPeers(t).includes('2001:db8:77::9:5555'), 5000, 'authenticated');
    peer.destroy();
  });
});

describe('hpfeeds broker close() with a header still awaited', () => {
  it('ends the waiting connection at once instead of waiting for its timeout', async () => {
    const t = await proxied({}, 30_000).broker;
    const s = await connectFrom(t.port, PROXY);
    const closed = closedByServer(s);
    s.write('PROXY TCP4 ');
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await t.broker.close();
    await closed;
    assert.ok(Date.now() - started < 1500, `closed in ${Date.now() - started} ms`);
  });
});
