// hpfeeds wire format: uint32 BE total length (header included) + uint8 opcode + body.
// Strings inside a body carry a uint8 length prefix, except the last field, which is "the rest".
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';

export const OP_ERROR = 0;
export const OP_INFO = 1;
export const OP_AUTH = 2;
export const OP_PUBLISH = 3;
export const OP_SUBSCRIBE = 4;
export const OP_UNSUBSCRIBE = 5;

export const HEADER_LENGTH = 5;
export const MAX_PAYLOAD_LENGTH = 1024 * 1024;
/** Largest frame accepted by default: header + 1 MiB, as the reference broker. */
export const DEFAULT_MAX_FRAME_LENGTH = HEADER_LENGTH + MAX_PAYLOAD_LENGTH;
/** AUTH is tiny (ident + 20-byte SHA-1); capping it keeps unauthenticated peers from making us buffer 1 MiB. */
export const MAX_AUTH_FRAME_LENGTH = HEADER_LENGTH + 1 + 255 + 20;
export const MAX_STRING_LENGTH = 255;

export type HpfeedsFrame =
  | { op: typeof OP_ERROR; message: string }
  | { op: typeof OP_INFO; name: string; nonce: Buffer }
  | { op: typeof OP_AUTH; ident: string; hash: Buffer }
  | {
      op: typeof OP_PUBLISH;
      ident: string;
      channel: string;
      payload: Buffer;
      /** The whole frame as received; a broker can forward it as is when the ident is the sender's. */
      raw: Buffer;
    }
  | { op: typeof OP_SUBSCRIBE | typeof OP_UNSUBSCRIBE; ident: string; channel: string };

export type ProtocolErrorCode =
  | 'frame-too-short'
  | 'frame-too-long'
  | 'unknown-opcode'
  | 'truncated-string'
  | 'bad-utf8'
  | 'string-too-long'
  | 'invalid-first-message';

/** Malformed input (or an unencodable value). `code` doubles as the metric category. */
export class HpfeedsProtocolError extends Error {
  override readonly name = 'HpfeedsProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function hashSecret(nonce: Uint8Array, secret: string): Buffer {
  return createHash('sha1').update(nonce).update(secret, 'utf8').digest();
}

/**
 * Whether `value` fits an hpfeeds length-prefixed string (ident, channel): 1 to 255 bytes of
 * UTF-8. The wire counts bytes, not characters: 100 × '€' is 300 bytes and does not fit.
 */
export function fitsString8(value: string): boolean {
  return value.length > 0 && value.length <= MAX_STRING_LENGTH * 3 && Buffer.byteLength(value, 'utf8') <= MAX_STRING_LENGTH;
}

// ---------------------------------------------------------------------------------------------
// Encoders. Each allocates exactly one Buffer of the final size.

function byteLengthOf(value: Uint8Array | string): number {
  return typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.byteLength;
}

function checkString8(field: string, length: number): void {
  if (length > MAX_STRING_LENGTH) {
    throw new HpfeedsProtocolError('string-too-long', `${field} is ${length} bytes; hpfeeds allows at most ${MAX_STRING_LENGTH}`);
  }
}

function writeHeader(frame: Buffer, op: number): void {
  frame.writeUInt32BE(frame.length, 0);
  frame[4] = op;
}

function writeBytes(frame: Buffer, offset: number, value: Uint8Array | string): number {
  if (typeof value === 'string') return offset + frame.write(value, offset, 'utf8');
  frame.set(value, offset);
  return offset + value.byteLength;
}

function writeString8(frame: Buffer, offset: number, value: string, length: number): number {
  frame[offset] = length;
  return writeBytes(frame, offset + 1, value);
}

export function encodeError(message: string): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_LENGTH + Buffer.byteLength(message, 'utf8'));
  writeHeader(frame, OP_ERROR);
  writeBytes(frame, HEADER_LENGTH, message);
  return frame;
}

export function encodeInfo(name: string, nonce: Uint8Array): Buffer {
  const nameLength = Buffer.byteLength(name, 'utf8');
  checkString8('broker name', nameLength);
  const frame = Buffer.allocUnsafe(HEADER_LENGTH + 1 + nameLength + nonce.byteLength);
  writeHeader(frame, OP_INFO);
  writeBytes(frame, writeString8(frame, HEADER_LENGTH, name, nameLength), nonce);
  return frame;
}

