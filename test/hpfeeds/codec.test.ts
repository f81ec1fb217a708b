import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  DEFAULT_MAX_FRAME_LENGTH,
  FrameDecoder,
  HpfeedsProtocolError,
  MAX_AUTH_FRAME_LENGTH,
  OP_AUTH,
  OP_ERROR,
  OP_INFO,
  OP_PUBLISH,
  OP_SUBSCRIBE,
  OP_UNSUBSCRIBE,
  encodeAuth,
  encodeAuthFromSecret,
  encodeError,
  encodeInfo,
  encodePublish,
  encodeSubscribe,
  encodeUnsubscribe,
  hashSecret,
  type HpfeedsFrame,
} from '../../src/hpfeeds/codec.js';
import { seededRandom } from '../helpers/random.js';

const prng = seededRandom;

function decodeAll(chunks: Buffer[], decoder = new FrameDecoder()): HpfeedsFrame[] {
  const frames: HpfeedsFrame[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let f = decoder.next(); f; f = decoder.next()) frames.push(f);
  }
  return frames;
}

function expectProtocolError(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof HpfeedsProtocolError && err.code === code);
}

function frameHeader(length: number, op: number): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(length, 0);
  b[4] = op;
  return b;
}

/** Comparable view of a frame (drops `raw`, Buffers as hex). */
function plain(frame: HpfeedsFrame): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(frame)) {
    if (k === 'raw') continue;
    out[k] = Buffer.isBuffer(v) ? v.toString('hex') : v;
  }
  return out;
}

function randomString(rand: () => number, maxBytes: number): string {
  const alphabet = Array.from('abcdefghijklmnopqrstuvwxyz0123456789._-/é€😀');
  let s = '';
  while (true) {
    const next = s + alphabet[Math.floor(rand() * alphabet.length)];
    if (Buffer.byteLength(next) > maxBytes) return s;
    s = next;
    if (rand() < 0.08) return s;
  }
}

function randomFrame(rand: () => number): { bytes: Buffer; expected: Record<string, unknown> } {
  const op = Math.floor(rand() * 6);
  const ident = randomString(rand, 255);
  const channel = randomString(rand, 255);
  const payload = Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)));
  switch (op) {
    case OP_ERROR:
      return { bytes: encodeError(channel), expected: { op, message: channel } };
    case OP_INFO:
      return { bytes: encodeInfo(ident, payload.subarray(0, 4)), expected: { op, name: ident, nonce: payload.subarray(0, 4).toString('hex') } };
    case OP_AUTH: {
      const hash = hashSecret(payload.subarray(0, 4), channel);
      return { bytes: encodeAuth(ident, hash), expected: { op, ident, hash: hash.toString('hex') } };
    }
    case OP_PUBLISH:
      return { bytes: encodePublish(ident, channel, payload), expected: { op, ident, channel, payload: payload.toString('hex') } };
    case OP_SUBSCRIBE:
      return { bytes: encodeSubscribe(ident, channel), expected: { op, ident, channel } };
    default:
      return { bytes: encodeUnsubscribe(ident, channel), expected: { op, ident, channel } };
  }
}

