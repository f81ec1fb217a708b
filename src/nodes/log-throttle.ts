// At most one log line per key (a source address) per interval; what it held back is counted and
// reported on the next line of that key. A flood from one address costs one line a minute, and a
// flood from many addresses is bounded by `maxKeys` tracked addresses.
export class KeyedLogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  /**
   * Whether to write a line for `key` now; when true, `suppressed` says how many were held back
   * since the previous line of that key.
   */
  take(key: string, now: number): { log: true; suppressed: number } | { log: false } {
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return { log: false };
    }
    if (!entry && this.last.size >= this.maxKeys) {
      this.sweep(now);
      // Still full of live keys: a spray of addresses. Stay quiet for new ones (the metrics count).
      if (this.last.size >= this.maxKeys) return { log: false };
    }
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(key, { at: now, suppressed: 0 });
    return { log: true, suppressed };
  }

  sweep(now: number): void {
    for (const [key, e] of this.last) if (now - e.at >= this.intervalMs) this.last.delete(key);
  }
}
