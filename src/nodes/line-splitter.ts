// Newline framing for the TCP transport. Bytes are buffered (not strings) so a multi-byte UTF-8
// character split across segments decodes correctly. A line longer than the cap is dropped up to
// its terminating newline, and framing resumes after it: one bad line never ends the session.
// Segments can also be queued (enqueue) and framed a bounded number of lines at a time (drain), so
// one 64 KiB socket read does not have to be handled in a single event-loop turn.
export interface LineSink {
  line(text: string): void;
  /** A line exceeded the cap; `bytes` is how many were seen when it was given up. */
  oversized(bytes: number): void;
}

const NL = 0x0a;
const CR = 0x0d;

export class LineSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** True while skipping the rest of an oversized line. */
  private discarding = false;
  /** Queued segments not framed yet (enqueue/drain); the first is framed from queueOffset on. */
  private queue: Buffer[] = [];
  private queueOffset = 0;
  private queued = 0;
  /** Lines handled by the last feed() call. */
  private fedLines = 0;
  /** Bumped by clearQueue(), so a feed() in progress stops when a line handler clears the queue. */
  private epoch = 0;

  constructor(
    /** Mutable: the TCP transport raises it once the node has registered. */
    public maxLineBytes: number,
    private readonly sink: LineSink,
  ) {}

  /** Frames every line in `data` now. */
  push(data: Buffer): void {
    this.feed(data, 0, Infinity);
  }

  /** Queues a segment for drain(); nothing is framed yet. */
  enqueue(data: Buffer): void {
    if (data.length === 0) return;
    this.queue.push(data);
    this.queued += data.length;
  }

  /**
   * Frames queued segments, in order, until `maxLines` lines were handled (blank and oversized ones
   * count) or the queue is empty; true when it is empty.
   */
  drain(maxLines: number): boolean {
    let left = maxLines;
    while (this.queue.length > 0 && left > 0) {
      const data = this.queue[0]!;
      const from = this.queueOffset;
      const to = this.feed(data, from, left);
      if (this.queue[0] !== data) continue; // a sink callback cleared the queue meanwhile
      this.queued -= to - from;
      left -= this.fedLines;
      if (to >= data.length) {
        this.queue.shift();
        this.queueOffset = 0;
      } else {
        this.queueOffset = to;
      }
    }
    return this.queue.length === 0;
  }

  /** Drops what is queued and not framed yet (the connection is gone). */
  clearQueue(): void {
    this.epoch++;
    this.queue = [];
    this.queueOffset = 0;
    this.queued = 0;
  }

  /** Bytes queued by enqueue() and not framed yet. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Frames lines of data[start..] until `maxLines` were handled; returns where it stopped. */
  private feed(data: Buffer, start: number, maxLines: number): number {
    let lines = 0;
    const epoch = this.epoch;
    while (start < data.length && lines < maxLines && epoch === this.epoch) {
      const nl = data.indexOf(NL, start);
      if (nl === -1) {
        this.keep(data, start, data.length);
        start = data.length;
        break;
      }
      if (this.discarding) {
        this.discarding = false;
      } else if (this.buffered + (nl - start) > this.maxLineBytes + 1) {
        // +1 tolerates the '\r' of a maximal line ending in "\r\n".
        const seen = this.buffered + (nl - start);
        this.reset();
        this.sink.oversized(seen);
      } else {
        this.emit(data, start, nl);
      }
      start = nl + 1;
      lines++;
    }
    this.fedLines = lines;
    return start;
  }

  /** Bytes of an unterminated line held in memory (for tests and diagnostics). */
  get pendingBytes(): number {
    return this.buffered;
  }

  private keep(data: Buffer, start: number, end: number): void {
    if (this.discarding) return;
    const len = end - start;
    if (this.buffered + len > this.maxLineBytes + 1) {
      const seen = this.buffered + len;
      this.reset();
      this.discarding = true;
      this.sink.oversized(seen);
      return;
    }
    // Copy: the socket may reuse its buffer, and a slice would pin the whole segment.
    this.chunks.push(Buffer.from(data.subarray(start, end)));
    this.buffered += len;
  }

  private emit(data: Buffer, start: number, end: number): void {
    let line: Buffer;
    if (this.chunks.length === 0) {
      line = data.subarray(start, end);
    } else {
      this.chunks.push(data.subarray(start, end));
      line = Buffer.concat(this.chunks, this.buffered + (end - start));
      this.reset();
    }
    let len = line.length;
    if (len > 0 && line[len - 1] === CR) len--;
    if (len > this.maxLineBytes) {
      this.sink.oversized(len);
      return;
    }
    if (len === 0) return;
    const text = line.toString('utf8', 0, len);
    // Blank keep-alive lines are not envelopes and not errors.
    if (text.trim().length === 0) return;
    this.sink.line(text);
  }

  private reset(): void {
    this.chunks = [];
    this.buffered = 0;
  }
}
