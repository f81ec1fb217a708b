// One batch of events handed to the writer thread through shared memory. Cloning a batch with
// postMessage built a serialised copy of every data string (about 180 KiB for 400 events); under
// MALLOC_MMAP_THRESHOLD_=65536 (how the core runs, see src/hpfeeds/idle-gc.ts) each such buffer
// was a fresh mapping, grown by mremap, page-faulted in, unmapped on the other side: 2.5 µs of CPU
// per event against 0.55 here. A slab is written by the main thread, read by the writer, and
// reused once the writer has answered; only its id crosses in the message.

/** One batch's columns: event i's data is the UTF-8 text bytes[offsets[i], offsets[i + 1]). */
export interface SlabColumns {
  /** Per event: node, pot id, pot type, event type as indexes into the writer's string table. */
  nameIds: Uint32Array;
  timestamp: Float64Array;
  receivedAt: Float64Array;
  offsets: Uint32Array;
  fromStatus: Uint8Array;
  bytes: Buffer;
}

/** What the writer needs to map a slab, sent with the first batch that uses it. */
export interface SlabShared {
  id: number;
  capacity: number;
  numbers: SharedArrayBuffer;
  bytes: SharedArrayBuffer;
}

/** Views of a slab's two shared buffers; the same layout on both sides. */
export function slabColumns(s: SlabShared): SlabColumns {
  const cap = s.capacity;
  // Float64 columns first, so every column starts aligned.
  return {
    timestamp: new Float64Array(s.numbers, 0, cap),
    receivedAt: new Float64Array(s.numbers, 8 * cap, cap),
    nameIds: new Uint32Array(s.numbers, 16 * cap, 4 * cap),
    offsets: new Uint32Array(s.numbers, 32 * cap, cap + 1),
    fromStatus: new Uint8Array(s.numbers, 36 * cap + 4, cap),
    bytes: Buffer.from(s.bytes),
  };
}

function numbersBytes(capacity: number): number {
  return 37 * capacity + 4;
}

export interface Slab extends SlabColumns {
  readonly shared: SlabShared;
}

/** Slabs kept for reuse: a batch is in flight at a time, a retention step or a flush may overlap it. */
const POOL_SIZE = 2;
/** Data bytes a pooled slab may have; a batch needing more gets a slab used once. */
const MAX_POOLED_BYTES = 16 * 1024 * 1024;
const MIN_EVENTS = 2048;
const MIN_BYTES = 1024 * 1024;

function pow2AtLeast(n: number, min: number): number {
  let v = min;
  while (v < n) v *= 2;
  return v;
}

/** Main-thread side: hands out slabs big enough for a batch, takes them back once answered. */
export class SlabPool {
  private readonly free: Slab[] = [];
  private nextId = 1;
  /** Ids of slabs dropped since the last take(): the writer forgets its views of them. */
  private retired: number[] = [];

  /** A slab with room for `events` events and `dataBytes` bytes of data. */
  take(events: number, dataBytes: number): Slab {
    for (let i = 0; i < this.free.length; i++) {
      const s = this.free[i]!;
      if (s.shared.capacity >= events && s.bytes.length >= dataBytes) {
        this.free.splice(i, 1);
        return s;
      }
    }
    const capacity = pow2AtLeast(events, MIN_EVENTS);
    const byteCap = dataBytes > MAX_POOLED_BYTES ? dataBytes : pow2AtLeast(dataBytes, MIN_BYTES);
    const shared: SlabShared = {
      id: this.nextId++,
      capacity,
      numbers: new SharedArrayBuffer(numbersBytes(capacity)),
      bytes: new SharedArrayBuffer(Math.max(1, byteCap)),
    };
    return { shared, ...slabColumns(shared) };
  }

  /** Back to the pool once the writer has answered (or will never read it: its thread is gone). */
  give(s: Slab): void {
    if (s.bytes.length > MAX_POOLED_BYTES) {
      this.retired.push(s.shared.id);
      return;
    }
    this.free.push(s);
    if (this.free.length > POOL_SIZE) {
      // Keep the biggest: a workload's batches settle on a size.
      this.free.sort((a, b) => b.bytes.length - a.bytes.length);
      for (const dropped of this.free.splice(POOL_SIZE)) this.retired.push(dropped.shared.id);
    }
  }

  /** The retired ids not reported yet; reported once. */
  takeRetired(): number[] {
    if (this.retired.length === 0) return EMPTY;
    const r = this.retired;
    this.retired = [];
    return r;
  }
}

const EMPTY: number[] = [];

/**
 * Room a batch's data needs as UTF-8, from the sum of its strings' lengths: 3 bytes per UTF-16 unit
 * (an over-estimate that costs nothing) unless that is more than a pooled slab holds; then `exact()`.
 */
export function dataBytesBound(lengthSum: number, exact: () => number): number {
  return lengthSum * 3 <= MAX_POOLED_BYTES ? lengthSum * 3 : exact();
}