function randomChunks(rand: () => number, data: Buffer, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    const size = 1 + Math.floor(rand() * maxChunk);
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

describe('hpfeeds codec: encoders', () => {
  it('lays out every opcode as the reference does', () => {
    assert.equal(encodeError('boom').toString('hex'), '00000009' + '00' + Buffer.from('boom').toString('hex'));
    assert.equal(
      encodeInfo('hp', Buffer.from([1, 2, 3, 4])).toString('hex'),
      '0000000c' + '01' + '02' + Buffer.from('hp').toString('hex') + '01020304',
    );
    const hash = hashSecret(Buffer.from([1, 2, 3, 4]), 's3cret');
    assert.equal(hash.length, 20);
    assert.deepEqual(encodeAuthFromSecret(Buffer.from([1, 2, 3, 4]), 'id', 's3cret'), encodeAuth('id', hash));
    assert.equal(encodeAuth('id', hash).toString('hex'), '0000001c' + '02' + '02' + Buffer.from('id').toString('hex') + hash.toString('hex'));
    assert.equal(
      encodePublish('id', 'ch', 'xyz').toString('hex'),
      '0000000e' + '03' + '02' + Buffer.from('id').toString('hex') + '02' + Buffer.from('ch').toString('hex') + Buffer.from('xyz').toString('hex'),
    );
    assert.equal(encodeSubscribe('id', 'chan').toString('hex'), '0000000c' + '04' + '02' + Buffer.from('idchan').toString('hex'));
    assert.equal(encodeUnsubscribe('id', 'chan').toString('hex'), '0000000c' + '05' + '02' + Buffer.from('idchan').toString('hex'));
  });

  it('hashes sha1(nonce + secret) like the reference', () => {
    const nonce = Buffer.from([0, 1, 2, 3]);
    const expected = createHash('sha1').update(Buffer.concat([nonce, Buffer.from('sécret', 'utf8')])).digest('hex');
    assert.equal(hashSecret(nonce, 'sécret').toString('hex'), expected);
  });

  it('rejects strings over 255 bytes (and accepts exactly 255)', () => {
    const ok = 'a'.repeat(255);
    assert.equal(encodePublish(ok, ok, '').length, 5 + 2 + 510);
    expectProtocolError(() => encodePublish('a'.repeat(256), 'c', ''), 'string-too-long');
    expectProtocolError(() => encodePublish('i', 'é'.repeat(128), ''), 'string-too-long');
    expectProtocolError(() => encodeSubscribe('a'.repeat(256), 'c'), 'string-too-long');
    expectProtocolError(() => encodeAuth('a'.repeat(300), Buffer.alloc(20)), 'string-too-long');
    expectProtocolError(() => encodeInfo('n'.repeat(256), Buffer.alloc(4)), 'string-too-long');
  });
});

describe('hpfeeds codec: decoder', () => {
  it('decodes frames split across chunks and many frames per chunk', () => {
    const frames = [
      encodeInfo('broker', Buffer.from([9, 8, 7, 6])),
      encodePublish('ident', 'chan', Buffer.from('payload one')),
      encodeSubscribe('ident', 'chan'),
      encodePublish('ident', 'chan', Buffer.alloc(0)),
      encodeError(''),
      encodeUnsubscribe('ident', 'chan'),
    ];
    const stream = Buffer.concat(frames);
    const whole = decodeAll([stream]).map(plain);
    assert.equal(whole.length, frames.length);
    assert.deepEqual(decodeAll([...stream].map((b) => Buffer.from([b]))).map(plain), whole);
    assert.deepEqual(decodeAll([stream.subarray(0, 3), stream.subarray(3, 40), stream.subarray(40)]).map(plain), whole);
    assert.deepEqual(whole[1], { op: OP_PUBLISH, ident: 'ident', channel: 'chan', payload: Buffer.from('payload one').toString('hex') });
    assert.deepEqual(whole[4], { op: OP_ERROR, message: '' });
  });

  it('exposes the received publish frame as raw, byte for byte', () => {
    const frame = encodePublish('a', 'b', 'c');
    const [, pub] = decodeAll([Buffer.concat([encodeSubscribe('x', 'y'), frame])]);
    assert.equal(pub.op, OP_PUBLISH);
    assert.deepEqual(pub.op === OP_PUBLISH && pub.raw, frame);
  });

  it('decodes a maximum-size frame delivered in 64 KiB chunks and tracks buffered bytes', () => {
    const payload = Buffer.alloc(DEFAULT_MAX_FRAME_LENGTH - 5 - 2 - 2, 0xab);
    const frame = encodePublish('i', 'c', payload);
    assert.equal(frame.length, DEFAULT_MAX_FRAME_LENGTH);
    const decoder = new FrameDecoder();
    const chunks = [];
    for (let o = 0; o < frame.length; o += 65536) chunks.push(frame.subarray(o, o + 65536));
    let got: HpfeedsFrame | null = null;
    let pushed = 0;
    for (const chunk of chunks) {
      decoder.push(chunk);
      pushed += chunk.length;
      got = decoder.next();
      if (!got) assert.equal(decoder.bufferedBytes, pushed);
    }
    assert.ok(got && got.op === OP_PUBLISH);
    assert.ok(got.op === OP_PUBLISH && got.payload.equals(payload));
    assert.equal(decoder.bufferedBytes, 0);
    assert.equal(decoder.next(), null);
  });

  it('rejects a length below the header size at once (the reference spins on it)', () => {
    for (const length of [0, 1, 4]) {
      const decoder = new FrameDecoder();
      decoder.push(frameHeader(length, OP_PUBLISH));
      expectProtocolError(() => decoder.next(), 'frame-too-short');
    }
  });

  it('rejects an oversize length from the header alone, with a configurable limit', () => {
    const decoder = new FrameDecoder();
    decoder.push(frameHeader(DEFAULT_MAX_FRAME_LENGTH + 1, OP_PUBLISH));
    expectProtocolError(() => decoder.next(), 'frame-too-long');

    const exact = new FrameDecoder();
    exact.push(frameHeader(DEFAULT_MAX_FRAME_LENGTH, OP_PUBLISH));
    assert.equal(exact.next(), null); // valid header, waiting for the body

    const small = new FrameDecoder({ maxFrameLength: 100 });
    small.push(encodePublish('i', 'c', Buffer.alloc(200)));
    expectProtocolError(() => small.next(), 'frame-too-long');
    const fits = new FrameDecoder({ maxFrameLength: 100 });
    fits.push(encodePublish('i', 'c', Buffer.alloc(91)));
    assert.equal(fits.next()?.op, OP_PUBLISH);

    const auth = new FrameDecoder();
    auth.push(frameHeader(MAX_AUTH_FRAME_LENGTH + 1, OP_AUTH));
    expectProtocolError(() => auth.next(), 'frame-too-long');
  });

  it('rejects unknown opcodes', () => {
    const decoder = new FrameDecoder();
    decoder.push(Buffer.concat([frameHeader(6, 6), Buffer.from([0])]));
    expectProtocolError(() => decoder.next(), 'unknown-opcode');
    const d2 = new FrameDecoder();
    d2.push(frameHeader(5, 255));
    expectProtocolError(() => d2.next(), 'unknown-opcode');
  });

  it('rejects truncated strings', () => {
    const cases = [
      Buffer.concat([frameHeader(5, OP_PUBLISH)]), // no ident length byte
      Buffer.concat([frameHeader(9, OP_PUBLISH), Buffer.from([10, 0x61, 0x62, 0x63])]), // ident claims 10
      Buffer.concat([frameHeader(8, OP_PUBLISH), Buffer.from([2, 0x61, 0x62])]), // no channel length byte
      Buffer.concat([frameHeader(10, OP_PUBLISH), Buffer.from([1, 0x61, 5, 0x62, 0x63])]), // channel claims 5
      Buffer.concat([frameHeader(7, OP_SUBSCRIBE), Buffer.from([3, 0x61])]),
      Buffer.concat([frameHeader(5, OP_AUTH)]),
      Buffer.concat([frameHeader(6, OP_INFO), Buffer.from([9])]),
    ];
    for (const bytes of cases) {
      const decoder = new FrameDecoder();
      decoder.push(bytes);
      expectProtocolError(() => decoder.next(), 'truncated-string');
    }
  });

  it('rejects bad UTF-8 in ident and channel but keeps error texts lenient', () => {
    const bad = Buffer.from([0xc3, 0x28]);
    const pubBadIdent = Buffer.concat([frameHeader(5 + 1 + 2 + 1 + 1, OP_PUBLISH), Buffer.from([2]), bad, Buffer.from([1, 0x63])]);
    const pubBadChan = Buffer.concat([frameHeader(5 + 2 + 1 + 2, OP_PUBLISH), Buffer.from([1, 0x69, 2]), bad]);
    const subBadChan = Buffer.concat([frameHeader(5 + 2 + 2, OP_SUBSCRIBE), Buffer.from([1, 0x69]), bad]);
    const authBadIdent = Buffer.concat([frameHeader(5 + 3 + 20, OP_AUTH), Buffer.from([2]), bad, Buffer.alloc(20)]);
    for (const bytes of [pubBadIdent, pubBadChan, subBadChan, authBadIdent]) {
      const decoder = new FrameDecoder();
      decoder.push(bytes);
      expectProtocolError(() => decoder.next(), 'bad-utf8');
    }
    const decoder = new FrameDecoder();
    decoder.push(Buffer.concat([frameHeader(7, OP_ERROR), bad]));
    assert.equal(decoder.next()?.op, OP_ERROR);
    // Valid multi-byte text passes.
    assert.deepEqual(plain(decodeAll([encodeSubscribe('ïdent', 'chän/😀')])[0]), { op: OP_SUBSCRIBE, ident: 'ïdent', channel: 'chän/😀' });
  });

  it('stays failed after an error and ignores further input', () => {
    const decoder = new FrameDecoder();
    decoder.push(frameHeader(2, OP_PUBLISH));
    expectProtocolError(() => decoder.next(), 'frame-too-short');
    decoder.push(encodeSubscribe('a', 'b'));
    expectProtocolError(() => decoder.next(), 'frame-too-short');
    assert.equal(decoder.bufferedBytes, 0);
    assert.ok(decoder.failed);
  });
});

describe('hpfeeds codec: fuzz', () => {
  it('round-trips random valid frame streams under random chunking', () => {
    const rand = prng(0xbee5);
    for (let round = 0; round < 300; round++) {
      const frames = Array.from({ length: 1 + Math.floor(rand() * 30) }, () => randomFrame(rand));
      const stream = Buffer.concat(frames.map((f) => f.bytes));
      const decoded = decodeAll(randomChunks(rand, stream, 1 + Math.floor(rand() * 200)));
      assert.deepEqual(decoded.map(plain), frames.map((f) => f.expected), `round ${round}`);
      for (const [i, f] of decoded.entries()) {
        if (f.op === OP_PUBLISH) assert.deepEqual(f.raw, frames[i].bytes);
      }
    }
  });

  /**
   * Feeds input in random chunks; only HpfeedsProtocolError may escape, and every input ends fast.
   * `ms` is CPU time, not wall time: on a loaded machine the test process can be descheduled for
   * longer than any decoder would take.
   */
  function survive(rand: () => number, input: Buffer, maxFrameLength?: number): { frames: number; error?: string; ms: number } {
    const cpu = process.cpuUsage();
    const elapsed = () => {
      const used = process.cpuUsage(cpu);
      return (used.user + used.system) / 1000;
    };
    const decoder = new FrameDecoder({ maxFrameLength });
    let frames = 0;
    let calls = 0;
    try {
      for (const chunk of randomChunks(rand, input, 1 + Math.floor(rand() * 64))) {
        decoder.push(chunk);
        for (;;) {
          calls++;
          // A frame consumes at least 5 bytes, so more calls than that means the decoder spins.
          assert.ok(calls <= input.length / 5 + 2 + input.length, 'decoder spins');
          const f = decoder.next();
          if (!f) break;
          frames++;
        }
      }
    } catch (err) {
      if (!(err instanceof HpfeedsProtocolError)) throw err;
      return { frames, error: err.code, ms: elapsed() };
    }
    return { frames, ms: elapsed() };
  }

  it('survives thousands of random byte strings', () => {
    const rand = prng(42);
    const codes = new Set<string>();
    let worst = 0;
    for (let i = 0; i < 5000; i++) {
      const input = Buffer.from(Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256)));
      // Bias some inputs toward plausible headers so the body parsers get exercised too.
      if (input.length >= 5 && rand() < 0.6) {
        input.writeUInt32BE(Math.floor(rand() * (input.length + 3)), 0);
        input[4] = Math.floor(rand() * 7);
      }
      const result = survive(rand, input, rand() < 0.5 ? 64 : undefined);
      if (result.error) codes.add(result.error);
      worst = Math.max(worst, result.ms);
    }
    for (const code of ['frame-too-short', 'unknown-opcode', 'truncated-string', 'frame-too-long']) {
      assert.ok(codes.has(code), `fuzzing reached ${code} (got ${[...codes]})`);
    }
    // Generous (GC runs count too); the call-count check above is what catches spinning.
    assert.ok(worst < 500, `slowest input took ${worst} ms of CPU`);
  });

  it('survives truncated and mutated valid streams', () => {
    const rand = prng(7);
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      const stream = Buffer.from(Buffer.concat(Array.from({ length: 1 + Math.floor(rand() * 8) }, () => randomFrame(rand).bytes)));
      const mutations = Math.floor(rand() * 4);
      for (let m = 0; m < mutations; m++) stream[Math.floor(rand() * stream.length)] = Math.floor(rand() * 256);
      const input = rand() < 0.3 ? stream.subarray(0, Math.floor(rand() * stream.length)) : stream;
      const result = survive(rand, input);
      if (result.error) errors++;
      assert.ok(result.ms < 500, `input ${i} took ${result.ms} ms`);
    }
    assert.ok(errors > 100, `mutations produced protocol errors (${errors})`);
  });
});
