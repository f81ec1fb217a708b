// Bounds of the node transports: a TLS handshake that never comes is cut off, a WebSocket frame
// above the hard cap is answered with close code 1009, and a node that stops reading its
// connection is disconnected once the core's write backlog passes its limit. In each case the
// listener keeps serving other nodes.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';
import { bounded, parseAck, registration, startHarness, tcpClient, tlsClient, waitFor, wsClient, type Harness } from './harness.js';

describe('node transport bounds', () => {
  let h: Harness;
  let tlsH: Harness;
  let cert: TestCertificate;
  before(async () => {
    cert = makeTestCertificate();
    h = await startHarness({ enrollment: 'open' });
    // 2 s instead of the 10 s default (NODE_TLS_HANDSHAKE_TIMEOUT): the test waits for it to pass.
    tlsH = await startHarness({ enrollment: 'open', tls: { certPath: cert.certPath, keyPath: cert.keyPath }, tlsHandshakeTimeoutMs: 2_000 });
  });
  after(async () => {
    await h?.close();
    await tlsH?.close();
    cert?.cleanup();
  });

  it('a connection to the TLS port that never starts a handshake is closed at the handshake timeout', async () => {
    const silent = net.connect({ host: '127.0.0.1', port: tlsH.tcp.port });
    silent.on('error', () => {});
    const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
    const openedAt = Date.now();
    await bounded(closed, 30_000, 'the silent connection to be closed');
    const openFor = Date.now() - openedAt;
    assert.ok(openFor >= 1_900 && openFor < 10_000, `closed after ${openFor} ms: the 2 s timeout, not before nor at the 10 s default`);
    await waitFor(() => tlsH.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('node TLS handshake failed')), 5000, 'the handshake failure log');
    const ok = await tlsClient(tlsH.tcp.port, cert.ca);
    ok.send(registration('after-timeout', '3'));
    assert.equal(parseAck(await ok.next(10_000)).accepted, true);
    ok.close();
  });

  it('a WebSocket frame above the 1 MiB hard cap closes that socket with 1009; others carry on', async () => {
    const bystander = await wsClient(h.wsUrl);
    bystander.send(registration('ws-bystander', '4'));
    assert.equal(parseAck(await bystander.next(10_000)).accepted, true);

    const big = new WebSocket(h.wsUrl);
    big.on('error', () => {});
    await bounded(new Promise((r) => big.once('open', r)), 10_000, 'the WebSocket to open');
    const code = bounded(new Promise<number>((r) => big.once('close', (c) => r(c))), 15_000, 'the oversized frame close');
    big.send('x'.repeat(1024 * 1024 + 16));
    assert.equal(await code, 1009);
    assert.equal(bystander.isClosed(), false);
    assert.equal(h.gateway.isOnline('ws-bystander'), true);
    bystander.close();
  });

  it('a node that stops reading is disconnected once the write backlog passes its limit', async () => {
    const reader = await tcpClient(h.tcp.port);
    reader.send(registration('stops-reading', '5'));
    assert.equal(parseAck(await reader.next(10_000)).accepted, true);
    // Raw socket that registers and then never reads again.
    const stalled = net.connect({ host: '127.0.0.1', port: h.tcp.port });
    stalled.on('error', () => {});
    await bounded(new Promise((r) => stalled.once('connect', r)), 10_000, 'connect');
    stalled.write(`${registration('stalled', '6')}\n`);
    await waitFor(() => h.gateway.isOnline('stalled'), 10_000, 'the stalled node to register');
    stalled.pause();
    // Config values are capped at 64 KiB each (InstallPot input limits).
    const value = 'v'.repeat(60 * 1024);
    let sent = 0;
    // At most ~60 MiB, far beyond the 4 MiB backlog limit plus what the kernel buffers.
    while (h.gateway.isOnline('stalled') && sent < 1024) {
      h.gateway.sendCommand('stalled', { InstallPot: { pot_id: `p${sent}`, honeypot_type: 'cowrie', auto_start: false, config: { blob: value } } } as never);
      sent++;
      if (sent % 8 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => !h.gateway.isOnline('stalled'), 10_000, 'the stalled node to be disconnected');
    assert.ok(sent < 1024, `disconnected after ${sent} large commands`);
    assert.ok(h.logs.some((l) => l.msg === 'node is not reading its connection; closing it'));
    assert.equal(h.gateway.isOnline('stops-reading'), true, 'the other node is untouched');
    stalled.destroy();
    reader.close();
  });
});
