import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalIp, CidrList, ipScope } from '../../src/analytics/ip.js';
import { normaliseEvent, type StoredEvent } from '../../src/analytics/record.js';

function ev(potType: string, eventType: string, data: Record<string, unknown>, id = 1): StoredEvent {
  return { id, node: 'node-a', potId: 'pot-1', potType, eventType, timestamp: Date.parse('2026-11-30T12:00:00Z'), data };
}

// cowrie JSON log lines (cowrie.json format, as cowrie 2.x writes them).
const COWRIE = {
  connect: {
    eventid: 'cowrie.session.connect', src_ip: '::ffff:45.148.10.242', src_port: 47628, dst_ip: '10.0.0.4', dst_port: 22,
    session: 'a4bd5d8c6b3e', protocol: 'ssh', message: 'New connection: 45.148.10.242:47628 (10.0.0.4:22) [session: a4bd5d8c6b3e]',
    sensor: 'hp1', timestamp: '2026-11-30T12:00:00.123456Z',
  },
  failed: {
    eventid: 'cowrie.login.failed', username: 'root', password: 'admin123', message: 'login attempt [root/admin123] failed',
    sensor: 'hp1', timestamp: '2026-11-30T12:00:01.000000Z', src_ip: '45.148.10.242', session: 'a4bd5d8c6b3e',
  },
  success: {
    eventid: 'cowrie.login.success', username: 'root', password: 'hunter2', message: 'login attempt [root/hunter2] succeeded',
    sensor: 'hp1', timestamp: '2026-11-30T12:00:02.000000Z', src_ip: '45.148.10.242', session: 'a4bd5d8c6b3e',
  },
  command: {
    eventid: 'cowrie.command.input', input: 'uname -a', message: 'CMD: uname -a', sensor: 'hp1',
    timestamp: '2026-11-30T12:00:03.000000Z', src_ip: '45.148.10.242', session: 'a4bd5d8c6b3e',
  },
  download: {
    eventid: 'cowrie.session.file_download', url: 'http://198.51.100.7/x.sh', outfile: 'var/lib/cowrie/downloads/0b6c',
    shasum: '0B6C9D5E6C2F0A58D1E2F2B6B0F4C3A9E8D7C6B5A4F3E2D1C0B9A8F7E6D5C4B3', destfile: '/tmp/x.sh',
    message: 'Downloaded URL (http://198.51.100.7/x.sh) with SHA-256 0b6c... to var/lib/cowrie/downloads/0b6c',
    sensor: 'hp1', timestamp: '2026-11-30T12:00:04.000000Z', src_ip: '45.148.10.242', session: 'a4bd5d8c6b3e',
  },
  closed: {
    eventid: 'cowrie.session.closed', duration: 16.2, message: 'Connection lost after 16 seconds', sensor: 'hp1',
    timestamp: '2026-11-30T12:00:16.000000Z', src_ip: '45.148.10.242', session: 'a4bd5d8c6b3e',
  },
};

test('cowrie JSON: hpfeeds-logger field names, folded source, per-event fields', () => {
  const c = normaliseEvent(ev('cowrie', 'cowrie.session.connect', COWRIE.connect));
  assert.equal(c.src_ip, '45.148.10.242', 'IPv4-mapped IPv6 folded');
  assert.equal(c.src_port, 47628);
  assert.equal(c.dest_ip, '10.0.0.4');
  assert.equal(c.dest_port, 22);
  assert.equal(c.session, 'a4bd5d8c6b3e');
  assert.equal(c.protocol, 'ssh');
  assert.equal(c.transport, 'tcp');
  assert.equal(c.signature, 'SSH session on cowrie honeypot');
  assert.equal(c.severity, 'high');
  assert.equal(c.vendor_product, 'Cowrie');
  assert.equal(c.command, null, 'the free-text message is not a command');

  const f = normaliseEvent(ev('cowrie', 'cowrie.login.failed', COWRIE.failed));
  assert.deepEqual([f.ssh_username, f.ssh_password, f.login], ['root', 'admin123', 'failed']);
  assert.equal(f.signature, 'SSH login attempted on cowrie honeypot');
  const s = normaliseEvent(ev('cowrie', 'cowrie.login.success', COWRIE.success));
  assert.deepEqual([s.ssh_username, s.ssh_password, s.login], ['root', 'hunter2', 'success']);

  const cmd = normaliseEvent(ev('cowrie', 'cowrie.command.input', COWRIE.command));
  assert.equal(cmd.command, 'uname -a');
  assert.equal(cmd.ssh_username, null);
  assert.equal(cmd.signature, 'command attempted on cowrie honeypot');

  const d = normaliseEvent(ev('cowrie', 'cowrie.session.file_download', COWRIE.download));
  assert.equal(d.url, 'http://198.51.100.7/x.sh');
  assert.equal(d.sha256, '0b6c9d5e6c2f0a58d1e2f2b6b0f4c3a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3', 'lower-cased hex');
  assert.equal(d.signature, 'URL download attempted on cowrie honeypot');

  const closed = normaliseEvent(ev('cowrie', 'cowrie.session.closed', COWRIE.closed));
  assert.equal(closed.session, 'a4bd5d8c6b3e');
  assert.equal(closed.url, null);
});

