import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normaliseEvent, sharedNormaliser, type StoredEvent } from '../../src/analytics/index.js';
import { cefValue, formatCef, formatJson, formatSplunk } from '../../src/outputs/format.js';
import { recordsOf } from '../../src/outputs/records.js';
import { parseCef } from './cef-parser.js';

const T = Date.UTC(2026, 11, 1, 2, 3, 4, 567);

function event(eventType: string, data: Record<string, unknown>, potType = 'cowrie'): StoredEvent {
  return { id: 42, node: 'node-a', potId: 'pot-1', potType, eventType, timestamp: T, data };
}

const login = event('cowrie.login.failed', {
  eventid: 'cowrie.login.failed', src_ip: '203.0.113.7', src_port: 40000, dst_ip: '10.0.0.1', dst_port: 22,
  username: 'root', password: 'pa"ss=wo\\rd|x\ny', session: 'abc', protocol: 'ssh',
});

describe('json format', () => {
  it('puts the UTC ISO timestamp first and keeps every record field', () => {
    const line = formatJson(normaliseEvent(login));
    assert.ok(line.startsWith('{"timestamp":"2026-12-01T02:03:04.567Z",'), line);
    const o = JSON.parse(line) as Record<string, unknown>;
    assert.equal(o.src_ip, '203.0.113.7');
    assert.equal(o.dest_port, 22);
    assert.equal(o.ssh_password, 'pa"ss=wo\\rd|x\ny');
    assert.equal(o.type, 'cowrie.login.failed');
    assert.equal(o.sensor, 'node-a');
    assert.equal(o.md5, null);
    assert.equal(Object.keys(o).filter((k) => k === 'timestamp').length, 1);
  });
});

describe('splunk format', () => {
  it('writes key="value" pairs with src/dest names, drops empty values, escapes quotes', () => {
    const line = formatSplunk(normaliseEvent(login));
    assert.ok(line.startsWith('timestamp="2026-12-01T02:03:04.567Z", '), line);
    assert.ok(line.includes('src="203.0.113.7"'));
    assert.ok(line.includes('dest="10.0.0.1"'));
    assert.ok(!line.includes('src_ip='));
    assert.ok(!line.includes('dest_ip='));
    assert.ok(!line.includes('md5='), 'null values are dropped');
    assert.ok(!line.includes('\n'));
    // A strict reader of the pairs gets every value back.
    const pairs = new Map<string, string>();
    const re = /([a-z_]+)="((?:[^"\\]|\\.)*)"(?:, |$)/gy;
    let m: RegExpExecArray | null;
    let end = 0;
    while ((m = re.exec(line)) !== null) {
      pairs.set(m[1]!, m[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c)));
      end = re.lastIndex;
    }
    assert.equal(end, line.length, 'the whole line parses as pairs');
    assert.equal(pairs.get('ssh_password'), 'pa"ss=wo\\rd|x\ny');
    assert.equal(pairs.get('dest_port'), '22');
    assert.equal(pairs.get('severity'), 'high');
  });
});

