// Load-generator child of bench/hpfeeds.ts: some of a shape's publishers and subscribers, in a
// process of its own so the load is spread over cores and its CPU is measured apart from the
// broker's and the parent's.
//
// Clients are as cheap as a client can be in Node: raw sockets reading into one reusable buffer
// each (`onread`: no Buffer, no stream event per read), publishers writing pre-encoded frames
// (a per-publisher template batch, copied, with only the time stamp and sequence number written
// per frame). Every frame has the same length, so a subscriber walks the frames of a read by
// offset and reads three fields: publisher id and sequence number (a gap is a lost message, a
// step back a duplicate or a reordering) and, on the two latency samplers, the send time stamp.
//
// Payload layout (bytes from the payload start): 0..8 send time (ms, float64 LE, from the
// system-wide monotonic clock, so it compares across processes), 8..12 publisher id, 12..16
// sequence number (uint32 LE, per publisher, from 0), the rest filler.
//
// IPC (advanced serialization), every request answered by one message of the same type:
//   {type:'subs', port, count, samplers:[local index...]}   connect and subscribe, in order
//   {type:'pubs', port, ids:[global publisher id...], pubCount, size}
//   {type:'phase', phase:'warmup'|'max'|'rate', seconds, rate, frames, latencyCapacity} -> {published}
//     (warmup: `frames` per publisher in one write)
//   {type:'counts'} -> {received, minReceived, gaps, backwards, corrupt}
//   {type:'latencies'} -> {latencies: Float64Array}   (rate phase, samplers only)
//   {type:'stop'} -> exits
import { connect, type Socket } from 'node:net';
import { encodeAuthFromSecret, encodePublish, encodeSubscribe } from '../src/hpfeeds/index.js';

const IDENT_PUB = 'bench-pub';
const IDENT_SUB = 'bench-sub';
const CHANNEL = 'bench';
const READ_BUFFER_BYTES = 128 * 1024;

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

let frameLength = 0;
let payloadAt = 0;
let pubCount = 0;

function setFrameShape(size: number, pubs: number): void {
  const frame = encodePublish(IDENT_PUB, CHANNEL, Buffer.alloc(size));
  frameLength = frame.length;
  payloadAt = frame.length - size;
  pubCount = pubs;
}

/**
 * A raw client: reads into one buffer; the first frame it gets is OP_INFO, answered with AUTH
 * (and `then`, e.g. SUBSCRIBE, in the same write); everything after goes to `onFrames`, which
 * returns false to stop reading (until `socket.resume()`).
 */
