// cowrie's rendered messages (as the real HoneyBee node forwards them) back into cowrie's fields.
// Example lines are cowrie 2.4's formats filled in the way cowrie fills them; the first ones are
// verbatim from the real node (shared/fixtures/honeybee-node-cowrie-session.ndjson).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseCowrieText } from '../../src/events/cowrie-text.js';
import { COWRIE_UNPARSED_EVENT_TYPE, CowrieTextSessions } from '../../src/events/cowrie-text-sessions.js';

const SHA = '941aa25891abb1904acd35fc7322f776d8968db671e985cbe1c9a18b4c2bb9a3';

const CASES: [string, Record<string, unknown>][] = [
  // verbatim from the real node
  [
    'New connection: 127.0.0.1:50218 (127.0.0.1:30023) [session: 695f09473589]',
    { eventid: 'cowrie.session.connect', src_ip: '127.0.0.1', src_port: 50218, dst_ip: '127.0.0.1', dst_port: 30023, session: '695f09473589' },
  ],
  ['login attempt [root/123456] failed', { eventid: 'cowrie.login.failed', username: 'root', password: '123456' }],
  ['login attempt [root/hunter2] succeeded', { eventid: 'cowrie.login.success', username: 'root', password: 'hunter2' }],
  ['CMD: cat /etc/passwd | head -2', { eventid: 'cowrie.command.input', input: 'cat /etc/passwd | head -2' }],
  [
    `Closing TTY Log: var/lib/cowrie/tty/${SHA} after 9 seconds`,
    { eventid: 'cowrie.log.closed', ttylog: `var/lib/cowrie/tty/${SHA}`, duration: 9, shasum: SHA },
  ],
  ['Connection lost after 16 seconds', { eventid: 'cowrie.session.closed', duration: 16 }],
  // the other cowrie formats
  [
    'New connection: 2001:db8::7:41234 (10.0.0.5:2222) [session: 0a1b2c3d4e5f]',
    { eventid: 'cowrie.session.connect', src_ip: '2001:db8::7', src_port: 41234, dst_ip: '10.0.0.5', dst_port: 2222, session: '0a1b2c3d4e5f' },
  ],
  ['login attempt [admin/pa/ss]word] failed', { eventid: 'cowrie.login.failed', username: 'admin', password: 'pa/ss]word' }],
  ["login attempt [b'root'/b'toor'] succeeded", { eventid: 'cowrie.login.success', username: 'root', password: 'toor' }],
  ['login attempt [root] succeeded', { eventid: 'cowrie.login.success', username: 'root' }],
  ['CMD: ', { eventid: 'cowrie.command.input', input: '' }],
  ['Command found: uname -a', { eventid: 'cowrie.command.success', input: 'uname -a' }],
  ['Command not found: ./x.sh', { eventid: 'cowrie.command.failed', input: './x.sh' }],
  ['Opening TTY Log: var/lib/cowrie/tty/20240101-120000-abc-0i.log', { eventid: 'cowrie.log.open', ttylog: 'var/lib/cowrie/tty/20240101-120000-abc-0i.log' }],
  [
    'Closing TTY Log: var/lib/cowrie/tty/20240101-120000-abc-0i.log after 3.517204 seconds',
    { eventid: 'cowrie.log.closed', ttylog: 'var/lib/cowrie/tty/20240101-120000-abc-0i.log', duration: 3.517204 },
  ],
  ['Connection lost after 16250 milliseconds', { eventid: 'cowrie.session.closed', duration: 16.25, duration_ms: 16250 }],
  ['Terminal Size: 80 24', { eventid: 'cowrie.client.size', width: 80, height: 24 }],
  ['Remote SSH version: SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6', { eventid: 'cowrie.client.version', version: 'SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6' }],
  ['SSH client hassh fingerprint: ec7378c1a92f5a8dde7e8b7a1ddf33d1', { eventid: 'cowrie.client.kex', hassh: 'ec7378c1a92f5a8dde7e8b7a1ddf33d1' }],
  ['request_env: LANG=en_US.UTF-8', { eventid: 'cowrie.client.var', name: 'LANG', value: 'en_US.UTF-8' }],
  [
    'direct-tcp connection request to 93.184.216.34:443 from 127.0.0.1:58234',
    { eventid: 'cowrie.direct-tcpip.request', dst_ip: '93.184.216.34', dst_port: 443, src_ip: '127.0.0.1', src_port: 58234 },
  ],
  [
    'redirected direct-tcp connection request from 127.0.0.1:58234 to 93.184.216.34:25 to 10.0.0.9:2525',
    { eventid: 'cowrie.direct-tcpip.redirect', src_ip: '127.0.0.1', src_port: 58234, dst_ip: '93.184.216.34', dst_port: 25, new_ip: '10.0.0.9', new_port: 2525 },
  ],
  [
    'tunneled direct-tcp connection request 127.0.0.1:58234->93.184.216.34:80 to 10.0.0.9:8080',
    { eventid: 'cowrie.direct-tcpip.tunnel', src_ip: '127.0.0.1', src_port: 58234, dst_ip: '93.184.216.34', dst_port: 80, new_ip: '10.0.0.9', new_port: 8080 },
  ],
  [
    "discarded direct-tcp forward request 0 to 93.184.216.34:80 with data b'GET / HTTP/1.1\\r\\n'",
    { eventid: 'cowrie.direct-tcpip.data', id: '0', dst_ip: '93.184.216.34', dst_port: 80, data: "b'GET / HTTP/1.1\\r\\n'" },
  ],
  ["sending via tunnel proxy b'\\x00\\x01'", { eventid: 'cowrie.tunnelproxy-tcpip.data', data: "b'\\x00\\x01'" }],
  [
    `Downloaded URL (http://198.51.100.7/x.sh) with SHA-256 ${SHA} to var/lib/cowrie/downloads/${SHA}`,
    { eventid: 'cowrie.session.file_download', url: 'http://198.51.100.7/x.sh', shasum: SHA, outfile: `var/lib/cowrie/downloads/${SHA}` },
  ],
  [
    'Attempt to download file(s) from URL (http://198.51.100.7/a (1).sh) failed',
    { eventid: 'cowrie.session.file_download.failed', url: 'http://198.51.100.7/a (1).sh' },
  ],
  [
    `Saved stdin contents with SHA-256 ${SHA} to var/lib/cowrie/downloads/${SHA}`,
    { eventid: 'cowrie.session.file_download', shasum: SHA, outfile: `var/lib/cowrie/downloads/${SHA}` },
  ],
  [
    `Saved redir contents with SHA-256 ${SHA} to var/lib/cowrie/downloads/${SHA}`,
    { eventid: 'cowrie.session.file_download', shasum: SHA, outfile: `var/lib/cowrie/downloads/${SHA}` },
  ],
  [
    `SCP Uploaded file "bot.sh" to var/lib/cowrie/downloads/${SHA}`,
    { eventid: 'cowrie.session.file_upload', filename: 'bot.sh', outfile: `var/lib/cowrie/downloads/${SHA}`, shasum: SHA },
  ],
  [
    `SFTP Uploaded file "a \\"b\\".bin" to var/lib/cowrie/downloads/${SHA}`,
    { eventid: 'cowrie.session.file_upload', filename: 'a \\"b\\".bin', outfile: `var/lib/cowrie/downloads/${SHA}`, shasum: SHA },
  ],
  ['INPUT (passwd): hunter2', { eventid: 'cowrie.command.success', realm: 'passwd', input: 'hunter2' }],
  ['INPUT (cat): hello world', { eventid: 'cowrie.session.input', realm: 'cat', input: 'hello world' }],
  ['INPUT (crontab): * * * * * /tmp/x', { eventid: 'cowrie.command.input', realm: 'crontab', input: '* * * * * /tmp/x' }],
  ['INPUT (scp): C0644 12 bot.sh', { eventid: 'cowrie.session.file_download', realm: 'scp', input: 'C0644 12 bot.sh' }],
  [
    'public key attempt for user root of type ssh-ed25519 with fingerprint 5c:0e:9b:1f:aa:42',
    { eventid: 'cowrie.client.fingerprint', username: 'root', type: 'ssh-ed25519', fingerprint: '5c:0e:9b:1f:aa:42' },
  ],
  ['Lost connection with the pool backend: id 3', { eventid: 'cowrie.proxy.client_disconnect', vm_id: '3' }],
  ["Lost connection with the proxy's backend: 10.0.0.9:22", { eventid: 'cowrie.proxy.client_disconnect', honey_ip: '10.0.0.9', honey_port: 22 }],
];

