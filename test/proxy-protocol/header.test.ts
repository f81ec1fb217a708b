// The PROXY header parser: the headers HAProxy sends (v1 text, v2 binary: PROXY and LOCAL, IPv4,
// IPv6, TLVs), the ones to refuse and why, every truncation, and fuzzing: random bytes, mutated
// headers and random splits never throw, never claim more bytes than they have, and never change
// their answer once they have given one. And which sources must send a header.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { formatIpv6, parseProxyHeader, ProxyProtocol, type ProxyParse } from '../../src/proxy-protocol/index.js';
import { ipv6Bytes, v1, v2, V2_SIGNATURE } from './wire.js';
import { seededRandom } from '../helpers/random.js';

const ok = (r: ProxyParse) => {
  assert.equal(r.status, 'ok', JSON.stringify(r));
  return r as Extract<ProxyParse, { status: 'ok' }>;
};
const refused = (r: ProxyParse, reason: string) => {
  assert.equal(r.status, 'invalid', JSON.stringify(r));
  assert.equal((r as Extract<ProxyParse, { status: 'invalid' }>).reason, reason, JSON.stringify(r));
};

const rng = seededRandom;
const SEED = Number(process.env.PROXY_FUZZ_SEED ?? Date.now() % 2 ** 31);

describe('PROXY protocol v1', () => {
  it('reads TCP4 and TCP6 lines and says how many bytes they took', () => {
    const line = v1('203.0.113.7', 51234, '10.0.0.1', 9001);
    const r = ok(parseProxyHeader(Buffer.concat([line, Buffer.from('{"version":2}\n')])));
    assert.equal(r.length, line.length);
    assert.deepEqual(r.header, { version: 1, command: 'proxy', source: { address: '203.0.113.7', port: 51234 }, destination: { address: '10.0.0.1', port: 9001 } });
    const r6 = ok(parseProxyHeader(v1('2001:DB8:0:0:0:0:0:42', 1, '::1', 65535)));
    assert.deepEqual(r6.header.source, { address: '2001:db8::42', port: 1 }, 'IPv6 in canonical form');
    assert.equal(ok(parseProxyHeader(v1('::ffff:198.51.100.9', 2, '::1', 3))).header.source?.address, '198.51.100.9', 'IPv4-mapped folded');
  });

  it('UNKNOWN is accepted without a source', () => {
    assert.deepEqual(ok(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).header, { version: 1, command: 'unknown' });
    assert.equal(ok(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff:: ffff:: 1 2\r\nX'))).length, 33);
  });

  it('refuses what HAProxy would never send, with the reason', () => {
    for (const bad of [
      'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n',
      'PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n',
      'PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY TCP4 ::1 5.6.7.8 1 2\r\n',
      'PROXY TCP6 1.2.3.4 ::1 1 2\r\n',
      'PROXY TCP6 1::2::3 ::1 1 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n',
      'PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n',
      'PROXY \r\n',
    ]) refused(parseProxyHeader(Buffer.from(bad, 'latin1')), 'malformed');
  });

  it('a line without its CRLF within 107 bytes is oversized', () => {
    refused(parseProxyHeader(Buffer.from('PROXY UNKNOWN ' + 'x'.repeat(93))), 'oversized');
    // 107 bytes with the CRLF is the largest allowed; 108 is not.
    assert.equal(ok(parseProxyHeader(Buffer.from('PROXY UNKNOWN ' + 'x'.repeat(91) + '\r\n'))).length, 107);
    refused(parseProxyHeader(Buffer.from('PROXY UNKNOWN ' + 'x'.repeat(92) + '\r\n')), 'oversized');
  });

  it('something else than a header is refused at its first byte', () => {
    for (const other of ['{"version":2', 'GET / HTTP/1.1', '\x16\x03\x01', 'PROXX', 'proxy ', '\r\n\r\nQ']) {
      refused(parseProxyHeader(Buffer.from(other, 'latin1')), 'missing');
    }
    assert.equal(parseProxyHeader(Buffer.from('PROX')).status, 'incomplete');
    assert.equal(parseProxyHeader(Buffer.alloc(0)).status, 'incomplete');
  });
});

describe('PROXY protocol v2', () => {
  it('reads PROXY over IPv4 and IPv6, with TLVs skipped', () => {
    const h = v2({ src: '192.0.2.44', sport: 40000, dst: '10.1.2.3', dport: 10000 });
    const r = ok(parseProxyHeader(Buffer.concat([h, Buffer.from([1, 2, 3])])));
    assert.equal(r.length, h.length);
    assert.deepEqual(r.header, { version: 2, command: 'proxy', source: { address: '192.0.2.44', port: 40000 }, destination: { address: '10.1.2.3', port: 10000 } });
    const tlvs = Buffer.from([0x04, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x09, ...Buffer.from('node.test')]);
    const h6 = v2({ src: '2001:db8:1::7', sport: 5, dst: 'fd00::1', dport: 9001, tlvs });
    const r6 = ok(parseProxyHeader(h6));
    assert.equal(r6.length, h6.length);
    assert.deepEqual(r6.header.source, { address: '2001:db8:1::7', port: 5 });
  });

  it('LOCAL (health checks) and address-less families keep the connection address', () => {
    assert.deepEqual(ok(parseProxyHeader(v2({ command: 'local' }))).header, { version: 2, command: 'local' });
    // LOCAL with addresses: they are ignored.
    assert.deepEqual(ok(parseProxyHeader(v2({ command: 'local', src: '1.2.3.4', sport: 1 }))).header, { version: 2, command: 'local' });
    assert.deepEqual(ok(parseProxyHeader(v2({ family: 'unspec' }))).header, { version: 2, command: 'unknown' });
    assert.deepEqual(ok(parseProxyHeader(v2({ family: 'unix' }))).header, { version: 2, command: 'unknown' });
  });

  it('refuses other versions, commands, datagrams, short and oversized headers', () => {
    refused(parseProxyHeader(v2({ src: '1.2.3.4', verCmd: 0x11 })), 'unsupported');
    refused(parseProxyHeader(v2({ src: '1.2.3.4', verCmd: 0x22 })), 'malformed');
    refused(parseProxyHeader(v2({ src: '1.2.3.4', transport: 'dgram' })), 'unsupported');
    refused(parseProxyHeader(v2({ src: '1.2.3.4', length: 8 })), 'malformed');
    refused(parseProxyHeader(v2({ src: '::1', length: 20 })), 'malformed');
    refused(parseProxyHeader(Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x41, 0, 12]), Buffer.alloc(12)])), 'malformed');
    refused(parseProxyHeader(v2({ src: '1.2.3.4', tlvs: Buffer.alloc(2000) })), 'oversized');
    // The length alone decides: no need to wait for the bytes.
    refused(parseProxyHeader(v2({ src: '1.2.3.4', length: 65535 }).subarray(0, 16)), 'oversized');
    assert.equal(ok(parseProxyHeader(v2({ src: '1.2.3.4', tlvs: Buffer.alloc(2000) }), 4096)).length, 16 + 12 + 2000);
  });
});