/** AUTH with a precomputed hash; see `encodeAuthFromSecret` for the usual case. */
export function encodeAuth(ident: string, hash: Uint8Array): Buffer {
  const identLength = Buffer.byteLength(ident, 'utf8');
  checkString8('ident', identLength);
  const frame = Buffer.allocUnsafe(HEADER_LENGTH + 1 + identLength + hash.byteLength);
  writeHeader(frame, OP_AUTH);
  writeBytes(frame, writeString8(frame, HEADER_LENGTH, ident, identLength), hash);
  return frame;
}

export function encodeAuthFromSecret(nonce: Uint8Array, ident: string, secret: string): Buffer {
  return encodeAuth(ident, hashSecret(nonce, secret));
}

/** The checks encodePublish makes of ident and channel, for a publish that is not encoded. */
export function checkPublishNames(ident: string, channel: string): void {
  // At most 3 UTF-8 bytes per UTF-16 unit: short names need no byte count.
  if (ident.length * 3 > MAX_STRING_LENGTH) checkString8('ident', Buffer.byteLength(ident, 'utf8'));
  if (channel.length * 3 > MAX_STRING_LENGTH) checkString8('channel', Buffer.byteLength(channel, 'utf8'));
}

export function encodePublish(ident: string, channel: string, payload: Uint8Array | string): Buffer {
  const identLength = Buffer.byteLength(ident, 'utf8');
  const channelLength = Buffer.byteLength(channel, 'utf8');
  const frame = Buffer.allocUnsafe(publishFrameLength(identLength, channelLength, byteLengthOf(payload)));
  writePublish(frame, 0, ident, identLength, channel, channelLength, payload);
  return frame;
}

/** Bytes of a PUBLISH frame; throws (as encodePublish) when ident or channel is too long. */
export function publishFrameLength(identLength: number, channelLength: number, payloadLength: number): number {
  checkString8('ident', identLength);
  checkString8('channel', channelLength);
  return HEADER_LENGTH + 2 + identLength + channelLength + payloadLength;
}

/**
 * Writes a PUBLISH frame at `at` in `target`, which must have room for publishFrameLength() bytes
 * (lengths from publishFrameLength's own arguments); returns where the frame ends.
 */
export function writePublish(
  target: Buffer,
  at: number,
  ident: string,
  identLength: number,
  channel: string,
  channelLength: number,
  payload: Uint8Array | string,
): number {
  let offset = at + HEADER_LENGTH;
  target[offset] = identLength;
  offset = writeBytes(target, offset + 1, ident);
  target[offset] = channelLength;
  offset = writeBytes(target, offset + 1, channel);
  offset = writeBytes(target, offset, payload);
  target.writeUInt32BE(offset - at, at);
  target[at + 4] = OP_PUBLISH;
  return offset;
}

function encodeChannelOp(op: number, ident: string, channel: string): Buffer {
  const identLength = Buffer.byteLength(ident, 'utf8');
  checkString8('ident', identLength);
  const frame = Buffer.allocUnsafe(HEADER_LENGTH + 1 + identLength + Buffer.byteLength(channel, 'utf8'));
  writeHeader(frame, op);
  writeBytes(frame, writeString8(frame, HEADER_LENGTH, ident, identLength), channel);
  return frame;
}

export function encodeSubscribe(ident: string, channel: string): Buffer {
  return encodeChannelOp(OP_SUBSCRIBE, ident, channel);
}

export function encodeUnsubscribe(ident: string, channel: string): Buffer {
  return encodeChannelOp(OP_UNSUBSCRIBE, ident, channel);
}

// ---------------------------------------------------------------------------------------------
// Incremental decoder.

const EMPTY = Buffer.alloc(0);

export interface RawPublish {
  buf: Buffer;
  start: number;
  end: number;
  identStart: number;
  identEnd: number;
  channelStart: number;
  channelEnd: number;
}

/** Returned by FrameDecoder.nextOrRawPublish for a PUBLISH left in place (see `raw`). */
export const RAW_PUBLISH = 'raw-publish' as const;

function decodeText(buf: Buffer, start: number, end: number, field: string): string {
  // Idents and channels are nearly always ASCII; the byte loop avoids a subarray per string.
  for (let i = start; i < end; i++) {
    if (buf[i] >= 0x80) {
      if (!isUtf8(buf.subarray(start, end))) throw new HpfeedsProtocolError('bad-utf8', `${field} is not valid UTF-8`);
      break;
    }
  }
  return buf.toString('utf8', start, end);
}