describe('parseCowrieText', () => {
  for (const [line, want] of CASES) {
    it(`reads ${JSON.stringify(line.slice(0, 60))}`, () => {
      assert.deepEqual(parseCowrieText(line), want);
    });
  }

  it('returns undefined for text that is no cowrie format', () => {
    for (const line of [
      '',
      'CMD:uname',
      'New connection: nonsense',
      'New connection: 1.2.3.4:99999 (1.2.3.4:22) [session: x]',
      'login attempt [root/123456] maybe',
      'Connection lost after a while',
      'Closing TTY Log: x after some seconds',
      'Terminal Size: wide tall',
      'Status: Running - Honeypot started',
      'Downloaded URL (http://x) to y',
      'Attempt to download file(s) from URL (http://x)',
      'INPUT cat hello',
      'request_env: LANG',
      'averyveryveryverylongfirstword and more',
    ]) {
      assert.equal(parseCowrieText(line), undefined, line);
    }
  });

  it('survives fuzzed text: never throws, stays fast on long adversarial lines', () => {
    const prefixes = CASES.map(([l]) => l.slice(0, Math.max(1, l.indexOf(' ') + 1)));
    const alphabet = ' :/[]()<>"\'-.0123456789abcdefSHA-256 to after seconds with fingerprint of type \u0000\u00e9\ud83d\ude00\n\t';
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      let line = rand(3) === 0 ? '' : prefixes[rand(prefixes.length)]!;
      const len = rand(80);
      for (let j = 0; j < len; j++) line += alphabet[rand(alphabet.length)];
      const out = parseCowrieText(line);
      if (out !== undefined) assert.equal(typeof out.eventid, 'string');
    }
    // Inputs built to make backtracking expressions go quadratic: each must parse in linear time.
    const big = 200_000;
    const hostile = [
      'New connection: ' + 'a:1'.repeat(big / 3) + ' (',
      'public key attempt for user ' + ' of type x'.repeat(big / 10),
      'direct-tcp connection request to ' + '1:1 from '.repeat(big / 9),
      'Downloaded URL (' + ') with SHA-256 '.repeat(big / 15),
      'login attempt [' + '/'.repeat(big),
      'Closing TTY Log: ' + ' after '.repeat(big / 7) + '9 seconds',
      "discarded direct-tcp forward request 0 to 1.2.3.4:80" + ' with data '.repeat(big / 11),
    ];
    // CPU time, not wall time: a loaded machine can deschedule the test longer than parsing takes.
    const cpu = process.cpuUsage();
    for (const line of hostile) parseCowrieText(line);
    const used = process.cpuUsage(cpu);
    const ms = (used.user + used.system) / 1000;
    assert.ok(ms < 2000, `hostile lines took ${ms.toFixed(0)} ms of CPU`);
  });
});