function rawClient(port: number, ident: string, secret: string, then: Buffer[], onFrames: (buf: Buffer, end: number) => boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let info: Buffer | undefined;
    let head = Buffer.alloc(0);
    const socket = connect({
      host: '127.0.0.1',
      port,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (nread: number, buf: Buffer): boolean => {
          if (info !== undefined) return onFrames(buf, nread);
          head = Buffer.concat([head, buf.subarray(0, nread)]);
          if (head.length < 5 || head.length < head.readUInt32BE(0)) return true;
          const length = head.readUInt32BE(0);
          info = head.subarray(0, length);
          socket.write(Buffer.concat([encodeAuthFromSecret(info.subarray(6 + info[5], length), ident, secret), ...then]));
          // The broker sends nothing else before it has our AUTH, so nothing follows OP_INFO here.
          resolve(socket);
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    socket.once('error', reject);
  });
}

// --- subscribers -----------------------------------------------------------------------------------

let sampling = false;
let latencies = new Float64Array(0);
let latencyCount = 0;
/**
 * Fixed-rate phase: subscribers that do not sample latency read every BATCH_READ_MS rather than
 * on every arrival (the broker's writes still land in their socket buffers at once, so its work
 * is the same), which saves this process one wake-up per broker write.
 */
let batchReads = false;
const BATCH_READ_MS = 20;

class Subscriber {
  received = 0;
  gaps = 0;
  backwards = 0;
  corrupt = 0;
  /** Next expected sequence number of each publisher. */
  private readonly expected = new Uint32Array(pubCount);
  private readonly carry = Buffer.allocUnsafe(frameLength);
  private carried = 0;
  socket!: Socket;

  constructor(readonly sampler: boolean) {}

  /** Reading stopped until the next batch tick. */
  paused = false;

  readonly onFrames = (buf: Buffer, end: number): boolean => {
    const length = frameLength;
    let off = 0;
    const now = this.sampler && sampling ? nowMs() : 0;
    if (batchReads && !this.sampler) this.paused = true;
    if (this.carried > 0) {
      const need = length - this.carried;
      if (end < need) {
        buf.copy(this.carry, this.carried, 0, end);
        this.carried += end;
        return !this.paused;
      }
      buf.copy(this.carry, this.carried, 0, need);
      this.carried = 0;
      this.frame(this.carry, 0, now);
      off = need;
    }
    for (; off + length <= end; off += length) this.frame(buf, off, now);
    if (off < end) {
      buf.copy(this.carry, 0, off, end);
      this.carried = end - off;
    }
    return !this.paused;
  };

  /** Hot loop of the load generator: plain byte reads (no bounds-checked Buffer readers). */
  private frame(buf: Buffer, off: number, now: number): void {
    if (this.corrupt > 0) return; // out of step with the stream (e.g. an ERROR arrived): stop reading it
    if (buf[off + 4] !== 3 || buf[off + 3] !== (frameLength & 0xff) || buf[off + 2] !== (frameLength >>> 8)) {
      this.corrupt++;
      return;
    }
    const at = off + payloadAt;
    const pub = buf[at + 8] | (buf[at + 9] << 8) | (buf[at + 10] << 16) | (buf[at + 11] << 24);
    const seq = (buf[at + 12] | (buf[at + 13] << 8) | (buf[at + 14] << 16) | (buf[at + 15] << 24)) >>> 0;
    const expected = this.expected[pub];
    if (seq === expected) this.expected[pub] = seq + 1;
    else if (seq > expected) {
      this.gaps += seq - expected;
      this.expected[pub] = seq + 1;
    } else this.backwards++;
    this.received++;
    if (now !== 0 && latencyCount < latencies.length) latencies[latencyCount++] = now - buf.readDoubleLE(at);
  }
}

const subscribers: Subscriber[] = [];
setInterval(() => {
  for (const sub of subscribers) {
    if (!sub.paused) continue;
    sub.paused = false;
    sub.socket.resume();
  }
}, BATCH_READ_MS).unref();

// --- publishers ------------------------------------------------------------------------------------

class Publisher {
  seq = 0;
  /** FRAMES_PER_BATCH frames of this publisher, stamps and sequence numbers to be filled in. */
  private readonly template: Buffer;
  readonly framesPerBatch: number;
  socket!: Socket;

  constructor(readonly id: number) {
    // 64 KiB writes: what the broker reads at a time, and few system calls on this side.
    this.framesPerBatch = Math.max(1, Math.floor(65536 / frameLength));
    const frame = encodePublish(IDENT_PUB, CHANNEL, Buffer.alloc(frameLength - payloadAt, 0x78));
    frame.writeUInt32LE(id, payloadAt + 8);
    this.template = Buffer.concat(Array.from({ length: this.framesPerBatch }, () => frame));
  }

  /** Writes `count` frames (at most framesPerBatch) in one write; `now` 0: no time stamps (max phase). */
  write(count: number, now: number): void {
    const batch = Buffer.allocUnsafe(frameLength * count);
    this.template.copy(batch, 0, 0, batch.length);
    let seq = this.seq;
    for (let i = 0, at = payloadAt; i < count; i++, at += frameLength) {
      if (now !== 0) batch.writeDoubleLE(now, at);
      batch[at + 12] = seq;
      batch[at + 13] = seq >>> 8;
      batch[at + 14] = seq >>> 16;
      batch[at + 15] = seq >>> 24;
      seq++;
    }
    this.seq = seq;
    this.socket.write(batch);
  }
}

const publishers: Publisher[] = [];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const turn = () => new Promise<void>((r) => setImmediate(r));

async function runPhase(phase: 'warmup' | 'max' | 'rate', seconds: number, rate: number, frames: number, latencyCapacity: number): Promise<number> {
  let published = 0;
  sampling = phase === 'rate';
  batchReads = phase === 'rate';
  if (sampling) {
    latencies = new Float64Array(latencyCapacity);
    latencyCount = 0;
  }
  if (phase === 'warmup') {
    // Small on purpose: what it leaves behind must not inflate the broker's idle RSS ("before").
    for (const pub of publishers) {
      pub.write(Math.min(frames, pub.framesPerBatch), nowMs());
      published += Math.min(frames, pub.framesPerBatch);
    }
    return published;
  }
  const started = performance.now();
  const endAt = started + seconds * 1000;
  if (phase === 'max') {
    // Each publisher keeps ~256 KiB in its socket; TCP back-pressure decides the pace.
    while (performance.now() < endAt) {
      let wrote = false;
      for (const pub of publishers) {
        while (pub.socket.writableLength < 256 * 1024) {
          pub.write(pub.framesPerBatch, 0);
          published += pub.framesPerBatch;
          wrote = true;
        }
      }
      // All full: sleep rather than spin (256 KiB queued here lasts well over 1 ms).
      await (wrote ? turn() : sleep(1));
    }
    return published;
  }
  // Fixed rate (this process's share): what is due is spread over its publishers, one write each
  // per step, as clients that flush once per event-loop turn do.
  const total = Math.round(rate * seconds);
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    const step = due - sent;
    const now = nowMs();
    for (let p = 0; p < publishers.length; p++) {
      let n = Math.floor(step / publishers.length) + (p < step % publishers.length ? 1 : 0);
      const pub = publishers[(p + sent) % publishers.length];
      while (n > 0) {
        const k = Math.min(n, pub.framesPerBatch);
        pub.write(k, now);
        n -= k;
      }
    }
    sent = due;
    await sleep(2);
  }
  batchReads = false;
  return total;
}

