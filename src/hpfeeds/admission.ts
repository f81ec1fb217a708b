// What an unauthenticated peer may cost us: connection caps (global and per address) and AUTH
// failure limits (per address and per ident), with log lines rate limited per address so a flood
// produces a handful of lines, never one per connection.
import type { HpfeedsLogger } from './types.js';

export interface AdmissionLimits {
  /** Connections (TLS handshakes included) across all listeners. */
  maxConnections: number;
  /** Connections from one remote address. */
  maxConnectionsPerAddress: number;
  /** Failed AUTH attempts one address may make per window before its AUTHs are refused unchecked. */
  authFailuresPerAddress: number;
  /** Failed AUTH attempts against one existing ident per window (its last good address is exempt). */
  authFailuresPerIdent: number;
  /** Window of the AUTH failure limits. */
  authFailureWindowMs: number;
  /** At most one log line per address and kind in this interval. */
  logIntervalMs: number;
}

/** Bound on the entries of every per-address/per-ident table, whatever a flood of addresses does. */
const MAX_TRACKED = 10_000;

/** Fixed-window failure counters keyed by address or ident; bounded in size. */
class FailureWindows {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  blocked(key: string, now: number): boolean {
    const w = this.windows.get(key);
    return w !== undefined && now - w.start < this.windowMs && w.count >= this.limit;
  }

  record(key: string, now: number): void {
    const w = this.windows.get(key);
    if (w === undefined || now - w.start >= this.windowMs) {
      if (w !== undefined) this.windows.delete(key);
      this.windows.set(key, { start: now, count: 1 });
      if (this.windows.size > MAX_TRACKED) this.evict(now);
    } else {
      w.count++;
    }
  }

  private evict(now: number): void {
    for (const [key, w] of this.windows) {
      if (now - w.start >= this.windowMs) this.windows.delete(key);
    }
    // Still full of live windows: forget the oldest (insertion order); they were the least recent.
    for (const key of this.windows.keys()) {
      if (this.windows.size <= MAX_TRACKED * 0.9) break;
      this.windows.delete(key);
    }
  }
}

/** One log line per (kind, address) per interval; the next line says how many were suppressed. */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: HpfeedsLogger,
    private readonly intervalMs: number,
  ) {}

  warn(kind: string, address: string, obj: Record<string, unknown>, msg: string, now = Date.now()): void {
    const key = `${kind}\u0000${address}`;
    const entry = this.last.get(key);
    if (entry !== undefined && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    this.last.delete(key);
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > MAX_TRACKED) {
      for (const k of this.last.keys()) {
        if (this.last.size <= MAX_TRACKED * 0.9) break;
        this.last.delete(k);
      }
    }
    this.logger.warn({ ...obj, address, suppressedSinceLastLine: entry?.suppressed ?? 0 }, msg);
  }
}

export type ConnectionRefusal = 'global' | 'per-address';

export class Admission {
  private total = 0;
  private readonly perAddress = new Map<string, number>();
  private readonly addressFailures: FailureWindows;
  private readonly identFailures: FailureWindows;
  /** Address each ident last authenticated from: its own failures there do not lock it out. */
  private readonly lastGoodAddress = new Map<string, string>();
  readonly log: RateLimitedLog;

  constructor(
    readonly limits: AdmissionLimits,
    logger: HpfeedsLogger,
  ) {
    this.addressFailures = new FailureWindows(limits.authFailuresPerAddress, limits.authFailureWindowMs);
    this.identFailures = new FailureWindows(limits.authFailuresPerIdent, limits.authFailureWindowMs);
    this.log = new RateLimitedLog(logger, limits.logIntervalMs);
  }

  get connections(): number {
    return this.total;
  }

  /** Counts a new connection, or says why it is refused (then nothing is counted). */
  admit(address: string): ConnectionRefusal | undefined {
    if (this.total >= this.limits.maxConnections) return 'global';
    const n = this.perAddress.get(address) ?? 0;
    if (n >= this.limits.maxConnectionsPerAddress) return 'per-address';
    this.perAddress.set(address, n + 1);
    this.total++;
    return undefined;
  }

  release(address: string): void {
    const n = this.perAddress.get(address);
    if (n === undefined) return;
    if (n <= 1) this.perAddress.delete(address);
    else this.perAddress.set(address, n - 1);
    this.total--;
  }

  /** Whether AUTH from `address` is refused without looking at it. */
  addressBlocked(address: string, now = Date.now()): boolean {
    return this.addressFailures.blocked(address, now);
  }

  /** Whether AUTH for the existing `ident` from `address` is refused without checking the secret. */
  identBlocked(ident: string, address: string, now = Date.now()): boolean {
    return this.lastGoodAddress.get(ident) !== address && this.identFailures.blocked(ident, now);
  }

  /** `identExists`: only failures against real idents count per ident (unknown ones are attacker-chosen keys). */
  authFailed(address: string, ident: string, identExists: boolean, now = Date.now()): void {
    this.addressFailures.record(address, now);
    if (identExists && this.lastGoodAddress.get(ident) !== address) this.identFailures.record(ident, now);
  }

  authSucceeded(address: string, ident: string): void {
    this.lastGoodAddress.delete(ident);
    this.lastGoodAddress.set(ident, address);
    if (this.lastGoodAddress.size > MAX_TRACKED) {
      for (const k of this.lastGoodAddress.keys()) {
        if (this.lastGoodAddress.size <= MAX_TRACKED * 0.9) break;
        this.lastGoodAddress.delete(k);
      }
    }
  }
}
