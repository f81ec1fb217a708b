// The broker gives a burst's memory back: RSS after the burst is within 20% of before (issue 16).
// The broker runs alone in a child process so its RSS is its own; clients here only count bytes.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeAuthFromSecret, encodePublish, encodeSubscribe } from '../../src/hpfeeds/codec.js';
import { sleep, waitFor, withTimeout } from './harness.js';

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

/** Logs in and counts the bytes received after OP_INFO. */
async function login(port: number, ident: string, secret: string, then: Buffer[]): Promise<{ socket: Socket; bytes: () => number }> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let info: Buffer | undefined;
  let bytes = 0;
  let head = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    if (info) {
      bytes += chunk.length;
      return;
    }
    head = Buffer.concat([head, chunk]);
    if (head.length >= 5 && head.length >= head.readUInt32BE(0)) {
      const len = head.readUInt32BE(0);
      info = head.subarray(0, len);
      bytes += head.length - len;
      socket.write(Buffer.concat([encodeAuthFromSecret(info.subarray(6 + info[5], len), ident, secret), ...then]));
    }
  });
  await once(socket, 'connect');
  await waitFor(() => info !== undefined, 5000, 'OP_INFO');
  return { socket, bytes: () => bytes };
}

describe('hpfeeds broker: memory after a burst', () => {
  it('returns RSS to within 20% of its idle level after a 10-subscriber burst', { timeout: 90_000 }, async (t) => {
    const child = fork(fileURLToPath(new URL('./broker-child.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      // As the core is started (Dockerfile, deploy/apiary.service, npm start): see src/hpfeeds/idle-gc.ts.
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '65536' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const sockets: Socket[] = [];
    try {
      const [msg] = (await withTimeout(once(child, 'message'), 20_000, 'broker child ready')) as [{ port: number }];
      const port = msg.port;
      const subs: Array<{ socket: Socket; bytes: () => number }> = [];
      for (let i = 0; i < 10; i++) subs.push(await login(port, 'sub', 'sub-secret', [encodeSubscribe('sub', 'burst')]));
      const pub = await login(port, 'pub', 'pub-secret', []);
      sockets.push(pub.socket, ...subs.map((s) => s.socket));
      const frame = encodePublish('pub', 'burst', Buffer.alloc(1000, 0x42));
      const batch = Buffer.concat(Array.from({ length: 64 }, () => frame));
      // Warm up, then settle: "before" is the broker idle with its clients connected.
      let sent = 0;
      const sendBatch = () => {
        pub.socket.write(batch);
        sent += batch.length;
      };
      for (let i = 0; i < 20; i++) sendBatch();
      await waitFor(() => subs.every((s) => s.bytes() >= sent), 20_000, 'warm-up delivered');
      await sleep(1500);
      const before = rssMiB(child.pid!);
      // Burst: the subscribers stop reading for 2 s (as slow analysts' clients do) while the
      // publisher writes as fast as TCP lets it; then they catch up.
      for (const sub of subs) sub.socket.pause();
      let peak = before;
      const endAt = Date.now() + 2000;
      while (Date.now() < endAt) {
        while (pub.socket.writableLength < 512 * 1024) sendBatch();
        peak = Math.max(peak, rssMiB(child.pid!));
        await sleep(5);
      }
      for (const sub of subs) sub.socket.resume();
      // Wait until nothing moves any more (a broker that dropped never gets to `sent`).
      let last = -1;
      for (let still = 0; still < 8; ) {
        peak = Math.max(peak, rssMiB(child.pid!));
        const total = subs.reduce((n, s) => n + s.bytes(), 0);
        still = total === last ? still + 1 : 0;
        last = total;
        await sleep(250);
      }
      const delivered = Math.min(...subs.map((s) => s.bytes()));
      assert.equal(delivered, sent, 'every subscriber got the whole burst');
      // Back to near idle within a bounded time.
      let after = rssMiB(child.pid!);
      const deadline = Date.now() + 20_000;
      while (after > before * 1.2 && Date.now() < deadline) {
        await sleep(250);
        after = rssMiB(child.pid!);
      }
      const burstMiB = (sent / 1024 / 1024) * 10;
      t.diagnostic(`RSS before ${before.toFixed(1)} MiB, peak ${peak.toFixed(1)}, after ${after.toFixed(1)}; ${burstMiB.toFixed(0)} MiB delivered`);
      assert.ok(after <= before * 1.2, `RSS before ${before.toFixed(1)} MiB, peak ${peak.toFixed(1)}, after ${after.toFixed(1)} (${burstMiB.toFixed(0)} MiB delivered)`);
    } finally {
      sockets.forEach((s) => s.destroy());
      child.send({ type: 'stop' });
      await withTimeout(once(child, 'exit'), 10_000, 'broker child exit').catch(() => child.kill('SIGKILL'));
    }
  });
});
