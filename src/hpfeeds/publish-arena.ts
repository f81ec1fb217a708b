// Where the broker encodes in-process publishes (Broker.publish: the core republishing every
// committed event). One frame allocation per publish was, with the string it was encoded from, the
// largest part of the event path's garbage; frames are now carved one after another from chunks
// that are reused once the flush has copied every frame out of them. Fresh chunks instead (left to
// the collector) traded the young-generation garbage for a full collection every half second at
// 10k events/s: V8 answers a steady growth of buffer memory with mark-compacts.
import { publishFrameLength, writePublish } from './codec.js';

/**
 * 32 KiB: about fifty event frames per chunk, and under the size from which glibc gives every block
 * a mapping of its own when the core runs with MALLOC_MMAP_THRESHOLD_=65536 (see idle-gc.ts).
 */
const CHUNK_BYTES = 32 * 1024;
/** Larger frames get a buffer of their own rather than most of a chunk. */
const LARGEST_CARVED = CHUNK_BYTES / 4;
/** Chunks kept for reuse beyond the current one (a flush's worth at 40k events/s). */
const MAX_SPARE = 16;

/**
 * Encodes PUBLISH frames into chunks. A frame is referenced by its route (ChannelRoute.push) until
 * the flusher seals the route, copying it into a tick buffer; recycle() is called once every route
 * has been sealed, and only then are the chunks written again. After encode(), the frame is
 * `buf[start, end)`.
 */
export class PublishArena {
  buf: Buffer;
  start = 0;
  private chunk: Buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  private used = 0;
  /** Chunks filled since the last recycle(), and chunks free for reuse. */
  private readonly filled: Buffer[] = [];
  private readonly spare: Buffer[] = [];

  constructor() {
    this.buf = this.chunk;
  }

  /**
   * Encodes a frame of `payload` (`payloadLength` bytes once encoded); returns its end in `buf`
   * (it begins at `start`). Throws on an over-long ident or channel.
   */
  encode(ident: string, channel: string, payload: Uint8Array | string, payloadLength: number): number {
    // Names are short: their byte counts are only measured when they might not be ASCII.
    const identLength = isAscii(ident) ? ident.length : Buffer.byteLength(ident, 'utf8');
    const channelLength = isAscii(channel) ? channel.length : Buffer.byteLength(channel, 'utf8');
    const length = publishFrameLength(identLength, channelLength, payloadLength);
    if (length > LARGEST_CARVED) {
      this.buf = Buffer.allocUnsafeSlow(length);
      this.start = 0;
      return writePublish(this.buf, 0, ident, identLength, channel, channelLength, payload);
    }
    if (this.used + length > this.chunk.length) {
      this.filled.push(this.chunk);
      this.chunk = this.spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
      this.used = 0;
    }
    this.buf = this.chunk;
    this.start = this.used;
    this.used = writePublish(this.chunk, this.used, ident, identLength, channel, channelLength, payload);
    return this.used;
  }

  /** Every frame encoded so far has been copied out of the chunks: they are written again from now on. */
  recycle(): void {
    this.used = 0;
    for (const c of this.filled) if (this.spare.length < MAX_SPARE) this.spare.push(c);
    this.filled.length = 0;
  }
}

const NON_ASCII = /[^\x00-\x7f]/;

function isAscii(s: string): boolean {
  return !NON_ASCII.test(s);
}
