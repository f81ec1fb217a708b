// Newline framing for the TCP transport. Bytes are buffered (not strings) so a multi-byte UTF-8
// character split across segments decodes correctly. A line longer than the cap is dropped up to
// its terminating newline, and framing resumes after it: one bad line never ends the session.
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

  constructor(
    /** Mutable: the TCP transport raises it once the node has registered. */
    public maxLineBytes: number,
    private readonly sink: LineSink,
  ) {}

  push(data: Buffer): void {
    let start = 0;
    while (start < data.length) {
      const nl = data.indexOf(NL, start);
      if (nl === -1) {
        this.keep(data, start, data.length);
        return;
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
    }
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
