// A client that connects to the broker's TLS endpoint and never starts the handshake is cut off
// after authTimeoutMs and counted; the broker keeps serving, and close() does not wait on it.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Broker, HpfeedsClient, MemoryAuthStore } from '../../src/hpfeeds/index.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';

describe('hpfeeds TLS handshake timeout', () => {
  let cert: TestCertificate;
  let broker: Broker;
  let port: number;
  before(async () => {
    cert = makeTestCertificate();
    broker = new Broker({ authStore: new MemoryAuthStore([{ ident: 'ok', owner: 'o', secret: 'ok-secret', pubchans: [], subchans: ['c'] }]), authTimeoutMs: 500 });
    port = (await broker.listen(`tls:port=0:interface=127.0.0.1:cert=${cert.certPath}:key=${cert.keyPath}`)).port;
  });
  after(async () => {
    await broker?.close();
    cert?.cleanup();
  });

  it('closes a silent connection after the timeout and counts it; a real client still gets in', async () => {
    const silent = net.connect({ host: '127.0.0.1', port });
    silent.on('error', () => {});
    const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
    const timer = setTimeout(() => silent.destroy(new Error('not closed by the broker within 15 s')), 15_000);
    let failedByUs = false;
    silent.once('error', () => (failedByUs = true));
    await closed;
    clearTimeout(timer);
    assert.equal(failedByUs, false, 'the broker closed the silent connection');
    const metrics = await broker.registry.metrics();
    assert.match(metrics, /category="tls-handshake"[^\n]* 1/);

    const client = new HpfeedsClient({ host: '127.0.0.1', port, ident: 'ok', secret: 'ok-secret', reconnect: false, tls: { ca: cert.ca, servername: 'localhost' } });
    client.on('error', () => {});
    await client.connect();
    assert.ok(client.connected);
    await client.close();
  });
});