describe('PROXY header truncations and fuzzing', () => {
  const valid = [
    v1('203.0.113.7', 51234, '10.0.0.1', 9001),
    v1('2001:db8::1', 1, '2001:db8::2', 2),
    Buffer.from('PROXY UNKNOWN\r\n'),
    v2({ src: '192.0.2.44', sport: 40000, dst: '10.1.2.3', dport: 10000 }),
    v2({ src: '2001:db8::44', sport: 1, dst: '::1', dport: 2, tlvs: Buffer.from([0x04, 0, 1, 0]) }),
    v2({ command: 'local' }),
    v2({ family: 'unix' }),
  ];

  it('every proper prefix of a valid header asks for more bytes', () => {
    for (const h of valid) {
      for (let n = 0; n < h.length; n++) assert.equal(parseProxyHeader(h.subarray(0, n)).status, 'incomplete', `${JSON.stringify(h.toString('latin1'))} cut at ${n}`);
      assert.equal(ok(parseProxyHeader(h)).length, h.length);
    }
  });

  /** The answer for each prefix of buf: once decided it must not change, and must fit the bytes seen. */
  const checkStable = (buf: Buffer, what: string) => {
    let decided: string | undefined;
    for (let n = 0; n <= buf.length; n++) {
      const r = parseProxyHeader(buf.subarray(0, n));
      if (r.status === 'ok') assert.ok(r.length <= n && r.length >= 15, `${what}: length ${r.length} of ${n}`);
      const key = r.status === 'incomplete' ? undefined : JSON.stringify(r);
      if (decided !== undefined) assert.equal(key, decided, `${what}: answer changed at ${n} bytes`);
      else decided = key;
    }
  };

  it(`random bytes, mutated headers and random splits (seed ${SEED})`, () => {
    const rand = rng(SEED);
    const int = (n: number) => Math.floor(rand() * n);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
    for (let i = 0; i < 3000; i++) {
      // Random bytes, sometimes behind a signature so the deeper paths are reached.
      const prefix = [Buffer.alloc(0), V2_SIGNATURE, Buffer.from('PROXY '), Buffer.from('PROXY TCP4 ')][int(4)]!;
      checkStable(Buffer.concat([prefix, bytes(int(140))]), `random #${i}`);
    }
    for (let i = 0; i < 3000; i++) {
      const h = Buffer.from(valid[int(valid.length)]!);
      const flips = 1 + int(3);
      for (let f = 0; f < flips; f++) h[int(h.length)] = int(256);
      const cut = rand() < 0.3 ? h.subarray(0, int(h.length + 1)) : h;
      checkStable(Buffer.concat([cut, bytes(int(8))]), `mutated #${i}`);
    }
  });

  it('IPv6 text matches the WHATWG URL serialiser (RFC 5952) for random addresses', () => {
    const rand = rng(SEED + 1);
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(16);
      // Runs of zero groups are what the formatting is about: make them common.
      for (let g = 0; g < 8; g++) if (rand() < 0.5) b.writeUInt16BE(Math.floor(rand() * 65536), 2 * g);
      if (b.subarray(0, 12).equals(Buffer.from('00000000000000000000ffff', 'hex'))) continue;
      const expected = new URL(`http://[${b.toString('hex').match(/.{4}/g)!.join(':')}]/`).hostname.slice(1, -1);
      assert.equal(formatIpv6(b), expected);
      // And the v1 reader takes its own output back.
      assert.equal(ok(parseProxyHeader(v1(expected, 1, '::1', 2))).header.source?.address, expected);
      assert.deepEqual(ipv6Bytes(expected), b);
    }
  });
});