test('cowrie data under another event_type or pot type (real node text turned into cowrie JSON) is read by its eventid', () => {
  const r = normaliseEvent(ev('', 'status_message', { ...COWRIE.failed }));
  assert.equal(r.type, 'cowrie.login.failed');
  assert.equal(r.app, 'cowrie');
  assert.equal(r.login, 'failed');
  const telnet = normaliseEvent(ev('cowrie', 'cowrie.session.connect', { ...COWRIE.connect, protocol: 'telnet' }));
  assert.equal(telnet.signature, 'Telnet session on cowrie honeypot');
});

test('dionaea: hpfeeds connections and capture payloads, and the log_json form', () => {
  const conn = normaliseEvent(
    ev('dionaea', 'dionaea.connections', {
      connection_type: 'accept', connection_transport: 'tcp', connection_protocol: 'smbd',
      remote_host: '::ffff:185.220.101.4', remote_port: 51234, remote_hostname: '', local_host: '10.0.0.5', local_port: 445,
    }),
  );
  assert.deepEqual([conn.src_ip, conn.src_port, conn.dest_ip, conn.dest_port], ['185.220.101.4', 51234, '10.0.0.5', 445]);
  assert.equal(conn.protocol, 'smbd');
  assert.equal(conn.transport, 'tcp');
  assert.equal(conn.signature, 'Connection to Honeypot');
  assert.equal(conn.vendor_product, 'Dionaea');

  const cap = normaliseEvent(
    ev('dionaea', 'dionaea.capture', {
      url: 'http://203.0.113.50/mal.exe', daddr: '10.0.0.5', saddr: '203.0.113.50', dport: '445', sport: '40000',
      md5: 'D41D8CD98F00B204E9800998ECF8427E', sha512: 'ab'.repeat(64),
    }),
  );
  assert.equal(cap.src_ip, '203.0.113.50');
  assert.equal(cap.dest_port, 445, 'string ports parsed');
  assert.equal(cap.url, 'http://203.0.113.50/mal.exe');
  assert.equal(cap.md5, 'd41d8cd98f00b204e9800998ecf8427e');

  const log = normaliseEvent(
    ev('dionaea', 'connection', {
      connection: { protocol: 'mssqld', transport: 'tcp', type: 'accept' },
      src_ip: '198.51.100.23', src_port: 50000, dst_ip: '10.0.0.5', dst_port: 1433,
      credentials: { username: ['sa'], password: ['123'] },
    }),
  );
  assert.equal(log.protocol, 'mssqld');
  assert.equal(log.dest_port, 1433);
  assert.deepEqual([log.ssh_username, log.ssh_password, log.login], ['sa', '123', 'failed']);
});