describe('CowrieTextSessions', () => {
  const T0 = 1_700_000_000_000;

  it('gives every line of a session its session and src_ip, in cowrie JSON shape, and keeps the text', () => {
    const s = new CowrieTextSessions();
    const connect = s.event('n1', 'vm', 'New connection: 127.0.0.1:50218 (127.0.0.1:30023) [session: 695f09473589]', T0);
    assert.equal(connect.eventType, 'cowrie.session.connect');
    assert.equal(connect.outcome, 'parsed');
    assert.deepEqual(connect.data, {
      eventid: 'cowrie.session.connect',
      src_ip: '127.0.0.1',
      src_port: 50218,
      dst_ip: '127.0.0.1',
      dst_port: 30023,
      session: '695f09473589',
      protocol: 'telnet',
      message: 'New connection: 127.0.0.1:50218 (127.0.0.1:30023) [session: 695f09473589]',
      sensor: 'vm',
      timestamp: new Date(T0).toISOString(),
    });
    const login = s.event('n1', 'vm', 'login attempt [root/123456] failed', T0 + 1000);
    assert.deepEqual(login.data, {
      eventid: 'cowrie.login.failed',
      username: 'root',
      password: '123456',
      message: 'login attempt [root/123456] failed',
      sensor: 'vm',
      timestamp: new Date(T0 + 1000).toISOString(),
      src_ip: '127.0.0.1',
      session: '695f09473589',
    });
    const bare = s.event('n1', 'vm', undefined, T0 + 1500);
    assert.equal(bare.eventType, COWRIE_UNPARSED_EVENT_TYPE);
    assert.equal(bare.outcome, 'no_message');
    assert.equal(bare.data.session, '695f09473589');
    assert.equal('message' in bare.data, false);
    const odd = s.event('n1', 'vm', 'something cowrie never says', T0 + 1600);
    assert.equal(odd.eventType, COWRIE_UNPARSED_EVENT_TYPE);
    assert.equal(odd.outcome, 'unparsed');
    assert.equal(odd.data.message, 'something cowrie never says');
    assert.equal(odd.data.session, '695f09473589');
    const closed = s.event('n1', 'vm', 'Connection lost after 16 seconds', T0 + 2000);
    assert.equal(closed.data.session, '695f09473589');
    assert.equal(s.openSessions, 0);
    const late = s.event('n1', 'vm', 'CMD: ls', T0 + 3000);
    assert.equal('session' in late.data, false, 'no open session: the line is stored without one');
  });

  it('keeps sensors and nodes apart', () => {
    const s = new CowrieTextSessions();
    s.event('n1', 'vm', 'New connection: 192.0.2.1:1000 (10.0.0.1:2222) [session: aaaaaaaaaaaa]', T0);
    s.event('n2', 'vm', 'New connection: 192.0.2.2:1000 (10.0.0.1:2222) [session: bbbbbbbbbbbb]', T0);
    s.event('n1', 'other', 'New connection: 192.0.2.3:1000 (10.0.0.1:2223) [session: cccccccccccc]', T0);
    assert.equal(s.event('n1', 'vm', 'CMD: id', T0 + 1).data.session, 'aaaaaaaaaaaa');
    assert.equal(s.event('n2', 'vm', 'CMD: id', T0 + 1).data.session, 'bbbbbbbbbbbb');
    const other = s.event('n1', 'other', 'CMD: id', T0 + 1).data;
    assert.equal(other.session, 'cccccccccccc');
    assert.equal(other.src_ip, '192.0.2.3');
    assert.equal('session_ambiguous' in other, false);
  });

  it('concurrent sessions: newest wins and is flagged; Connection lost closes the one of matching age', () => {
    const s = new CowrieTextSessions();
    s.event('n1', 'vm', 'New connection: 192.0.2.1:1000 (10.0.0.1:22) [session: old000000000]', T0);
    const sshConnect = s.event('n1', 'vm', 'New connection: 192.0.2.2:2000 (10.0.0.1:22) [session: new000000000]', T0 + 30_000);
    assert.equal(sshConnect.data.protocol, 'ssh');
    const cmd = s.event('n1', 'vm', 'CMD: id', T0 + 31_000).data;
    assert.equal(cmd.session, 'new000000000');
    assert.equal(cmd.session_ambiguous, true);
    // the old session (40 s old) ends first although it is not the newest
    const lost = s.event('n1', 'vm', 'Connection lost after 40 seconds', T0 + 40_000).data;
    assert.equal(lost.session, 'old000000000');
    assert.equal(lost.src_ip, '192.0.2.1');
    const next = s.event('n1', 'vm', 'CMD: uptime', T0 + 41_000).data;
    assert.equal(next.session, 'new000000000');
    assert.equal('session_ambiguous' in next, false);
  });

  it('forgets sessions that never closed (idle) and caps open sessions per sensor', () => {
    const s = new CowrieTextSessions({ idleMs: 10_000, maxOpenPerSensor: 3 });
    s.event('n1', 'vm', 'New connection: 192.0.2.1:1 (10.0.0.1:22) [session: s1]', T0);
    assert.equal('session' in s.event('n1', 'vm', 'CMD: id', T0 + 20_000).data, false);
    for (let i = 0; i < 5; i++) s.event('n1', 'vm', `New connection: 192.0.2.1:${i + 10} (10.0.0.1:22) [session: c${i}]`, T0 + 30_000);
    assert.equal(s.openSessions, 3);
  });
});
