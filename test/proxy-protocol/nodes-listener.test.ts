// The node TCP/TLS listener behind a load balancer that speaks the PROXY protocol: connections
// from the trusted proxy (here 127.0.0.2) must start with a header, and the node's recorded
// address is the one in it (over TLS too, the header before the handshake); other addresses
// connect as before; bad, missing, oversized and slow headers close that connection only, with
// a log line and a metric. Real sockets, a real SQLite file, certificates made in the test.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ProxyProtocol } from '../../src/proxy-protocol/index.js';
import { metricValue, nodeLog, nodeRow, parseAck, registration, startHarness, tcpClient, tlsClient, waitFor, type Harness, type LogRecord } from '../nodes/harness.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';
import { closedByServer, connectFrom, prefixedStream } from './client.js';
import { v1, v2 } from './wire.js';

const PROXY = '127.0.0.2';

function proxyProtocol(timeoutMs = 3000) {
  const registry = new Registry();
  const logs: LogRecord[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as LogRecord) });
  const pp = new ProxyProtocol({ trusted: [`${PROXY}/32`], timeoutMs, registry, logger });
  return { pp, registry, logs };
}

/** Lines from a socket, one per call (rejects after a timeout). */
function lines(socket: { on(ev: 'data', fn: (b: Buffer) => void): unknown }) {
  let buf = '';
  const queue: string[] = [];
  const waiters: ((s: string) => void)[] = [];
  socket.on('data', (b: Buffer) => {
    buf += b.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const w = waiters.shift();
      if (w) w(line);
      else queue.push(line);
    }
  });
  return (timeoutMs = 5000) =>
    queue.length > 0
      ? Promise.resolve(queue.shift()!)
      : new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no line within ${timeoutMs} ms`)), timeoutMs);
          waiters.push((line) => {
            clearTimeout(timer);
            resolve(line);
          });
        });
}

describe('node listener with PROXY protocol (TCP)', () => {
  let h: Harness;
  let p: ReturnType<typeof proxyProtocol>;
  const online: { nodeName: string; address: string }[] = [];
  before(async () => {
    p = proxyProtocol(400);
    h = await startHarness({ enrollment: 'open', resolvePeer: p.pp.resolver('nodes') });
    h.gateway.on('online', (e) => online.push(e));
  });
  after(async () => {
    await h.close();
  });

  const register = async (socket: import('node:net').Socket, name: string, id: string, header?: Buffer) => {
    const next = lines(socket);
    socket.write(Buffer.concat([header ?? Buffer.alloc(0), Buffer.from(registration(name, id) + '\n')]));
    return parseAck(await next());
  };

  it('a v1 header (in the same write as the registration) gives the node its address', async () => {
    const s = await connectFrom(h.tcp.port, PROXY);
    assert.equal((await register(s, 'pp-v1', '101', v1('203.0.113.7', 51234, '10.0.0.1', 9001))).accepted, true);
    await waitFor(() => nodeRow(h, 'pp-v1')?.remote_address === '203.0.113.7', 5000, 'remote_address');
    assert.deepEqual(online.find((e) => e.nodeName === 'pp-v1')?.address, '203.0.113.7');
    assert.ok(nodeLog(h, 'pp-v1').some((e) => e.kind === 'registered' && e.message?.includes('from 203.0.113.7 via tcp')));
    assert.equal(await metricValue(p.registry, 'apiary_proxy_protocol_headers_total', { listener: 'nodes', version: '1', command: 'proxy' }), 1);
    s.destroy();
  });

  it('a v2 header with an IPv6 client, sent in pieces', async () => {
    const s = await connectFrom(h.tcp.port, PROXY);
    const header = v2({ src: '2001:db8::5', sport: 40001, dst: '2001:db8::1', dport: 9001, tlvs: Buffer.from([0x04, 0x00, 0x02, 0x00, 0x00]) });
    for (const piece of [header.subarray(0, 5), header.subarray(5, 17), header.subarray(17)]) {
      s.write(piece);
      await new Promise((r) => setTimeout(r, 30));
    }
    assert.equal((await register(s, 'pp-v2', '102')).accepted, true);
    await waitFor(() => nodeRow(h, 'pp-v2')?.remote_address === '2001:db8::5', 5000, 'remote_address');
    s.destroy();
  });

  it("LOCAL (a health check) keeps the proxy's address", async () => {
    const s = await connectFrom(h.tcp.port, PROXY);
    assert.equal((await register(s, 'pp-local', '103', v2({ command: 'local' }))).accepted, true);
    await waitFor(() => nodeRow(h, 'pp-local')?.remote_address === PROXY, 5000, 'remote_address');
    s.destroy();
  });

  it('a connection from an address not listed needs no header and keeps its own address', async () => {
    const c = await tcpClient(h.tcp.port);
    c.send(registration('pp-direct', '104'));
    assert.equal(parseAck(await c.next()).accepted, true);
    await waitFor(() => nodeRow(h, 'pp-direct')?.remote_address === '127.0.0.1', 5000, 'remote_address');
    c.close();
  });

  it('missing, malformed and oversized headers close that connection, logged and counted', async () => {
    const cases: [string, Buffer][] = [
      ['missing', Buffer.from(registration('pp-bad', '105') + '\n')],
      ['malformed', Buffer.from('PROXY TCP4 203.0.113.999 10.0.0.1 1 2\r\n')],
      ['oversized', v2({ src: '192.0.2.1', length: 60_000 }).subarray(0, 16)],
      ['unsupported', v2({ src: '192.0.2.1', transport: 'dgram' })],
    ];
    for (const [reason, bytes] of cases) {
      const s = await connectFrom(h.tcp.port, PROXY);
      const closed = closedByServer(s);
      s.write(bytes);
      await closed;
      assert.equal(await metricValue(p.registry, 'apiary_proxy_protocol_rejected_total', { listener: 'nodes', reason }), 1, reason);
      assert.ok(p.logs.some((l) => l.reason === reason && l.proxyAddress === PROXY && /trusted proxy closed/.test(l.msg)), `log line for ${reason}`);
    }
    assert.equal(nodeRow(h, 'pp-bad'), undefined, 'the header-less registration was not taken');
  });

  it('a header that does not finish is closed at the timeout; other connections go on meanwhile', async () => {
    const slow = await connectFrom(h.tcp.port, PROXY);
    const started = Date.now();
    const closed = closedByServer(slow);
    slow.write('PROXY TCP4 198.51.100.');
    // Within the slow one's wait, another proxied node registers.
    const other = await connectFrom(h.tcp.port, PROXY);
    assert.equal((await register(other, 'pp-meanwhile', '106', v1('198.51.100.77', 1000, '10.0.0.1', 9001))).accepted, true);
    assert.ok(Date.now() - started < 400, 'the other node did not wait for the slow header');
    await closed;
    assert.ok(Date.now() - started >= 380, `closed after ${Date.now() - started} ms`);
    assert.equal(await metricValue(p.registry, 'apiary_proxy_protocol_rejected_total', { listener: 'nodes', reason: 'timeout' }), 1);
    other.destroy();
  });

  it('a proxy that drops the connection mid-header is counted, and nothing breaks', async () => {
    const s = await connectFrom(h.tcp.port, PROXY);
    s.write('PROXY TCP6 2001:db8::');
    await new Promise((r) => setTimeout(r, 30));
    s.resetAndDestroy();
    await waitFor(async () => (await metricValue(p.registry, 'apiary_proxy_protocol_rejected_total', { listener: 'nodes', reason: 'closed' })) === 1, 5000, 'closed counted');
    const again = await connectFrom(h.tcp.port, PROXY);
    assert.equal((await register(again, 'pp-after', '107', v1('192.0.2.200', 5, '10.0.0.1', 9001))).accepted, true);
    again.destroy();
  });
});

describe('node listener with PROXY protocol: per-address caps see the client', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ enrollment: 'open', resolvePeer: proxyProtocol().pp.resolver('nodes'), connectionLimits: { maxConnectionsPerAddress: 1 } });
  });
  after(async () => {
    await h.close();
  });

  it('two clients behind one proxy get one connection each; a second from the same client is refused', async () => {
    const a = await connectFrom(h.tcp.port, PROXY);
    const b = await connectFrom(h.tcp.port, PROXY);
    const nextA = lines(a);
    const nextB = lines(b);
    a.write(Buffer.concat([v1('198.51.100.1', 1, '10.0.0.1', 9001), Buffer.from(registration('cap-a', '201') + '\n')]));
    b.write(Buffer.concat([v1('198.51.100.2', 1, '10.0.0.1', 9001), Buffer.from(registration('cap-b', '202') + '\n')]));
    assert.equal(parseAck(await nextA()).accepted, true);
    assert.equal(parseAck(await nextB()).accepted, true);
    const c = await connectFrom(h.tcp.port, PROXY);
    const closed = closedByServer(c);
    c.write(v1('198.51.100.1', 2, '10.0.0.1', 9001));
    await closed;
    assert.equal(await metricValue(h.registry, 'apiary_node_connections_refused_total', { reason: 'per_address' }), 1);
    a.destroy();
    b.destroy();
  });
});

describe('node listener with PROXY protocol (TLS)', () => {
  let h: Harness;
  let cert: TestCertificate;
  before(async () => {
    cert = makeTestCertificate();
    h = await startHarness({ enrollment: 'open', tls: { certPath: cert.certPath, keyPath: cert.keyPath }, resolvePeer: proxyProtocol().pp.resolver('nodes') });
  });
  after(async () => {
    await h.close();
    cert.cleanup();
  });

  it('the header comes before the handshake, in its own write', async () => {
    const raw = await connectFrom(h.tcp.port, PROXY);
    raw.write(v2({ src: '192.0.2.10', sport: 3333, dst: '10.0.0.1', dport: 9001 }));
    const c = await tlsClient(h.tcp.port, cert.ca, { socket: raw });
    assert.equal(c.protocol, 'TLSv1.3');
    c.send(registration('tls-pp-1', '301'));
    assert.equal(parseAck(await c.next()).accepted, true);
    await waitFor(() => nodeRow(h, 'tls-pp-1')?.remote_address === '192.0.2.10', 5000, 'remote_address');
    assert.ok(nodeLog(h, 'tls-pp-1').some((e) => e.kind === 'registered' && e.message?.includes('from 192.0.2.10 via tls')));
    c.close();
  });

  it('the header and the ClientHello in one write', async () => {
    const raw = await connectFrom(h.tcp.port, PROXY);
    const socket = tls.connect({ socket: prefixedStream(raw, v1('203.0.113.50', 4444, '10.0.0.1', 9001)), ca: cert.ca, servername: 'localhost' });
    socket.on('error', () => undefined);
    await once(socket, 'secureConnect', { signal: AbortSignal.timeout(10_000) });
    const next = lines(socket);
    socket.write(registration('tls-pp-2', '302') + '\n');
    assert.equal(parseAck(await next()).accepted, true);
    await waitFor(() => nodeRow(h, 'tls-pp-2')?.remote_address === '203.0.113.50', 5000, 'remote_address');
    socket.destroy();
  });

  it('a trusted connection that starts the handshake without a header is closed', async () => {
    const raw = await connectFrom(h.tcp.port, PROXY);
    const closed = closedByServer(raw);
    const socket = tls.connect({ socket: raw, ca: cert.ca, servername: 'localhost' });
    socket.on('error', () => undefined);
    await closed;
    assert.equal(socket.encrypted && socket.authorized, false);
  });

  it('a direct TLS node (address not listed) is unaffected', async () => {
    const c = await tlsClient(h.tcp.port, cert.ca);
    c.send(registration('tls-direct', '303'));
    assert.equal(parseAck(await c.next()).accepted, true);
    await waitFor(() => nodeRow(h, 'tls-direct')?.remote_address === '127.0.0.1', 5000, 'remote_address');
    c.close();
  });
});
