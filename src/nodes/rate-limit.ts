// Failed-authentication limiter over a sliding window. Only failures that could be guesses (wrong
// or missing TOTP code) are recorded; once a key has `max` failures inside the window, further
// attempts are refused unchecked until the oldest failure leaves the window. Refused attempts are
// not recorded, so a node that keeps retrying every few seconds is let back in after the cool-down.
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    /** Bound on tracked keys, so a spray of source addresses cannot grow memory without limit. */
    private readonly maxKeys = 100_000,
  ) {}

  isBlocked(key: string, now: number): boolean {
    const list = this.prune(key, now);
    return list !== undefined && list.length >= this.max;
  }

  record(key: string, now: number): void {
    const list = this.prune(key, now);
    if (list) {
      list.push(now);
      return;
    }
    if (this.failures.size >= this.maxKeys) this.sweep(now);
    if (this.failures.size >= this.maxKeys) {
      // Still full of live entries: forget the oldest-inserted key rather than refuse to track.
      const first = this.failures.keys().next();
      if (!first.done) this.failures.delete(first.value);
    }
    this.failures.set(key, [now]);
  }

  /** Drops keys whose failures have all left the window. */
  sweep(now: number): void {
    for (const key of this.failures.keys()) this.prune(key, now);
  }

  get size(): number {
    return this.failures.size;
  }

  private prune(key: string, now: number): number[] | undefined {
    const list = this.failures.get(key);
    if (!list) return undefined;
    const cutoff = now - this.windowMs;
    let drop = 0;
    while (drop < list.length && list[drop] <= cutoff) drop++;
    if (drop === list.length) {
      this.failures.delete(key);
      return undefined;
    }
    if (drop > 0) list.splice(0, drop);
    return list;
  }
}