/**
 * Feed it socket chunks of any size with `push`, then call `next` until it returns null.
 * `next` throws HpfeedsProtocolError on malformed input; the decoder then stays failed (every
 * later call throws the same error) because the stream can no longer be resynchronised.
 * Memory is bounded by one frame plus whatever the caller pushed but has not yet pulled.
 */
export class FrameDecoder {
  readonly maxFrameLength: number;
  /** Chunk being parsed; bytes before `offset` are consumed. */
  private buf: Buffer = EMPTY;
  private offset = 0;
  /** Chunks pushed while `buf` still held an incomplete frame. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private failure: HpfeedsProtocolError | undefined;
  /**
   * While true, any frame other than AUTH fails as soon as its 5-byte header is seen, so an
   * unauthenticated peer cannot make us buffer the body of a large frame. A broker sets it until
   * the peer's AUTH frame has been returned.
   */
  authOnly: boolean;

  constructor(opts: { maxFrameLength?: number; authOnly?: boolean } = {}) {
    this.maxFrameLength = opts.maxFrameLength ?? DEFAULT_MAX_FRAME_LENGTH;
    this.authOnly = opts.authOnly ?? false;
    if (!(this.maxFrameLength >= HEADER_LENGTH)) throw new RangeError('maxFrameLength must be at least 5');
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buf.length - this.offset + this.queuedBytes;
  }

  get failed(): HpfeedsProtocolError | undefined {
    return this.failure;
  }

  push(chunk: Buffer): void {
    if (this.failure || chunk.length === 0) return;
    if (this.offset >= this.buf.length && this.queuedBytes === 0) {
      this.buf = chunk;
      this.offset = 0;
    } else {
      this.queued.push(chunk);
      this.queuedBytes += chunk.length;
    }
  }

  next(): HpfeedsFrame | null {
    return this.nextFrame(false) as HpfeedsFrame | null;
  }

  /**
   * Like next(), but a PUBLISH is not turned into objects and strings: it is validated, its
   * position is left in `raw` and RAW_PUBLISH is returned. The broker's hot path uses this to
   * route a message without allocating anything per frame. `raw` is valid until the next call.
   */
  nextOrRawPublish(): HpfeedsFrame | typeof RAW_PUBLISH | null {
    return this.nextFrame(true);
  }

  /** Where the last PUBLISH returned as RAW_PUBLISH lies: frame [start, end) of buf, and its fields. */
  readonly raw: RawPublish = { buf: EMPTY, start: 0, end: 0, identStart: 0, identEnd: 0, channelStart: 0, channelEnd: 0 };

  private nextFrame(rawPublish: boolean): HpfeedsFrame | typeof RAW_PUBLISH | null {
    if (this.failure) throw this.failure;
    for (;;) {
      const available = this.buf.length - this.offset;
      if (available === 0) {
        if (this.queuedBytes === 0) {
          this.buf = EMPTY; // drop the reference so the consumed chunk can be collected
          this.offset = 0;
          return null;
        }
        this.buf = this.queued.shift()!;
        this.offset = 0;
        this.queuedBytes -= this.buf.length;
        continue;
      }
      if (available < HEADER_LENGTH) {
        if (available + this.queuedBytes < HEADER_LENGTH) return null;
        this.gather(HEADER_LENGTH);
        continue;
      }
      const length = this.buf.readUInt32BE(this.offset);
      const op = this.buf[this.offset + 4];
      this.checkHeader(length, op);
      if (available < length) {
        if (available + this.queuedBytes < length) return null;
        this.gather(length);
        continue;
      }
      const start = this.offset;
      this.offset += length;
      try {
        if (rawPublish && op === OP_PUBLISH) {
          this.locatePublish(start, start + length);
          return RAW_PUBLISH;
        }
        return this.parseBody(op, start, start + length);
      } catch (err) {
        throw this.fail(err as HpfeedsProtocolError);
      }
    }
  }

  private fail(err: HpfeedsProtocolError): HpfeedsProtocolError {
    this.failure = err;
    this.buf = EMPTY;
    this.offset = 0;
    this.queued = [];
    this.queuedBytes = 0;
    return err;
  }

