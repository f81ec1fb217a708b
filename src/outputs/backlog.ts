// The durable backlog of one network output: what was formatted for it and not yet acknowledged by
// its receiver. Behind OutputBacklog so another store (PostgreSQL) can replace the files later.
//
// FileBacklog: a directory of append-only segment files (`<16-digit seq>.seg`, rolled at
// segmentBytes) and `ack.json` holding the position (segment, byte offset) up to which the receiver
// has acknowledged. Frames are `u32 length | f64 appended-at ms | bytes`. Appends are written with
// one write() per committed batch (page cache, microseconds); durability against power loss comes
// from fdatasync: 'interval' (default) syncs the open segment every fsyncIntervalMs, 'always' after
// every append. A torn frame at the tail (crash mid-write) is cut off at open. The ack file is
// replaced atomically (write + rename) after each delivered batch; segments wholly behind it are
// deleted. When appending would pass maxBytes the new entries are refused and counted: the oldest
// (already waiting) keep their order and nothing half-delivered is removed.
import { closeSync, fdatasync, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, writeFileSync, writeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BacklogPosition {
  segment: number;
  offset: number;
}

export interface BacklogBatch {
  entries: Buffer[];
  /** When each entry was appended (epoch ms). */
  appendedAt: number[];
  /** Position after the last entry: pass it to ack() once delivered. */
  next: BacklogPosition;
}

export interface OutputBacklog {
  /** Appends in order; returns how many were refused because the bound was reached (0: all kept). */
  append(entries: readonly (string | Buffer)[], now?: number): number;
  /** Up to maxEntries / about maxBytes from the read position, without removing them; null when empty. */
  peek(maxEntries: number, maxBytes: number): BacklogBatch | null;
  /** Acknowledges everything before `pos` (durably), and frees what is behind it. */
  ack(pos: BacklogPosition, entries: number): void;
  readonly pendingEntries: number;
  readonly pendingBytes: number;
  /** Append time of the oldest unacknowledged entry, or null when empty. */
  readonly oldestAppendedAt: number | null;
  close(): void;
}

export interface FileBacklogOptions {
  dir: string;
  /** Bound on unacknowledged bytes (frames included). Default 256 MiB. */
  maxBytes?: number;
  /** Segment files roll at this size. Default 8 MiB. */
  segmentBytes?: number;
  fsync?: 'always' | 'interval';
  fsyncIntervalMs?: number;
}

const HEADER = 12;
const SEG_RE = /^(\d{16})\.seg$/;
const segName = (n: number) => `${String(n).padStart(16, '0')}.seg`;

interface Segment {
  seq: number;
  /** Bytes of whole frames in the file. */
  size: number;
  /** Entries and bytes not yet acknowledged in it. */
  entries: number;
  /** Append times of the unacknowledged entries, oldest first, only kept for lag (first one). */
  firstAppendedAt: number | null;
}

export class FileBacklog implements OutputBacklog {
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly fsyncMode: 'always' | 'interval';
  private segments: Segment[] = [];
  private ackPos: BacklogPosition;
  /** Where peek() reads from: the ack position, or further while a batch is in flight. */
  private fd: number | null = null;
  private syncTimer: NodeJS.Timeout | undefined;
  private dirty = false;
  private syncing = false;
  private pendingB = 0;
  private pendingN = 0;
  private closed = false;

  constructor(opts: FileBacklogOptions) {
    this.dir = opts.dir;
    this.maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
    this.segmentBytes = opts.segmentBytes ?? 8 * 1024 * 1024;
    this.fsyncMode = opts.fsync ?? 'interval';
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.ackPos = this.readAck();
    this.load();
    if (this.fsyncMode === 'interval') {
      this.syncTimer = setInterval(() => this.syncSoon(), opts.fsyncIntervalMs ?? 1000);
      this.syncTimer.unref();
    }
  }

  get pendingEntries(): number {
    return this.pendingN;
  }

  get pendingBytes(): number {
    return this.pendingB;
  }

  get oldestAppendedAt(): number | null {
    if (this.pendingN === 0) return null;
    const s = this.segments.find((x) => x.entries > 0);
    if (s === undefined) return null;
    if (s.firstAppendedAt === null) s.firstAppendedAt = this.readFirstTime(s);
    return s.firstAppendedAt;
  }

  private readAck(): BacklogPosition {
    try {
      const a = JSON.parse(readFileSync(join(this.dir, 'ack.json'), 'utf8')) as BacklogPosition;
      if (Number.isSafeInteger(a.segment) && Number.isSafeInteger(a.offset)) return a;
    } catch {
      // No ack yet (new backlog) or unreadable: start at the oldest segment kept.
    }
    return { segment: 0, offset: 0 };
  }

  private writeAck(): void {
    const tmp = join(this.dir, 'ack.json.tmp');
    writeFileSync(tmp, JSON.stringify(this.ackPos));
    renameSync(tmp, join(this.dir, 'ack.json'));
  }

  /** Scans the segments: counts unacknowledged frames, cuts a torn tail, drops acknowledged files. */
  private load(): void {
    const seqs = readdirSync(this.dir)
      .map((f) => SEG_RE.exec(f)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const seq of seqs) {
      const path = join(this.dir, segName(seq));
      if (seq < this.ackPos.segment) {
        rmSync(path, { force: true });
        continue;
      }
      const buf = readFileSync(path);
      let off = 0;
      let entries = 0;
      let first: number | null = null;
      const from = seq === this.ackPos.segment ? this.ackPos.offset : 0;
      while (off + HEADER <= buf.length) {
        const len = buf.readUInt32LE(off);
        if (off + HEADER + len > buf.length) break;
        if (off >= from) {
          entries++;
          first ??= buf.readDoubleLE(off + 4);
        }
        off += HEADER + len;
      }
      if (off < buf.length) {
        const fd = openSync(path, 'r+');
        ftruncateSync(fd, off);
        closeSync(fd);
      }
      const seg: Segment = { seq, size: off, entries, firstAppendedAt: first };
      this.segments.push(seg);
      this.pendingN += entries;
      this.pendingB += Math.max(0, off - from);
    }
    if (this.segments.length === 0 || this.ackPos.segment > this.segments[this.segments.length - 1]!.seq) {
      const seq = Math.max(this.ackPos.segment, (this.segments.at(-1)?.seq ?? -1) + 1);
      this.segments.push({ seq, size: 0, entries: 0, firstAppendedAt: null });
      if (this.ackPos.segment !== seq) this.ackPos = { segment: seq, offset: 0 };
    } else if (this.ackPos.segment < this.segments[0]!.seq) {
      this.ackPos = { segment: this.segments[0]!.seq, offset: 0 };
    }
    const last = this.segments.at(-1)!;
    this.fd = openSync(join(this.dir, segName(last.seq)), 'a');
  }

  append(entries: readonly (string | Buffer)[], now = Date.now()): number {
    if (this.closed) throw new Error('backlog is closed');
    const lengths = new Array<number>(entries.length);
    let kept = 0;
    let bytes = 0;
    for (const e of entries) {
      const len = typeof e === 'string' ? Buffer.byteLength(e) : e.length;
      if (this.pendingB + bytes + HEADER + len > this.maxBytes) break;
      lengths[kept] = len;
      bytes += HEADER + len;
      kept++;
    }
    if (kept === 0) return entries.length;
    let i = 0;
    while (i < kept) {
      let seg = this.segments.at(-1)!;
      if (seg.size >= this.segmentBytes) seg = this.roll();
      // One buffer, one write: the entries that fit in this segment.
      const start = i;
      let size = 0;
      while (i < kept && (i === start || seg.size + size + HEADER + lengths[i]! <= this.segmentBytes)) size += HEADER + lengths[i++]!;
      const buf = Buffer.allocUnsafe(size);
      let off = 0;
      for (let j = start; j < i; j++) {
        const e = entries[j]!;
        buf.writeUInt32LE(lengths[j]!, off);
        buf.writeDoubleLE(now, off + 4);
        off += HEADER;
        off += typeof e === 'string' ? buf.write(e, off, 'utf8') : e.copy(buf, off);
      }
      let written = 0;
      while (written < size) written += writeSync(this.fd!, buf, written, size - written);
      seg.size += size;
      if (seg.entries === 0) seg.firstAppendedAt = now;
      seg.entries += i - start;
    }
    this.pendingB += bytes;
    this.pendingN += kept;
    if (this.fsyncMode === 'always') fdatasyncSync(this.fd!);
    else this.dirty = true;
    return entries.length - kept;
  }

  private roll(): Segment {
    if (this.fd !== null) {
      fdatasyncSync(this.fd);
      closeSync(this.fd);
    }
    const seg: Segment = { seq: this.segments.at(-1)!.seq + 1, size: 0, entries: 0, firstAppendedAt: null };
    this.segments.push(seg);
    this.fd = openSync(join(this.dir, segName(seg.seq)), 'a');
    return seg;
  }

  private syncSoon(): void {
    if (!this.dirty || this.syncing || this.fd === null) return;
    this.dirty = false;
    this.syncing = true;
    fdatasync(this.fd, () => {
      this.syncing = false;
    });
  }

  private readFirstTime(s: Segment): number | null {
    const from = s.seq === this.ackPos.segment ? this.ackPos.offset : 0;
    if (from + HEADER > s.size) return null;
    const fd = openSync(join(this.dir, segName(s.seq)), 'r');
    try {
      const h = Buffer.alloc(HEADER);
      readSync(fd, h, 0, HEADER, from);
      return h.readDoubleLE(4);
    } finally {
      closeSync(fd);
    }
  }

  peek(maxEntries: number, maxBytes: number): BacklogBatch | null {
    if (this.pendingN === 0) return null;
    let pos = { ...this.ackPos };
    const entries: Buffer[] = [];
    const appendedAt: number[] = [];
    let bytes = 0;
    for (const seg of this.segments) {
      if (seg.seq < pos.segment) continue;
      if (seg.seq > pos.segment) pos = { segment: seg.seq, offset: 0 };
      if (pos.offset >= seg.size) continue;
      const fd = openSync(join(this.dir, segName(seg.seq)), 'r');
      try {
        const want = Math.min(seg.size - pos.offset, Math.max(maxBytes - bytes, HEADER) + 64 * 1024);
        const buf = Buffer.allocUnsafe(want);
        const got = readSync(fd, buf, 0, want, pos.offset);
        let off = 0;
        while (off + HEADER <= got && entries.length < maxEntries) {
          const len = buf.readUInt32LE(off);
          if (off + HEADER + len > got) {
            if (entries.length > 0) break;
            // One entry larger than the read: read it whole.
            const big = Buffer.allocUnsafe(HEADER + len);
            readSync(fd, big, 0, HEADER + len, pos.offset + off);
            entries.push(big.subarray(HEADER));
            appendedAt.push(big.readDoubleLE(4));
            off += HEADER + len;
            bytes += HEADER + len;
            break;
          }
          if (entries.length > 0 && bytes + HEADER + len > maxBytes) break;
          appendedAt.push(buf.readDoubleLE(off + 4));
          entries.push(buf.subarray(off + HEADER, off + HEADER + len));
          off += HEADER + len;
          bytes += HEADER + len;
        }
        pos = { segment: seg.seq, offset: pos.offset + off };
      } finally {
        closeSync(fd);
      }
      if (entries.length >= maxEntries || bytes >= maxBytes || pos.offset < seg.size) break;
    }
    if (entries.length === 0) return null;
    return { entries, appendedAt, next: pos };
  }

  ack(pos: BacklogPosition, entries: number): void {
    // Count the bytes and entries acknowledged per segment, then free segments wholly behind.
    let remaining = entries;
    for (const seg of this.segments) {
      if (seg.seq < this.ackPos.segment || seg.seq > pos.segment || remaining === 0) continue;
      const from = seg.seq === this.ackPos.segment ? this.ackPos.offset : 0;
      const to = seg.seq === pos.segment ? pos.offset : seg.size;
      const n = seg.seq === pos.segment ? remaining : Math.min(seg.entries, remaining);
      seg.entries -= n;
      remaining -= n;
      seg.firstAppendedAt = null;
      this.pendingB -= to - from;
    }
    this.pendingN -= entries - remaining;
    let ackPos = pos;
    const last = this.segments.at(-1)!;
    // At the end of a full, closed segment the position moves to the next one.
    while (this.segments.length > 1 && this.segments[0]!.seq <= ackPos.segment && (this.segments[0]!.seq < ackPos.segment || ackPos.offset >= this.segments[0]!.size) && this.segments[0] !== last) {
      const gone = this.segments.shift()!;
      if (gone.seq === ackPos.segment) ackPos = { segment: this.segments[0]!.seq, offset: 0 };
      rmSync(join(this.dir, segName(gone.seq)), { force: true });
    }
    this.ackPos = ackPos;
    if (this.pendingN === 0) this.pendingB = 0;
    this.writeAck();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.syncTimer);
    if (this.fd !== null) {
      fdatasyncSync(this.fd);
      closeSync(this.fd);
      this.fd = null;
    }
  }
}
