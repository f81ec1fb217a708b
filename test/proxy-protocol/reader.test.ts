// The socket pre-reader over real sockets: a header and the bytes after it, written in random
// pieces (split inside the header, at its end, inside what follows), come out as the header and
// exactly the bytes that followed, in order; a connection that sends garbage, closes early or
// stalls gets its reason.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { readProxyHeader, type HeaderRead } from '../../src/proxy-protocol/index.js';
import { v1, v2 } from './wire.js';
import { seededRandom } from '../helpers/random.js';

const SEED = Number(process.env.PROXY_FUZZ_SEED ?? Date.now() % 2 ** 31);
const rng = seededRandom;

describe('readProxyHeader on real sockets', () => {
  let server: net.Server;
  let port = 0;
  /** Each accepted socket: what the reader said, then every byte after the header until the end. */
  const results: Promise<{ read: HeaderRead; rest: Buffer }>[] = [];

  before(async () => {
    server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      results.push(
        readProxyHeader(socket, { timeoutMs: 300, maxHeaderBytes: 1024 }).then(async (read) => {
          if (!read.ok) {
            socket.destroy();
            return { read, rest: Buffer.alloc(0) };
          }
          const chunks: Buffer[] = [];
          socket.on('data', (d: Buffer) => chunks.push(d));
          await once(socket, 'end');
          socket.end();
          return { read, rest: Buffer.concat(chunks) };
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const send = async (pieces: Buffer[], end = true) => {
    const n = results.length;
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    while (results.length === n) await new Promise((r) => setImmediate(r));
    const result = results[n]!;
    for (const p of pieces) {
      socket.write(p);
      // A pause lets most pieces arrive as reads of their own.
      await new Promise((r) => setTimeout(r, 2));
    }
    if (end) socket.end();
    const out = await result;
    socket.destroy();
    return out;
  };

  it(`headers and payloads split at random points (seed ${SEED})`, async () => {
    const rand = rng(SEED);
    const headers = [v1('203.0.113.7', 51234, '10.0.0.1', 9001), v1('2001:db8::9', 1, '::1', 2), v2({ src: '192.0.2.44', sport: 40000, dst: '10.1.2.3', dport: 10000 }), v2({ src: '2001:db8::44', sport: 1, dst: '::1', dport: 2, tlvs: Buffer.from([4, 0, 1, 0]) }), v2({ command: 'local' })];
    for (let i = 0; i < 40; i++) {
      const header = headers[Math.floor(rand() * headers.length)]!;
      const payload = Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)));
      const all = Buffer.concat([header, payload]);
      const cuts = [...new Set(Array.from({ length: Math.floor(rand() * 6) }, () => 1 + Math.floor(rand() * (all.length - 1))))].sort((a, b) => a - b);
      const pieces = [0, ...cuts].map((from, k) => all.subarray(from, [...cuts, all.length][k]));
      const { read, rest } = await send(pieces);
      assert.equal(read.ok, true, `#${i}: ${JSON.stringify(read)}`);
      assert.equal(read.ok && read.bytes, header.length);
      assert.ok(rest.equals(payload), `#${i}: the bytes after the header, cut at ${cuts.join(',')}`);
    }
  });

  it('garbage, an early close and a stall each get their reason', async () => {
    const garbage = await send([Buffer.from('SSH-2.0-x\r\n')]);
    assert.deepEqual([garbage.read.ok, !garbage.read.ok && garbage.read.reason], [false, 'missing']);
    const early = await send([v2({ src: '192.0.2.1', sport: 1, dst: '10.0.0.1', dport: 2 }).subarray(0, 20)]);
    assert.deepEqual([early.read.ok, !early.read.ok && early.read.reason], [false, 'closed']);
    const started = Date.now();
    const stall = await send([Buffer.from('PROXY TCP4 1.2')], false);
    assert.deepEqual([stall.read.ok, !stall.read.ok && stall.read.reason], [false, 'timeout']);
    assert.ok(Date.now() - started >= 280);
  });
});
