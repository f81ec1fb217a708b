// TOTP guess limits that cannot be turned against the real node.
//
// A failure (wrong or missing code) is recorded against three keys:
//   - the source address (all names): one address cannot spray guesses over the fleet;
//   - the pair (name, address): a node whose clock drifted cools down on its own;
//   - the name, but only when the attempt comes from an address other than the one the node last
//     authenticated from ("untrusted" failures).
// The real node authenticates from its trusted address, where only the first two keys apply, and
// an attacker elsewhere cannot make failures from that address: whatever they do, the real node
// is never refused because of them. Guessing from many addresses is bounded by the per-name
// untrusted budget, which is therefore kept small and over a long window.
//
// The arithmetic, with the defaults (10 untrusted failures per name per 24 h):
//   a code is 6 digits; with the +-1 step tolerance 3 codes of 10^6 are valid at any moment
//   (fewer once a step was spent), so one guess succeeds with p <= 3e-6;
//   per name and day at most 10 guesses from anywhere but the trusted address:
//   P(success in a day) <= 10 x 3e-6 = 3e-5; in a year <= 365 x 3e-5 ~= 1.1 %, an expected
//   ~90 years per node; every one of those guesses is logged and counted
//   (apiary_node_auth_failures_total). The previous limit (5 per minute per name, from anywhere)
//   allowed 7200 guesses a day: 2.2 % a day, and let anyone lock the real node out.
// The cost of a small budget: once an attacker spends it, a node that moved to a new address (or
// a provisioned node that never authenticated yet) waits until the window frees a slot; the
// trusted address never waits.
import { withDefaults } from './limits.js';
import { FailureLimiter } from './rate-limit.js';

export interface RateLimitOptions {
  /** Sliding window of the per-address and per-(name, address) limits. Default 60 000 ms. */
  windowMs?: number;
  /** Failures per node_name from one address inside `windowMs`. Default 5. */
  maxFailuresPerName?: number;
  /** Failures per remote address (all names; several nodes may share a NAT) inside `windowMs`. Default 20. */
  maxFailuresPerAddress?: number;
  /** Failures per node_name from addresses other than its last authenticated one, inside `untrustedWindowMs`. Default 10. */
  maxUntrustedFailuresPerName?: number;
  /** Default 24 h. */
  untrustedWindowMs?: number;
}

export const RATE_LIMIT_DEFAULTS = {
  windowMs: 60_000,
  maxFailuresPerName: 5,
  maxFailuresPerAddress: 20,
  maxUntrustedFailuresPerName: 10,
  untrustedWindowMs: 24 * 3600_000,
};

export interface GuessSource {
  name: string;
  /** The exact socket peer address. */
  address: string;
  /** Its key for per-address limits (see addressKey: an IPv6 /64). */
  addressKey: string;
  /** The attempt comes from the exact address the node last authenticated from. */
  trusted: boolean;
}

/**
 * One failure budget: FailureLimiter in memory (one instance), or a window shared by every instance
 * (session routing: see src/cluster-routing/shared-limits.ts).
 */
export interface FailureCounter {
  isBlocked(key: string, now: number): boolean | Promise<boolean>;
  record(key: string, now: number): void | Promise<void>;
  /** In-memory counters forget expired keys here; shared ones expire by themselves. */
  sweep?(now: number): void;
  readonly size?: number;
}

/** Makes the counter of one budget; `name` tells the three apart (address, pair, untrusted). */
export type FailureCounterFactory = (name: 'address' | 'pair' | 'untrusted', max: number, windowMs: number) => FailureCounter;

const inMemory: FailureCounterFactory = (_name, max, windowMs) => new FailureLimiter(max, windowMs);

export class TotpGuessLimiter {
  private readonly byAddress: FailureCounter;
  private readonly byNameAndAddress: FailureCounter;
  private readonly untrustedByName: FailureCounter;

  constructor(opts: RateLimitOptions = {}, counters: FailureCounterFactory = inMemory) {
    const o = withDefaults(RATE_LIMIT_DEFAULTS, opts);
    this.byAddress = counters('address', o.maxFailuresPerAddress, o.windowMs);
    this.byNameAndAddress = counters('pair', o.maxFailuresPerName, o.windowMs);
    this.untrustedByName = counters('untrusted', o.maxUntrustedFailuresPerName, o.untrustedWindowMs);
  }

  /** Synchronous with in-memory counters; a Promise with shared ones. */
  blocked(src: GuessSource, now: number): boolean | Promise<boolean> {
    // The trusted path depends on nothing another host can send: not even on the address-wide
    // limit, which an IPv6 neighbour in the same /64 could fill.
    if (src.trusted) return this.byNameAndAddress.isBlocked(pairKey(src), now);
    return anyBlocked([
      () => this.byAddress.isBlocked(src.addressKey, now),
      () => this.byNameAndAddress.isBlocked(pairKey(src), now),
      () => this.untrustedByName.isBlocked(src.name, now),
    ]);
  }

  record(src: GuessSource, now: number): void | Promise<void> {
    const done = [this.byNameAndAddress.record(pairKey(src), now)];
    if (!src.trusted) done.push(this.byAddress.record(src.addressKey, now), this.untrustedByName.record(src.name, now));
    const waiting = done.filter((d): d is Promise<void> => d instanceof Promise);
    if (waiting.length > 0) return Promise.all(waiting).then(() => undefined);
  }

  sweep(now: number): void {
    this.byAddress.sweep?.(now);
    this.byNameAndAddress.sweep?.(now);
    this.untrustedByName.sweep?.(now);
  }

  /** Keys tracked in memory over all three budgets (what sweep() bounds: sources never seen again). */
  get trackedKeys(): number {
    return (this.byAddress.size ?? 0) + (this.byNameAndAddress.size ?? 0) + (this.untrustedByName.size ?? 0);
  }
}

/** The first check that says blocked, in order, staying synchronous while the checks are. */
function anyBlocked(checks: Array<() => boolean | Promise<boolean>>): boolean | Promise<boolean> {
  for (let i = 0; i < checks.length; i++) {
    const r = checks[i]!();
    if (r instanceof Promise) return r.then((b) => b || anyBlocked(checks.slice(i + 1)));
    if (r) return true;
  }
  return false;
}

function pairKey(src: GuessSource): string {
  return src.trusted ? `${src.name}\0=${src.address}` : `${src.name}\0${src.addressKey}`;
}