type Request =
  | { type: 'subs'; port: number; count: number; samplers: number[]; size: number; pubCount: number }
  | { type: 'pubs'; port: number; ids: number[]; size: number; pubCount: number }
  | { type: 'phase'; phase: 'warmup' | 'max' | 'rate'; seconds: number; rate: number; frames: number; latencyCapacity: number }
  | { type: 'counts' }
  | { type: 'latencies' }
  | { type: 'stop' };

process.on('message', async (msg: Request) => {
  switch (msg.type) {
    case 'subs': {
      setFrameShape(msg.size, msg.pubCount);
      for (let i = 0; i < msg.count; i++) {
        const sub = new Subscriber(msg.samplers.includes(i));
        // One at a time: the broker's subscriber order (and so which ones sample) is this order.
        sub.socket = await rawClient(msg.port, IDENT_SUB, 'sub-secret', [encodeSubscribe(IDENT_SUB, CHANNEL)], sub.onFrames);
        sub.socket.on('error', () => {});
        subscribers.push(sub);
      }
      process.send!({ type: 'subs' });
      return;
    }
    case 'pubs': {
      setFrameShape(msg.size, msg.pubCount);
      for (const id of msg.ids) {
        const pub = new Publisher(id);
        pub.socket = await rawClient(msg.port, IDENT_PUB, 'pub-secret', [], () => true);
        pub.socket.on('error', () => {});
        publishers.push(pub);
      }
      process.send!({ type: 'pubs' });
      return;
    }
    case 'phase':
      process.send!({ type: 'phase', published: await runPhase(msg.phase, msg.seconds, msg.rate, msg.frames, msg.latencyCapacity) });
      return;
    case 'counts': {
      let received = 0;
      let minReceived = Infinity;
      let gaps = 0;
      let backwards = 0;
      let corrupt = 0;
      for (const s of subscribers) {
        received += s.received;
        minReceived = Math.min(minReceived, s.received);
        gaps += s.gaps;
        backwards += s.backwards;
        corrupt += s.corrupt;
      }
      process.send!({ type: 'counts', received, minReceived, gaps, backwards, corrupt });
      return;
    }
    case 'latencies':
      process.send!({ type: 'latencies', latencies: latencies.slice(0, latencyCount) });
      return;
    case 'stop':
      for (const c of [...subscribers, ...publishers]) c.socket.destroy();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