test('generic PotEvent fields and unknown pots best-effort', () => {
  const g = normaliseEvent(
    ev('honeytrap', 'attack', { source_ip: '2001:DB8::1', source_port: 1, destination_port: 8080, transport: 'UDP', url: '/admin' }),
  );
  assert.equal(g.src_ip, '2001:db8::1');
  assert.equal(g.dest_port, 8080);
  assert.equal(g.transport, 'udp');
  assert.equal(g.url, '/admin');
  assert.equal(g.protocol, 'ip', "hpfeeds-logger's default when the pot names none");
  const login = normaliseEvent(ev('mypot', 'login_success', { ip: '8.8.4.4', user: 'admin', pass: 'admin' }));
  assert.deepEqual([login.src_ip, login.ssh_username, login.ssh_password, login.login], ['8.8.4.4', 'admin', 'admin', 'success']);
  const junk = normaliseEvent(ev('x', 'y', { src_ip: 'not an ip', src_port: 70000, dst_port: -1, md5: 'xyz' }));
  assert.equal(junk.src_ip, null);
  assert.equal(junk.src_port, null);
  assert.equal(junk.dest_port, null);
  assert.equal(junk.md5, null);
  const status = normaliseEvent(ev('cowrie', 'status_message', { message: 'New connection: 127.0.0.1:50218' }));
  assert.equal(status.src_ip, null);
});

test('addresses: mapped IPv6 folded, scopes labelled, CIDR lists match both families', () => {
  assert.equal(canonicalIp('::ffff:1.2.3.4'), '1.2.3.4');
  assert.equal(canonicalIp('::FFFF:1.2.3.4'), '1.2.3.4');
  assert.equal(canonicalIp('0:0:0:0:0:ffff:1.2.3.4'), '1.2.3.4');
  assert.equal(canonicalIp('fe80::1%eth0'), 'fe80::1');
  assert.equal(canonicalIp('1.2.3'), null);
  assert.equal(canonicalIp(42), null);
  assert.equal(ipScope('10.1.2.3'), 'private');
  assert.equal(ipScope('172.31.255.255'), 'private');
  assert.equal(ipScope('172.32.0.0'), 'public');
  assert.equal(ipScope('127.9.9.9'), 'loopback');
  assert.equal(ipScope('::1'), 'loopback');
  assert.equal(ipScope('fd00::5'), 'private');
  assert.equal(ipScope('192.0.2.1'), 'reserved');
  assert.equal(ipScope('2001:db8::1'), 'reserved');
  assert.equal(ipScope('8.8.8.8'), 'public');
  assert.equal(ipScope('2a00:1450::1'), 'public');
  const list = new CidrList(['# comment', '198.51.100.0/24 shodan', '2001:db8::/32', '8.8.8.8']);
  assert.equal(list.match('198.51.100.77'), 'shodan');
  assert.equal(list.match('198.51.101.1'), undefined);
  assert.equal(list.match('2001:db8:ffff::1'), '');
  assert.equal(list.match('8.8.8.8'), '');
  assert.equal(list.match('8.8.8.9'), undefined);
  assert.throws(() => new CidrList(['10.0.0.0/33']), /prefix length/);
  assert.throws(() => new CidrList(['nonsense']), /not an IP address/);
});

test('alias precedence: the most specific alias with a value wins, whatever the key order; empty values fall through', () => {
  // Less specific aliases first in the object: the order of the keys must not matter.
  const r = normaliseEvent(
    ev('mypot', 'attack', { ip: '9.9.9.9', client_ip: '8.8.8.8', src_ip: '', source_ip: '1.1.1.1', cmd: 'id', command: null, input: 'ls', sid: 's2', session: 's1' }),
  );
  assert.equal(r.src_ip, '1.1.1.1', "src_ip is empty: source_ip is the next alias, ahead of client_ip and ip");
  assert.equal(r.command, 'id', 'command is null: cmd comes before input');
  assert.equal(r.session, 's1');
  // Only the event's own keys count: a key on the prototype is not a field of the event.
  const inherited = Object.create({ src_ip: '7.7.7.7' }) as Record<string, unknown>;
  inherited.ip = '4.4.4.4';
  assert.equal(normaliseEvent(ev('mypot', 'attack', inherited)).src_ip, '4.4.4.4');
  // A JSON `__proto__` key is an own key like any other (JSON.parse makes it one), and no alias.
  const parsed = JSON.parse('{"__proto__":{"src_ip":"6.6.6.6"},"saddr":"5.5.5.5"}') as Record<string, unknown>;
  assert.equal(normaliseEvent(ev('mypot', 'attack', parsed)).src_ip, '5.5.5.5');
});
