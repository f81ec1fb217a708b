// Row 2 of issue 10 (node side): what a peer that never registers may cost. Connection caps per
// address and in total over TCP and WebSocket, a small pre-registration budget, the TLS handshake
// timeout, and logs that stay one line per address. Real sockets from several loopback addresses.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { makeTestCertificate } from '../helpers/tls.js';
import { metricValue, parseAck, registration, startHarness, tcpClient, tlsClient, waitFor, wsClient, type Harness, type TestClient } from './harness.js';

const open: TestClient[] = [];
const sockets: net.Socket[] = [];
const harnesses: Harness[] = [];
async function harness(opts: Parameters<typeof startHarness>[0]): Promise<Harness> {
  const h = await startHarness(opts);
  harnesses.push(h);
  return h;
}

/** A raw socket and a promise of when the server closed it. */
async function raw(port: number, localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  sockets.push(socket);
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await once(socket, 'connect');
  return { socket, closed };
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms).unref())]);

afterEach(() => {
  for (const c of open.splice(0)) c.close();
  for (const s of sockets.splice(0)) s.destroy();
});
after(async () => {
  for (const h of harnesses) await h.close();
});

describe('pre-registration budget', () => {
  it('closes TCP peers that send a long line before registering, without buffering it', async () => {
    const h = await harness({ enrollment: 'open', authTimeoutMs: 60_000 });
    const before = process.memoryUsage().arrayBuffers;
    const peers = await Promise.all(Array.from({ length: 100 }, () => raw(h.tcp.port)));
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    // Each peer sends up to 1 MiB without a newline; the server must cut them off early.
    await Promise.all(
      peers.map(async (p) => {
        for (let i = 0; i < 16 && !p.socket.destroyed; i++) {
          if (!p.socket.write(chunk)) await Promise.race([once(p.socket, 'drain'), p.closed]);
        }
      }),
    );
    await within(Promise.all(peers.map((p) => p.closed)), 10_000, 'every peer closed by the server');
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 40 * 1024 * 1024, `buffers grew by ${(grown / 1048576).toFixed(1)} MiB`);
    assert.equal(await metricValue(h.registry, 'apiary_node_preauth_closed_total'), 100);
    const lines = h.logs.filter((l) => /closed before registration/.test(l.msg));
    assert.equal(lines.length, 1, 'one log line for the address, not one per connection');
    // An honest node still registers, and may send lines up to the normal cap afterwards.
    const c = await tcpClient(h.tcp.port);
    open.push(c);
    c.send(registration('honest', '1'));
    assert.equal(parseAck(await c.next()).accepted, true);
    c.send(`{"version":2,"message":{"NodeEvent":{"type":"Error","message":"${'x'.repeat(20_000)}"}}}`);
    await waitFor(() => h.db.sqlite.prepare("SELECT count(*) AS n FROM node_log WHERE kind = 'event:Error'").pluck().get() === 1, 5000, 'big line after registration');
  });

  it('closes WebSocket peers that send a big frame before registering, while it arrives', async () => {
    const h = await harness({ enrollment: 'open', authTimeoutMs: 60_000 });
    const c = await wsClient(h.wsUrl);
    open.push(c);
    c.send('x'.repeat(900 * 1024));
    await within(c.closed, 5000, 'server closes the WebSocket');
    const small = await wsClient(h.wsUrl);
    open.push(small);
    small.send('y'.repeat(20 * 1024));
    await within(small.closed, 5000, 'server closes on an oversized pre-registration frame');
    assert.equal(await metricValue(h.registry, 'apiary_node_preauth_closed_total', { transport: 'ws' }), 2);
  });

  it('logs garbage and auth timeouts of unregistered connections once per address and reason, not per connection', async () => {
    const h = await harness({ enrollment: 'open', authTimeoutMs: 300 });
    const peers = await Promise.all(Array.from({ length: 30 }, () => raw(h.tcp.port, '127.0.0.6')));
    for (const p of peers) p.socket.write('garbage\n{"version":2,"message":{"NodeStatusUpdate":{"node_id":1,"status":"Running"}}}\n');
    await within(Promise.all(peers.map((p) => p.closed)), 10_000, 'auth timeouts');
    assert.equal(await metricValue(h.registry, 'apiary_node_invalid_messages_total'), 60);
    const mine = h.logs.filter((l) => l.remoteAddress === '127.0.0.6');
    assert.equal(mine.filter((l) => /no NodeRegistration within/.test(l.msg)).length, 1);
    assert.equal(mine.filter((l) => /unregistered node connection discarded/.test(l.msg)).length, 2, 'one line per reason (bad JSON, not registered)');
  });

  it('times out a TLS handshake that never starts', async () => {
    const cert = makeTestCertificate();
    const h = await harness({ enrollment: 'open', tls: { certPath: cert.certPath, keyPath: cert.keyPath }, tlsHandshakeTimeoutMs: 300 });
    const p = await raw(h.tcp.port);
    const t0 = Date.now();
    await within(p.closed, 5000, 'handshake timeout');
    assert.ok(Date.now() - t0 < 4000);
    cert.cleanup();
  });
});

