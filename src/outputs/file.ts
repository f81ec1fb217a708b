// The rotating file output: lines appended with one write per committed batch (a local file needs
// no backlog: the write either lands in the page cache or fails at once and is counted). Rotation
// by size keeps `<path>.1` ... `<path>.<keep>` (the classic logger's RotatingFileHandler naming);
// rotation by time renames the file to `<path>.<YYYY-MM-DD>` (day) or `<path>.<YYYY-MM-DD_HH>` (hour)
// at the first write of a new UTC period and keeps the newest `keep` of them.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { FileOutputConfig } from './config.js';

function periodStart(ms: number, every: 'hour' | 'day'): number {
  const unit = every === 'hour' ? 3_600_000 : 86_400_000;
  return Math.floor(ms / unit) * unit;
}

function periodSuffix(start: number, every: 'hour' | 'day'): string {
  const iso = new Date(start).toISOString();
  return every === 'hour' ? `${iso.slice(0, 10)}_${iso.slice(11, 13)}` : iso.slice(0, 10);
}

export class RotatingFile {
  private fd: number;
  private size: number;
  private period: number;

  constructor(
    private readonly path: string,
    private readonly rotate: FileOutputConfig['rotate'],
    private readonly now: () => number = Date.now,
  ) {
    this.fd = openSync(path, 'a', 0o640);
    const st = fstatSync(this.fd);
    this.size = st.size;
    this.period = this.rotate.by === 'time' ? periodStart(st.size > 0 ? st.mtimeMs : this.now(), this.rotate.every) : 0;
  }

  /** Appends one buffer of whole lines (rotating first when due). Throws on a write error. */
  write(buf: Buffer): void {
    if (this.rotate.by === 'size' && this.size > 0 && this.size + buf.length > this.rotate.maxBytes) this.rotateBySize(this.rotate.keep);
    if (this.rotate.by === 'time') {
      const p = periodStart(this.now(), this.rotate.every);
      if (p !== this.period) {
        if (this.size > 0) this.rotateByTime(this.rotate.every, this.rotate.keep);
        this.period = p;
      }
    }
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off);
    this.size += buf.length;
  }

  private reopen(): void {
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  private rotateBySize(keep: number): void {
    if (keep === 0) rmSync(this.path, { force: true });
    else {
      for (let i = keep - 1; i >= 1; i--) if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      renameSync(this.path, `${this.path}.1`);
    }
    this.reopen();
  }

  private rotateByTime(every: 'hour' | 'day', keep: number): void {
    renameSync(this.path, `${this.path}.${periodSuffix(this.period, every)}`);
    const dir = dirname(this.path);
    const base = basename(this.path);
    const re = every === 'hour' ? /^\d{4}-\d{2}-\d{2}_\d{2}$/ : /^\d{4}-\d{2}-\d{2}$/;
    const old = readdirSync(dir)
      .filter((f) => f.startsWith(`${base}.`) && re.test(f.slice(base.length + 1)))
      .sort();
    for (const f of old.slice(0, Math.max(0, old.length - keep))) rmSync(join(dir, f), { force: true });
    this.reopen();
  }

  close(): void {
    closeSync(this.fd);
  }

  /** For tests: the current file's size. */
  get bytes(): number {
    return existsSync(this.path) ? statSync(this.path).size : 0;
  }
}