describe('trusted proxy sources', () => {
  const pp = (trusted: string[]) => new ProxyProtocol({ trusted, registry: new Registry(), logger: { warn: () => undefined } });

  it('addresses, CIDRs and the range names; IPv4-mapped peers match their IPv4 ranges', () => {
    const p = pp(['10.0.0.0/8', '192.0.2.7', 'loopback', 'fd00::/8']);
    for (const yes of ['10.1.2.3', '::ffff:10.9.9.9', '192.0.2.7', '127.0.0.5', '::1', 'fd12::1']) assert.equal(p.isTrusted(yes), true, yes);
    for (const no of ['11.0.0.1', '192.0.2.8', 'fe80::1', '2001:db8::1', 'unknown', '']) assert.equal(p.isTrusted(no), false, no);
    assert.equal(pp(['uniquelocal']).isTrusted('172.20.0.4'), true);
    assert.equal(pp(['linklocal']).isTrusted('169.254.1.1'), true);
    assert.throws(() => pp(['proxy.example']), /not an IP address/);
    assert.throws(() => pp(['10.0.0.0/40']), /not an IP address/);
  });

  it('a connection from an address not listed is resolved at once, with its own address', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = once(server, 'connection');
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [socket] = (await accepted) as [net.Socket];
    const peer = pp(['10.0.0.0/8']).resolver('test')(socket);
    assert.ok(!(peer instanceof Promise), 'no wait for connections that send no header');
    assert.deepEqual(peer, { address: '127.0.0.1', port: socket.remotePort });
    client.destroy();
    socket.destroy();
    server.close();
  });
});