describe('connection caps', () => {
  it('caps TCP connections per address and in total; refusals are counted and logged once per address', async () => {
    const h = await harness({ enrollment: 'open', authTimeoutMs: 60_000, connectionLimits: { maxConnectionsPerAddress: 5, maxConnections: 8 } });
    const mine = await Promise.all(Array.from({ length: 5 }, () => raw(h.tcp.port, '127.0.0.2')));
    const refused = await Promise.all(Array.from({ length: 20 }, () => raw(h.tcp.port, '127.0.0.2')));
    await within(Promise.all(refused.map((p) => p.closed)), 5000, 'over-cap connections closed');
    assert.equal(mine.some((p) => p.socket.destroyed), false, 'the first five stay open');
    assert.equal(await metricValue(h.registry, 'apiary_node_connections_refused_total', { reason: 'per_address' }), 20);
    // Other addresses still get in, up to the total cap.
    const others = await Promise.all(Array.from({ length: 3 }, () => raw(h.tcp.port, '127.0.0.3')));
    const over = await raw(h.tcp.port, '127.0.0.4');
    await within(over.closed, 5000, 'over the total cap');
    assert.equal(others.some((p) => p.socket.destroyed), false);
    assert.equal(await metricValue(h.registry, 'apiary_node_connections_refused_total', { reason: 'global' }), 1);
    assert.equal(h.logs.filter((l) => /node connections refused/.test(l.msg) && l.remoteAddress === '127.0.0.2').length, 1);
    // Closing gives the slots back.
    for (const p of mine) p.socket.destroy();
    await Promise.all(mine.map((p) => p.closed));
    const c = await tcpClient(h.tcp.port, '127.0.0.2');
    open.push(c);
    c.send(registration('after-cap', '1'));
    assert.equal(parseAck(await c.next()).accepted, true);
  });

  it('refuses TLS connections over the cap before the handshake, and keeps serving', async () => {
    const cert = makeTestCertificate();
    const h = await harness({ enrollment: 'open', tls: { certPath: cert.certPath, keyPath: cert.keyPath }, connectionLimits: { maxConnectionsPerAddress: 1 } });
    const first = await raw(h.tcp.port, '127.0.0.5');
    const second = await raw(h.tcp.port, '127.0.0.5');
    await within(second.closed, 5000, 'over-cap TLS connection closed');
    assert.equal(first.socket.destroyed, false);
    assert.equal(await metricValue(h.registry, 'apiary_node_connections_refused_total', { reason: 'per_address' }), 1);
    const c = await tlsClient(h.tcp.port, cert.ca);
    open.push(c);
    c.send(registration('tls-after-cap', '1'));
    assert.equal(parseAck(await c.next()).accepted, true);
    cert.cleanup();
  });

  it('refuses WebSocket upgrades over the per-address cap with 503', async () => {
    const h = await harness({ enrollment: 'open', authTimeoutMs: 60_000, connectionLimits: { maxConnectionsPerAddress: 2 } });
    const a = await wsClient(h.wsUrl);
    const b = await wsClient(h.wsUrl);
    open.push(a, b);
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(h.wsUrl);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('upgrade accepted over the cap')));
      ws.on('error', () => {});
    });
    assert.equal(status, 503);
    assert.equal(await metricValue(h.registry, 'apiary_node_connections_refused_total', { transport: 'ws', reason: 'per_address' }), 1);
    a.close();
    await waitFor(() => true);
    const c = await within(
      (async () => {
        for (;;) {
          try {
            return await wsClient(h.wsUrl);
          } catch {
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      })(),
      5000,
      'a slot freed by a closed WebSocket',
    );
    open.push(c);
  });
});
