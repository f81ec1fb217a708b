// Syslog outputs against a real rsyslogd (UDP and TCP, octet-counted) and a TLS receiver in the
// test that parses RFC 6587 octet-counting strictly.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { normaliseEvent } from '../../src/analytics/index.js';
import { createOutputs, parseOutputs, type Outputs } from '../../src/outputs/index.js';
import { startTestRsyslog, type TestRsyslog } from '../helpers/rsyslog.js';
import { makeTestCertificate } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';
import { parseCef } from './cef-parser.js';
import { commandEvent, seqOf, waitFor } from './helpers.js';

const logger = pino({ level: 'silent' });
let rs: TestRsyslog;
const tmp = tempDir('apiary-outputs-syslog-');
before(async () => {
  rs = await startTestRsyslog();
});
after(async () => {
  await rs?.dispose();
  tmp.cleanup();
});

const fast = { retry: { initialMs: 50, maxMs: 400 }, timeoutMs: 2000 };
const seqs = (app: string) => rs.lines().filter((l) => l.appName === app).map((l) => seqOf(l.msg));
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

function outputsWith(cfg: unknown[], dataDir: string, registry = new Registry()): Outputs {
  return createOutputs({ outputs: parseOutputs(JSON.stringify(cfg), 'test'), dataDir, registry, logger, normalise: normaliseEvent });
}

/** Reads octet-counted frames strictly: `<digits> <exactly that many bytes>`, nothing else. */
function octetFrames(sock: TLSSocket, onFrame: (msg: string) => void, onError: (e: Error) => void): void {
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const sp = buf.indexOf(0x20);
      if (sp < 0) {
        if (buf.length > 10) onError(new Error('no length prefix'));
        return;
      }
      const len = buf.subarray(0, sp).toString('latin1');
      if (!/^[1-9]\d{0,8}$/.test(len)) return onError(new Error(`bad frame length ${JSON.stringify(len)}`));
      if (buf.length < sp + 1 + Number(len)) return;
      onFrame(buf.subarray(sp + 1, sp + 1 + Number(len)).toString('utf8'));
      buf = buf.subarray(sp + 1 + Number(len));
    }
  });
}