describe('cef format', () => {
  it('writes a CEF:0 header naming Apiary, the classic severity and labelled custom strings', () => {
    const c = parseCef(formatCef(normaliseEvent(login)));
    assert.equal(c.version, '0');
    assert.equal(c.vendor, 'Apiary');
    assert.equal(c.product, 'Apiary');
    assert.equal(c.signatureId, 'cowrie.login.failed');
    assert.equal(c.name, 'SSH login attempted on cowrie honeypot');
    assert.equal(c.severity, '10');
    assert.equal(c.ext.get('src'), '203.0.113.7');
    assert.equal(c.ext.get('spt'), '40000');
    assert.equal(c.ext.get('dst'), '10.0.0.1');
    assert.equal(c.ext.get('dpt'), '22');
    assert.equal(c.ext.get('proto'), 'tcp');
    assert.equal(c.ext.get('deviceDirection'), '0');
    assert.equal(c.ext.get('cs1'), 'Cowrie');
    assert.equal(c.ext.get('cs1Label'), 'vendor_product');
    assert.equal(c.ext.get('cs4'), 'root');
    assert.equal(c.ext.get('cs4Label'), 'ssh_username');
    assert.equal(c.ext.get('cs5'), 'pa"ss=wo\\rd|x\ny', 'escaped =, \\ and newline come back exactly');
    assert.equal(c.ext.get('rt'), String(T));
    assert.equal(c.ext.has('cs6'), false, 'absent fields are left out');
  });

  it('escapes | and \\ in the header and line breaks in it become spaces', () => {
    const r = normaliseEvent(event('x|y\\z', { src_ip: '198.51.100.1', signature: 'bad|sig\\n\r\nx' }, 'custom'));
    const line = formatCef(r, { vendor: 'A|B', product: 'P\\Q', version: '1' });
    const c = parseCef(line);
    assert.equal(c.vendor, 'A|B');
    assert.equal(c.product, 'P\\Q');
    assert.equal(c.signatureId, 'x|y\\z');
    assert.equal(c.name, 'bad|sig\\n x');
    assert.equal(c.severity, '10');
  });

  it('maps severities high 10, medium 5, low 3', () => {
    for (const [sev, n] of [['high', '10'], ['medium', '5'], ['low', '3']] as const) {
      const r = normaliseEvent(event('e', { src_ip: '198.51.100.1', severity: sev }, 'custom'));
      assert.equal(parseCef(formatCef(r)).severity, n);
    }
    const r = normaliseEvent(event('e', {}, 'custom'));
    assert.equal(parseCef(formatCef({ ...r, severity: 'informational' as never })).severity, '1');
  });

  it('keeps values with spaces, = and trailing backslashes parseable; the file prefix is the event time', () => {
    const r = normaliseEvent(event('cowrie.command.input', { eventid: 'cowrie.command.input', input: 'echo a=b c=d \\', src_ip: '203.0.113.9' }));
    const line = formatCef(r, undefined, true);
    assert.ok(line.startsWith('2026-12-01T02:03:04.567Z CEF:0|'), line);
    const c = parseCef(line);
    assert.equal(c.ext.get('cs6'), 'echo a=b c=d \\');
    assert.equal(c.ext.get('cs6Label'), 'command');
    assert.equal(cefValue('a\rb'), 'a\\rb');
  });

  it('the test parser refuses unescaped separators (so the checks above can fail)', () => {
    assert.throws(() => parseCef('CEF:0|a|b|c|d|e|10|cs1=a=b'));
    assert.throws(() => parseCef('CEF:0|a|b\\x|c|d|e|10|'));
    assert.throws(() => parseCef('CEF:0|a|b|c|d|e|10|cs1=a\nb'));
  });
});

describe('cowrie session summaries', () => {
  it('expand to one record per credential, URL, command, unknown command and hash', () => {
    const sha = 'a'.repeat(64);
    const rs = recordsOf(
      event('cowrie.sessions', {
        session: 's1', peerIP: '203.0.113.5', peerPort: 5555, hostIP: '10.0.0.2', hostPort: 22, protocol: 'ssh',
        loggedin: ['root', '1234'], credentials: [['admin', 'admin'], ['root', '1234']],
        commands: ['uname -a', 'wget http://x/y'], unknownCommands: ['foo'], urls: ['http://x/y'], hashes: [sha],
      }),
      normaliseEvent,
    );
    assert.deepEqual(
      rs.map((r) => r.signature),
      [
        'SSH session on cowrie honeypot',
        'SSH login attempted on cowrie honeypot',
        'SSH login attempted on cowrie honeypot',
        'URL download attempted on cowrie honeypot',
        'command attempted on cowrie honeypot',
        'command attempted on cowrie honeypot',
        'unknown command attempted on cowrie honeypot',
        'file download attempted on cowrie honeypot',
      ],
    );
    assert.ok(rs.every((r) => r.src_ip === '203.0.113.5' && r.dest_port === 22 && r.type === 'cowrie.sessions'));
    assert.deepEqual([rs[1]!.ssh_username, rs[1]!.login, rs[2]!.ssh_username, rs[2]!.login], ['admin', 'failed', 'root', 'success']);
    assert.equal(rs[3]!.url, 'http://x/y');
    assert.equal(rs[5]!.command, 'wget http://x/y');
    assert.equal(rs[7]!.sha256, sha);
  });

  it('other events give one record each', () => {
    assert.equal(recordsOf(login, normaliseEvent).length, 1);
  });

  it('share one normalisation per event object with other readers, and never change the shared record', () => {
    // A kippo telnet summary: its session record differs from the generic normalisation.
    const summary = event('kippo.sessions', { protocol: 'telnet', session: 's2', peerIP: '203.0.113.9', hostPort: 23, credentials: [['a', 'b']], commands: ['id'] }, 'kippo');
    const shared = sharedNormaliser();
    const first = shared(summary);
    const before = structuredClone(first);
    assert.deepEqual(before, normaliseEvent(summary));
    const rs = recordsOf(summary, shared);
    assert.equal(rs.length, 3);
    assert.equal(rs[0]!.signature, 'Telnet session on kippo honeypot');
    assert.equal(shared(summary), first, 'the same event object gets the same record');
    assert.deepEqual(first, before, 'expanding the session left the shared record as it was');
    assert.notEqual(shared({ ...summary }), first, 'another event object is normalised on its own');
  });
});
