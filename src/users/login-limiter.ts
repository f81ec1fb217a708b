// Failed console logins per source address and per username, over a sliding window. Past the limit
// further attempts are refused before any password is checked (no KDF work for a flood), until the
// oldest failure in the window ages out. Bounded memory: at most `maxKeys` keys per kind, the
// least recently failed ones forgotten first.

export interface LoginLimiterOptions {
  /** Failures allowed per key within the window. Default 10. */
  maxFailures?: number;
  /** Default 15 minutes. */
  windowMs?: number;
  /** Keys remembered per kind (addresses, usernames). Default 50 000. */
  maxKeys?: number;
  now?: () => number;
}

class FailureWindow {
  /** Failure times per key, oldest first, at most maxFailures each. Map order = least recent first. */
  private readonly byKey = new Map<string, number[]>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  private recent(key: string, now: number): number[] | undefined {
    const times = this.byKey.get(key);
    if (!times) return undefined;
    while (times.length > 0 && times[0]! <= now - this.windowMs) times.shift();
    if (times.length === 0) {
      this.byKey.delete(key);
      return undefined;
    }
    return times;
  }

  /** Milliseconds until `key` may try again, or 0. */
  blockedFor(key: string, now: number): number {
    const times = this.recent(key, now);
    if (!times || times.length < this.max) return 0;
    return times[0]! + this.windowMs - now;
  }

  fail(key: string, now: number): void {
    const times = this.recent(key, now) ?? [];
    times.push(now);
    if (times.length > this.max) times.shift();
    this.byKey.delete(key);
    this.byKey.set(key, times);
    if (this.byKey.size > this.maxKeys) this.byKey.delete(this.byKey.keys().next().value!);
  }

  clear(key: string): void {
    this.byKey.delete(key);
  }

  get size(): number {
    return this.byKey.size;
  }
}

export class LoginLimiter {
  private readonly bySource: FailureWindow;
  private readonly byUser: FailureWindow;
  private readonly now: () => number;

  constructor(opts: LoginLimiterOptions = {}) {
    const max = opts.maxFailures ?? 10;
    const windowMs = opts.windowMs ?? 15 * 60_000;
    const maxKeys = opts.maxKeys ?? 50_000;
    this.bySource = new FailureWindow(max, windowMs, maxKeys);
    this.byUser = new FailureWindow(max, windowMs, maxKeys);
    this.now = opts.now ?? Date.now;
  }

  /** Seconds until an attempt from `source` for `username` may be made (0: now), and which limit. */
  check(source: string, username: string): { retryAfterSeconds: number; limit?: 'source' | 'username' } {
    const now = this.now();
    const s = this.bySource.blockedFor(source, now);
    const u = this.byUser.blockedFor(username.toLowerCase(), now);
    const wait = Math.max(s, u);
    if (wait <= 0) return { retryAfterSeconds: 0 };
    return { retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)), limit: s >= u ? 'source' : 'username' };
  }

  failed(source: string, username: string): void {
    const now = this.now();
    this.bySource.fail(source, now);
    this.byUser.fail(username.toLowerCase(), now);
  }

  /**
   * A correct password clears the username's failures (its owner is back); the address keeps its
   * count, or one valid account would let an address guess at all the others.
   */
  succeeded(username: string): void {
    this.byUser.clear(username.toLowerCase());
  }

  /** Keys remembered (addresses, usernames), for tests of the bound. */
  sizes(): { sources: number; usernames: number } {
    return { sources: this.bySource.size, usernames: this.byUser.size };
  }
}

/** What the session routes need of a login limiter; a shared one answers asynchronously. */
export interface LoginLimits {
  check(source: string, username: string): LoginVerdict | Promise<LoginVerdict>;
  failed(source: string, username: string): void | Promise<void>;
  succeeded(username: string): void | Promise<void>;
}
export type LoginVerdict = { retryAfterSeconds: number; limit?: 'source' | 'username' };

/** A failure window kept outside this process, e.g. in Redis (src/cluster-routing/shared-limits.ts). */
export interface SharedFailureWindow {
  /** Milliseconds until `key` may try again (0: now). */
  blockedFor(key: string, now: number): Promise<number>;
  record(key: string, now: number): Promise<void>;
  clear(key: string): Promise<void>;
}

/**
 * The same limits as LoginLimiter, counted in windows every instance shares (several instances
 * behind one address: guesses spread over them still meet one budget).
 */
export class SharedLoginLimiter implements LoginLimits {
  private readonly now: () => number;

  constructor(
    private readonly bySource: SharedFailureWindow,
    private readonly byUser: SharedFailureWindow,
    now?: () => number,
  ) {
    this.now = now ?? Date.now;
  }

  async check(source: string, username: string): Promise<LoginVerdict> {
    const now = this.now();
    const [s, u] = await Promise.all([this.bySource.blockedFor(source, now), this.byUser.blockedFor(username.toLowerCase(), now)]);
    const wait = Math.max(s, u);
    if (wait <= 0) return { retryAfterSeconds: 0 };
    return { retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)), limit: s >= u ? 'source' : 'username' };
  }

  async failed(source: string, username: string): Promise<void> {
    const now = this.now();
    await Promise.all([this.bySource.record(source, now), this.byUser.record(username.toLowerCase(), now)]);
  }

  async succeeded(username: string): Promise<void> {
    await this.byUser.clear(username.toLowerCase());
  }
}