describe('syslog outputs', () => {
  it('deliver RFC 5424 messages over UDP and TCP to rsyslogd, and TLS with octet-counting', async () => {
    const cert = makeTestCertificate();
    const tlsFrames: string[] = [];
    const errors: Error[] = [];
    const server = createServer({ cert: cert.cert, key: cert.key }, (s) => octetFrames(s, (m) => tlsFrames.push(m), (e) => errors.push(e)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const tlsPort = (server.address() as { port: number }).port;
    const outputs = outputsWith(
      [
        { name: 'udp', type: 'syslog', transport: 'udp', host: '127.0.0.1', port: rs.udpPort, format: 'cef', facility: 'local3', hostname: 'test-host', appName: 'apiary-udp', ...fast },
        { name: 'tcp', type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: rs.tcpPort, format: 'json', hostname: 'test-host', appName: 'apiary-tcp', ...fast },
        { name: 'tls', type: 'syslog', transport: 'tls', host: '127.0.0.1', port: tlsPort, format: 'splunk', appName: 'apiary-tls', tls: { ca: cert.caPath, servername: 'localhost' }, ...fast },
      ],
      join(tmp.path, 'a'),
    );
    try {
      for (let b = 0; b < 4; b++) outputs.handle(range(b * 5, b * 5 + 5).map((i) => commandEvent(i)));
      await waitFor(() => seqs('apiary-udp').length === 20 && seqs('apiary-tcp').length === 20 && tlsFrames.length === 20, 15_000, 'all messages');
      assert.deepEqual(seqs('apiary-tcp'), range(0, 20));
      assert.deepEqual([...seqs('apiary-udp')].sort((a, b) => a - b), range(0, 20));
      const udp = rs.lines().find((l) => l.appName === 'apiary-udp')!;
      assert.equal(udp.version, '1');
      assert.equal(udp.facility, 19, 'local3');
      assert.equal(udp.severity, 4, 'high → warning');
      assert.equal(udp.hostname, 'test-host');
      assert.equal(udp.procId, String(process.pid));
      assert.equal(udp.msgId, '-');
      assert.equal(udp.structuredData, '-');
      const cef = parseCef(udp.msg);
      assert.equal(cef.prefix, '', 'no time prefix in syslog: the header has it');
      assert.equal(cef.ext.get('cs6'), `echo ${seqOf(udp.msg)} a=b|c\\d`);
      assert.equal(udp.timestamp, new Date(commandEvent(seqOf(udp.msg)).timestamp).toISOString());
      const tcp = rs.lines().find((l) => l.appName === 'apiary-tcp')!;
      assert.equal(JSON.parse(tcp.msg).command, 'echo 0 a=b|c\\d');
      assert.equal(tcp.facility, 1, 'user');
      assert.deepEqual(errors, []);
      assert.match(tlsFrames[0]!, /^<12>1 2026-12-01T02:00:00\.000Z \S+ apiary-tls \d+ - - timestamp="2026-12-01T02:00:00.000Z", /);
      assert.deepEqual(tlsFrames.map(seqOf), range(0, 20));
    } finally {
      await outputs.close();
      server.close();
      cert.cleanup();
    }
  });

  it('keeps records while rsyslogd is down and delivers every one, in order, when it is back', async () => {
    const registry = new Registry();
    const outputs = outputsWith([{ name: 'tcp2', type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: rs.tcpPort, appName: 'apiary-outage', ...fast }], join(tmp.path, 'b'), registry);
    try {
      for (let b = 0; b < 5; b++) outputs.handle(range(b * 20, b * 20 + 20).map((i) => commandEvent(i)));
      await waitFor(() => seqs('apiary-outage').length === 100, 15_000, 'first 100');
      await rs.stop();
      await new Promise((r) => setTimeout(r, 300));
      for (let b = 5; b < 15; b++) outputs.handle(range(b * 20, b * 20 + 20).map((i) => commandEvent(i)));
      await waitFor(async () => ((await registry.getSingleMetric('apiary_output_failed_total')!.get()).values[0]?.value ?? 0) >= 200, 10_000, 'failed attempts');
      assert.equal(outputs.backlog('tcp2'), 200);
      const backlogGauge = (await registry.getSingleMetric('apiary_output_backlog_records')!.get()).values[0]!;
      assert.equal(backlogGauge.value, 200);
      const lag = (await registry.getSingleMetric('apiary_output_lag_seconds')!.get()).values[0]!;
      assert.ok(lag.value > 0, 'lag grows while the receiver is down');
      await new Promise((r) => setTimeout(r, 1000));
      await rs.start();
      await waitFor(() => seqs('apiary-outage').length >= 300, 15_000, 'all 300 after the receiver returned');
      assert.deepEqual(seqs('apiary-outage'), range(0, 300));
      await waitFor(() => outputs.backlog('tcp2') === 0, 5000, 'empty backlog');
      const sent = (await registry.getSingleMetric('apiary_output_sent_total')!.get()).values[0]!;
      assert.equal(sent.value, 300);
    } finally {
      await outputs.close();
    }
  });

  it('delivers a backlog left by a stopped core after the next start', async () => {
    const dataDir = join(tmp.path, 'c');
    const cfg = [{ name: 'tcp3', type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: rs.tcpPort, appName: 'apiary-restart', ...fast }];
    await rs.stop();
    const first = outputsWith(cfg, dataDir);
    for (let b = 0; b < 5; b++) first.handle(range(b * 10, b * 10 + 10).map((i) => commandEvent(i)));
    assert.equal(first.backlog('tcp3'), 50);
    await new Promise((r) => setTimeout(r, 200));
    await first.close();
    await rs.start();
    const second = outputsWith(cfg, dataDir);
    try {
      assert.equal(second.backlog('tcp3'), 50, 'the backlog survived the restart');
      second.handle(range(50, 60).map((i) => commandEvent(i)));
      await waitFor(() => seqs('apiary-restart').length >= 60, 15_000, 'backlog delivered after restart');
      assert.deepEqual(seqs('apiary-restart'), range(0, 60));
    } finally {
      await second.close();
    }
  });
});
