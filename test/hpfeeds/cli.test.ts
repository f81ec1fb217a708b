import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { formatPayload, runHpfeedsCli } from '../../src/hpfeeds/cli.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';
import { key, startBroker, waitFor, type TestBroker } from './harness.js';

class Sink {
  text = '';
  write(chunk: string) {
    this.text += chunk;
    return true;
  }
}

function io(stdin: string | Buffer = '', signal?: AbortSignal) {
  return { stdout: new Sink(), stderr: new Sink(), stdin: Readable.from([Buffer.from(stdin)]), signal };
}

const KEYS = [key('sensor', 'sensor-secret', ['events', 'raw'], []), key('reader', 'reader-secret', [], ['events', 'raw'])];

describe('hpfeeds CLI', () => {
  let plain: TestBroker;
  let secure: TestBroker;
  let cert: TestCertificate;
  const dir = tempDir('apiary-hpfeeds-cli-');
  before(async () => {
    cert = makeTestCertificate();
    plain = await startBroker({ keys: KEYS });
    secure = await startBroker({ keys: KEYS, endpoint: `tls:port=0:interface=127.0.0.1:cert=${cert.certPath}:key=${cert.keyPath}` });
  });
  after(async () => {
    await Promise.all([plain.broker.close(), secure.broker.close()]);
    cert.cleanup();
    dir.cleanup();
  });

  const common = (port: number, ident = 'sensor', secret = 'sensor-secret') => ['--host', '127.0.0.1', '-p', String(port), '-i', ident, '-s', secret];

  it('subscribe prints reference-style lines for text and binary payloads; publish sends args and files', async () => {
    const abort = new AbortController();
    const subIo = io('', abort.signal);
    const sub = runHpfeedsCli(['subscribe', ...common(plain.port, 'reader', 'reader-secret'), '-c', 'events', '-c', 'raw'], subIo);
    await waitFor(eventually(() => plain.metrics(), /subscriptions\{ident="reader",chan="raw"\} 1/));

    const pub1 = io();
    assert.equal(await runHpfeedsCli(['publish', ...common(plain.port), '-c', 'events', 'hello', 'world'], pub1), 0, pub1.stderr.text);
    assert.match(pub1.stderr.text, /\[feedcli\] connected to testbroker/);

    const file = join(dir.path, 'blob.bin');
    writeFileSync(file, Buffer.from([0, 1, 2, 0xff]));
    assert.equal(await runHpfeedsCli(['publish', ...common(plain.port), '-c', 'raw', '--file', file], io()), 0);
    assert.equal(await runHpfeedsCli(['publish', ...common(plain.port), '-c', 'events', '--file', '-'], io('{"from":"stdin"}')), 0);
    assert.equal(await runHpfeedsCli(['sendfile', ...common(plain.port), '-c', 'raw', file], io()), 0);

    await waitFor(() => subIo.stdout.text.split('\n').length > 4);
    abort.abort();
    assert.equal(await sub, 0);
    assert.deepEqual(subIo.stdout.text.trimEnd().split('\n'), [
      '[feedcli] publish to events by sensor: hello world',
      '[feedcli] publish to raw by sensor: base64:AAEC/w==',
      '[feedcli] publish to events by sensor: {"from":"stdin"}',
      '[feedcli] publish to raw by sensor: base64:AAEC/w==',
    ]);
  });

  it('works over TLS with --tlscert and stops after --count messages', async () => {
    const subIo = io();
    const sub = runHpfeedsCli(['subscribe', ...common(secure.port, 'reader', 'reader-secret'), '--tls', '--tlscert', cert.caPath, '--servername', 'localhost', '-c', 'events', '-n', '1'], subIo);
    await waitFor(eventually(() => secure.metrics(), /subscriptions\{ident="reader",chan="events"\} 1/));
    const pub = io();
    assert.equal(await runHpfeedsCli(['publish', ...common(secure.port), '--tlscert', cert.caPath, '--servername', 'localhost', '-c', 'events', 'secure hello'], pub), 0, pub.stderr.text);
    assert.equal(await sub, 0);
    assert.equal(subIo.stdout.text, '[feedcli] publish to events by sensor: secure hello\n');
  });

  it('reports broker errors with a non-zero exit', async () => {
    const denied = io();
    assert.equal(await runHpfeedsCli(['publish', ...common(plain.port), '-c', 'forbidden', 'x'], denied), 1);
    assert.match(denied.stderr.text, /Error message from broker: Authkey not allowed to pub here. ident=sensor, chan=forbidden/);

    const badSecret = io();
    assert.equal(await runHpfeedsCli(['subscribe', ...common(plain.port, 'reader', 'wrong'), '-c', 'events'], badSecret), 1);
    assert.match(badSecret.stderr.text, /Authentication failed for reader/);

    const refused = io();
    assert.equal(await runHpfeedsCli(['publish', '--host', '127.0.0.1', '-p', '1', '-i', 'a', '-s', 'b', '-c', 'c', 'x'], refused), 1);
    assert.match(refused.stderr.text, /ECONNREFUSED/);
  });

  it('validates its arguments', async () => {
    for (const argv of [[], ['frobnicate'], ['publish', '-i', 'a', '-s', 'b', '-c', 'c'], ['subscribe', '-s', 'b', '-c', 'c'], ['subscribe', '-i', 'a', '-s', 'b'], ['subscribe', '-i', 'a', '-s', 'b', '-c', 'c', '-p', 'x'], ['subscribe', '--bogus']]) {
      const out = io();
      assert.equal(await runHpfeedsCli(argv, out), 2, argv.join(' '));
      assert.match(out.stderr.text, /usage: hpfeeds/);
    }
    const help = io();
    assert.equal(await runHpfeedsCli(['--help'], help), 0);
    assert.match(help.stdout.text, /\[feedcli\] publish to CHANNEL by IDENT: PAYLOAD/);
  });

  it('formats payloads losslessly on one line', () => {
    assert.equal(formatPayload(Buffer.from('plain text\twith tab')), 'plain text\twith tab');
    assert.equal(formatPayload(Buffer.from('two\nlines')), `base64:${Buffer.from('two\nlines').toString('base64')}`);
    assert.equal(formatPayload(Buffer.from([0xc3, 0x28])), 'base64:wyg=');
    assert.equal(formatPayload(Buffer.from('ünïcode')), 'ünïcode');
  });
});

/** Turns an async probe into the sync predicate waitFor expects (last result wins). */
function eventually(probe: () => Promise<string>, pattern: RegExp): () => boolean {
  let ok = false;
  let inFlight = false;
  return () => {
    if (!inFlight) {
      inFlight = true;
      void probe().then((text) => {
        ok = pattern.test(text);
        inFlight = false;
      });
    }
    return ok;
  };
}
