// Where the broker encodes in-process publishes (Broker.publish: the core republishing every
// committed event). One frame allocation per publish was, with the string it was encoded from, the
// largest part of the event path's garbage; frames are now carved one after another from shared
// chunks.
import { publishFrameLength, writePublish } from './codec.js';

/**
 * 32 KiB: about fifty event frames per chunk, and under the size from which glibc gives every block
 * a mapping of its own when the core runs with MALLOC_MMAP_THRESHOLD_=65536 (see idle-gc.ts).
 */
const CHUNK_BYTES = 32 * 1024;
/** Larger frames get a buffer of their own rather than most of a chunk. */
const LARGEST_CARVED = CHUNK_BYTES / 4;

/**
 * Encodes PUBLISH frames into shared chunks. A chunk is never written over: ChannelRoute.push keeps
 * a view of each frame until the turn is sealed (copied), so a full chunk is simply left to the
 * collector and a new one started. After encode(), the frame is `chunk[start, end)`.
 */
export class PublishArena {
  chunk: Buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  start = 0;
  private used = 0;

  /**
   * Encodes a frame of `payload` (`payloadLength` bytes once encoded); returns its end in `chunk`
   * (it begins at `start`). Throws on an over-long ident or channel.
   */
  encode(ident: string, channel: string, payload: Uint8Array | string, payloadLength: number): number {
    // Names are short: their byte counts are only measured when they might not be ASCII.
    const identLength = isAscii(ident) ? ident.length : Buffer.byteLength(ident, 'utf8');
    const channelLength = isAscii(channel) ? channel.length : Buffer.byteLength(channel, 'utf8');
    const length = publishFrameLength(identLength, channelLength, payloadLength);
    if (length > LARGEST_CARVED) {
      this.chunk = Buffer.allocUnsafeSlow(length);
      this.used = this.chunk.length;
      this.start = 0;
      return writePublish(this.chunk, 0, ident, identLength, channel, channelLength, payload);
    }
    if (this.used + length > this.chunk.length) {
      this.chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
      this.used = 0;
    }
    this.start = this.used;
    this.used = writePublish(this.chunk, this.used, ident, identLength, channel, channelLength, payload);
    return this.used;
  }
}

const NON_ASCII = /[^\x00-\x7f]/;

function isAscii(s: string): boolean {
  return !NON_ASCII.test(s);
}
