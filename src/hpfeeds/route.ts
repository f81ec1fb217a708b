// One channel's subscribers and the frames published on it during the current I/O turn. At the
// end of the turn the frames are copied once into one buffer (the "tick buffer") that every
// subscriber of the channel is handed, whole or as a slice: fan-out costs one copy per channel
// per turn, not one per subscriber per frame, and N slow subscribers hold one buffer, not N.

/**
 * Size of the pieces a turn's bytes are copied into. With glibc's default, dynamic mmap threshold
 * (128 KiB, raised to the size of every mmapped block freed, up to 32 MiB) whole-turn buffers
 * soon come from the heap and a burst leaves it fragmented (measured: +60 MiB held at idle after
 * a 10x10 burst). Pieces of 64 KiB are the unit the process is started for: the core runs with
 * MALLOC_MMAP_THRESHOLD_=65536 (see idle-gc.ts), so each piece, like each 64 KiB socket read
 * buffer, is its own mapping, returned to the system when it is freed.
 */
export const CHUNK_BYTES = 64 * 1024;

/**
 * Full-size turn pieces kept for the next turns. Each piece is its own mapping (see CHUNK_BYTES):
 * allocated and freed every turn, a steady 40k-events/s stream mapped and unmapped some 300 of them
 * a second, zero-filled page by page on first touch, and the unmapping went through the collector
 * (scavenges took three times as long). Only pieces whose every write has completed come back,
 * and at most `max` are kept, so a burst's memory is still given back.
 */
export class PiecePool {
  private readonly free: Buffer[] = [];
  constructor(private readonly max: number) {}

  take(size: number): Buffer {
    return size === CHUNK_BYTES && this.free.length > 0 ? this.free.pop()! : Buffer.allocUnsafeSlow(size);
  }

  /** Pieces nothing refers to any more (their tick was released). */
  give(chunks: readonly Buffer[]): void {
    for (let i = 0; i < chunks.length && this.free.length < this.max; i++) {
      if (chunks[i].length === CHUNK_BYTES) this.free.push(chunks[i]);
    }
  }

  get size(): number {
    return this.free.length;
  }
}

/** Copies `length` bytes starting at `start` of `src` (a list of chunks) into chunks of at most CHUNK_BYTES. */
export function chunkCopy(out: Buffer[], src: readonly Buffer[], start: number, length: number): void {
  let i = 0;
  while (start >= src[i].length) start -= src[i++].length;
  let dst = Buffer.allocUnsafeSlow(Math.min(CHUNK_BYTES, length));
  let filled = 0;
  while (length > 0) {
    if (filled === dst.length) {
      out.push(dst);
      dst = Buffer.allocUnsafeSlow(Math.min(CHUNK_BYTES, length));
      filled = 0;
    }
    const from = src[i];
    const take = Math.min(from.length - start, dst.length - filled, length);
    from.copy(dst, filled, start, start + take);
    filled += take;
    length -= take;
    start += take;
    if (start === from.length) {
      i++;
      start = 0;
    }
  }
  out.push(dst);
}

/** A sealed turn's frames of one channel; freed (for accounting) when the last write using it is done. */
export class TickBuffer {
  /** Writes handed to sockets that still reference the chunks. */
  refs = 0;
  /** True while the broker is still handing the buffer out (it cannot be released yet). */
  open = true;
  /** The turn's bytes, in pieces of CHUNK_BYTES (the last one shorter). */
  readonly chunks: Buffer[];
  constructor(
    chunks: Buffer[],
    readonly size: number,
  ) {
    this.chunks = chunks;
  }
}

export class ChannelRoute<Subscriber> {
  /** Replaced, never mutated, on (un)subscribe so routing can iterate freely. */
  subscribers: readonly Subscriber[] = [];
  /**
   * Frames routed since the last seal, as (buffer, start, end): ranges of read chunks or
   * in-process frames, copied at seal. The first `owned` entries are copies made by capture().
   */
  private readonly frameBufs: Buffer[] = [];
  private readonly frameStarts: number[] = [];
  private readonly frameEnds: number[] = [];
  private owned = 0;
  /** Bytes routed since the last seal: the offset the next frame will have in the tick buffer. */
  bytes = 0;
  /** Set by seal(), cleared by reset(). */
  tick: TickBuffer | undefined;

  constructor(
    readonly channel: string,
    private readonly pieces: PiecePool,
  ) {}

  get active(): boolean {
    return this.frameBufs.length > 0;
  }

  push(buf: Buffer, start: number, end: number): void {
    this.frameBufs.push(buf);
    this.frameStarts.push(start);
    this.frameEnds.push(end);
    this.bytes += end - start;
  }

  /**
   * Copies the frames routed since the last capture into one buffer of their own, so they outlive
   * the read chunks they point into (valid only until the end of the turn). Used when the flush
   * is deferred past the turn (see the broker's flush linger); without it, seal() copies once.
   */
  capture(): void {
    const bufs = this.frameBufs;
    const from = this.owned;
    if (from === bufs.length) return;
    let size = 0;
    for (let i = from; i < bufs.length; i++) size += this.frameEnds[i] - this.frameStarts[i];
    const copy = Buffer.allocUnsafeSlow(size);
    let at = 0;
    for (let i = from; i < bufs.length; i++) at += bufs[i].copy(copy, at, this.frameStarts[i], this.frameEnds[i]);
    // The copy takes the place of the frames it holds (same bytes, so `bytes` is unchanged).
    bufs.length = from;
    this.frameStarts.length = from;
    this.frameEnds.length = from;
    bufs.push(copy);
    this.frameStarts.push(0);
    this.frameEnds.push(size);
    this.owned = from + 1;
  }

  seal(): TickBuffer {
    const chunks: Buffer[] = [];
    const bufs = this.frameBufs;
    const starts = this.frameStarts;
    const ends = this.frameEnds;
    // allocUnsafeSlow: never a slice of the shared 8 KiB pool, which a queued frame would pin.
    let dst = this.pieces.take(Math.min(CHUNK_BYTES, this.bytes));
    let filled = 0;
    let left = this.bytes;
    for (let i = 0; i < bufs.length; i++) {
      const src = bufs[i];
      let from = starts[i];
      const end = ends[i];
      while (from < end) {
        if (filled === dst.length) {
          chunks.push(dst);
          dst = this.pieces.take(Math.min(CHUNK_BYTES, left));
          filled = 0;
        }
        const take = Math.min(end - from, dst.length - filled);
        src.copy(dst, filled, from, from + take);
        filled += take;
        from += take;
        left -= take;
      }
    }
    chunks.push(dst);
    bufs.length = 0;
    starts.length = 0;
    ends.length = 0;
    this.owned = 0;
    this.tick = new TickBuffer(chunks, this.bytes);
    return this.tick;
  }

  reset(): void {
    this.tick = undefined;
    this.bytes = 0;
  }
}
