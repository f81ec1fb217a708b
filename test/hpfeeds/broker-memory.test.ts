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
import { trackChild, untrackChild } from '../helpers/children.js';
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

interface BurstShape {
  pubs: number;
  subs: number;
  /** Subscribers stop reading during the burst (slow analysts' clients) and catch up after it. */
  pauseSubs: boolean;
  payloadBytes: number;
}

/**
 * Runs the broker alone in a child started as the core is, warms it up, measures idle RSS, sends
 * a 2 s burst, waits until every subscriber has everything, then until RSS is back within 20%.
 */
async function burstThenIdle(shape: BurstShape, t: { diagnostic(msg: string): void }): Promise<void> {
  const child = fork(fileURLToPath(new URL('./broker-child.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    // As the core is started (Dockerfile, deploy/apiary.service, npm start): see src/hpfeeds/idle-gc.ts.
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '65536' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  trackChild(child.pid);
  child.once('exit', () => untrackChild(child.pid));
  const sockets: Socket[] = [];
  try {
    const [msg] = (await withTimeout(once(child, 'message'), 20_000, 'broker child ready')) as [{ port: number }];
    const port = msg.port;
    const subs: Array<{ socket: Socket; bytes: () => number }> = [];
    for (let i = 0; i < shape.subs; i++) subs.push(await login(port, 'sub', 'sub-secret', [encodeSubscribe('sub', 'burst')]));
    const pubs: Array<{ socket: Socket }> = [];
    for (let i = 0; i < shape.pubs; i++) pubs.push(await login(port, 'pub', 'pub-secret', []));
    sockets.push(...pubs.map((p) => p.socket), ...subs.map((s) => s.socket));
    const frame = encodePublish('pub', 'burst', Buffer.alloc(shape.payloadBytes, 0x42));
    const batch = Buffer.concat(Array.from({ length: Math.ceil(65536 / frame.length) }, () => frame));
    // Warm up, then settle: "before" is the broker idle with its clients connected.
    let sent = 0;
    const sendBatch = (pub: Socket) => {
      pub.write(batch);
      sent += batch.length;
    };
    for (let i = 0; i < 20; i++) sendBatch(pubs[i % pubs.length].socket);
    await waitFor(() => subs.every((s) => s.bytes() >= sent), 20_000, 'warm-up delivered');
    await sleep(1500);
    const before = rssMiB(child.pid!);
    if (shape.pauseSubs) for (const sub of subs) sub.socket.pause();
    let peak = before;
    const endAt = Date.now() + 2000;
    while (Date.now() < endAt) {
      for (const pub of pubs) while (pub.socket.writableLength < 256 * 1024) sendBatch(pub.socket);
      peak = Math.max(peak, rssMiB(child.pid!));
      await sleep(5);
    }
    if (shape.pauseSubs) for (const sub of subs) sub.socket.resume();
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
    // Back to near idle within a bounded time (the broker collects after 2..4 s of quiet, and
    // again 6 s later).
    let after = rssMiB(child.pid!);
    const deadline = Date.now() + 20_000;
    while (after > before * 1.2 && Date.now() < deadline) {
      await sleep(250);
      after = rssMiB(child.pid!);
    }
    const burstMiB = (sent / 1024 / 1024) * shape.subs;
    const summary = `RSS before ${before.toFixed(1)} MiB, peak ${peak.toFixed(1)}, after ${after.toFixed(1)}; ${burstMiB.toFixed(0)} MiB delivered`;
    t.diagnostic(summary);
    assert.ok(after <= before * 1.2, summary);
  } finally {
    sockets.forEach((s) => s.destroy());
    child.send({ type: 'stop' });
    await withTimeout(once(child, 'exit'), 10_000, 'broker child exit').catch(() => child.kill('SIGKILL'));
  }
}

describe('hpfeeds broker: memory after a burst', () => {
  it('returns RSS to within 20% of its idle level after a burst to 10 paused subscribers', { timeout: 90_000 }, async (t) => {
    await burstThenIdle({ pubs: 1, subs: 10, pauseSubs: true, payloadBytes: 1000 }, t);
  });

  it('returns RSS to within 20% of its idle level after 10 publishers x 10 subscribers as fast as possible', { timeout: 90_000 }, async (t) => {
    await burstThenIdle({ pubs: 10, subs: 10, pauseSubs: false, payloadBytes: 200 }, t);
  });
});