  private checkHeader(length: number, op: number): void {
    // Checked before waiting for the body, so a bogus length is rejected at once rather than
    // after buffering (or, for length < 5, instead of looping forever as the reference does).
    if (length < HEADER_LENGTH) {
      throw this.fail(new HpfeedsProtocolError('frame-too-short', `frame length ${length} is shorter than the 5-byte header`));
    }
    if (op > OP_UNSUBSCRIBE) {
      throw this.fail(new HpfeedsProtocolError('unknown-opcode', `unknown opcode ${op}`));
    }
    const max = op === OP_AUTH ? Math.min(MAX_AUTH_FRAME_LENGTH, this.maxFrameLength) : this.maxFrameLength;
    if (length > max) {
      throw this.fail(new HpfeedsProtocolError('frame-too-long', `frame length ${length} exceeds the limit of ${max} for opcode ${op}`));
    }
    if (this.authOnly && op !== OP_AUTH) {
      throw this.fail(new HpfeedsProtocolError('invalid-first-message', 'First message was not AUTH'));
    }
  }

  /**
   * Copies the unconsumed tail of `buf` plus just enough queued bytes into a buffer of `size`
   * bytes, which becomes `buf`. Only a frame that straddles chunks is copied, never whole chunks.
   */
  private gather(size: number): void {
    const out = Buffer.allocUnsafe(size);
    let filled = this.buf.copy(out, 0, this.offset);
    while (filled < size) {
      const head = this.queued[0];
      const take = Math.min(head.length, size - filled);
      head.copy(out, filled, 0, take);
      filled += take;
      this.queuedBytes -= take;
      if (take === head.length) this.queued.shift();
      else this.queued[0] = head.subarray(take);
    }
    this.buf = out;
    this.offset = 0;
  }

  /** Read cursor of `parseBody`; a field rather than a closure keeps the hot path allocation-free. */
  private pos = 0;

  private string8(end: number, field: string): string {
    const buf = this.buf;
    const pos = this.pos;
    if (pos >= end) throw new HpfeedsProtocolError('truncated-string', `${field} length byte missing`);
    const from = pos + 1;
    const to = from + buf[pos];
    if (to > end) throw new HpfeedsProtocolError('truncated-string', `${field} claims ${buf[pos]} bytes but only ${end - from} remain`);
    this.pos = to;
    return decodeText(buf, from, to, field);
  }

  /** Validates a PUBLISH's two strings in place (UTF-8 checked, nothing decoded). */
  private locatePublish(start: number, end: number): void {
    const buf = this.buf;
    const raw = this.raw;
    this.pos = start + HEADER_LENGTH;
    raw.identStart = this.pos + 1;
    this.skipString8(end, 'ident');
    raw.identEnd = this.pos;
    raw.channelStart = this.pos + 1;
    this.skipString8(end, 'channel');
    raw.channelEnd = this.pos;
    raw.buf = buf;
    raw.start = start;
    raw.end = end;
  }

  private skipString8(end: number, field: string): void {
    const buf = this.buf;
    const pos = this.pos;
    if (pos >= end) throw new HpfeedsProtocolError('truncated-string', `${field} length byte missing`);
    const from = pos + 1;
    const to = from + buf[pos];
    if (to > end) throw new HpfeedsProtocolError('truncated-string', `${field} claims ${buf[pos]} bytes but only ${end - from} remain`);
    for (let i = from; i < to; i++) {
      if (buf[i] >= 0x80) {
        if (!isUtf8(buf.subarray(from, to))) throw new HpfeedsProtocolError('bad-utf8', `${field} is not valid UTF-8`);
        break;
      }
    }
    this.pos = to;
  }

  private parseBody(op: number, start: number, end: number): HpfeedsFrame {
    const buf = this.buf;
    this.pos = start + HEADER_LENGTH;
    switch (op) {
      case OP_ERROR:
        // Error texts are for humans: decode leniently rather than lose the message.
        return { op, message: buf.toString('utf8', this.pos, end) };
      case OP_INFO: {
        const name = this.string8(end, 'broker name');
        return { op, name, nonce: Buffer.from(buf.subarray(this.pos, end)) };
      }
      case OP_AUTH: {
        const ident = this.string8(end, 'ident');
        this.authOnly = false; // what follows AUTH is checked by the connection once auth is known
        return { op, ident, hash: buf.subarray(this.pos, end) };
      }
      case OP_PUBLISH: {
        const ident = this.string8(end, 'ident');
        const channel = this.string8(end, 'channel');
        return { op, ident, channel, payload: buf.subarray(this.pos, end), raw: buf.subarray(start, end) };
      }
      default: {
        const ident = this.string8(end, 'ident');
        const channel = decodeText(buf, this.pos, end, 'channel');
        return { op: op as typeof OP_SUBSCRIBE | typeof OP_UNSUBSCRIBE, ident, channel };
      }
    }
  }
}
