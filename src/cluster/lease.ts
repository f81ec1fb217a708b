// Leader lease: of several cores sharing one database, one at a time runs the periodic work
// (retention sweeps, console session sweeps, node log retention). The lease is one Redis key:
// taken with SET NX PX, renewed only by its holder (compare-and-set in Lua: GET = me, then PEXPIRE),
// released on a graceful stop (compare-and-delete). A holder that dies stops renewing and the key
// expires: another core takes it at its next try, within lease + renew interval.
//
// Why a paused holder cannot do harm: `leading` is true only until the lease the holder last
// confirmed would end, counted from before the renew was sent (the server's expiry comes later
// than that), so a holder frozen past that point (GC pause, SIGSTOP, lost Redis) stops counting
// itself the leader by its own clock, before anyone else can have taken the key; and once
// another core holds the key, the compare-and-set refuses the old holder's renew.
import { performance } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';
import { LuaScript, type ClusterLogger, type RedisClient } from './redis.js';

const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`);
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export interface LeaderLeaseOptions {
  redis: RedisClient;
  key: string;
  /** Who holds it: unique per running core (instance id and a per-start id). */
  holder: string;
  /** Lease length. Default 15 000 ms. */
  leaseMs?: number;
  /** Renew / retry period. Default a third of the lease. */
  renewMs?: number;
  logger: ClusterLogger;
  registry?: Registry;
  /** Label value of the gauge (the instance id). Default: holder. */
  instance?: string;
}

export class LeaderLease {
  private readonly leaseMs: number;
  private readonly renewMs: number;
  /** performance.now() until which the lease is ours; 0 while not holding. */
  private validUntil = 0;
  private lastLeading = false;
  private lastSeenHolder: string | null | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private ticking: Promise<boolean> | undefined;
  private stopped = false;
  private readonly listeners = new Set<(leading: boolean) => void>();

  constructor(private readonly opts: LeaderLeaseOptions) {
    this.leaseMs = Math.max(100, opts.leaseMs ?? 15_000);
    this.renewMs = Math.max(20, Math.min(opts.renewMs ?? Math.floor(this.leaseMs / 3), this.leaseMs / 2));
    if (opts.registry !== undefined) {
      const gauge: Gauge<'instance'> = new Gauge({
        name: 'apiary_cluster_leader',
        help: 'Whether this core holds the leader lease and runs the periodic work (1) or not (0)',
        labelNames: ['instance'],
        registers: [opts.registry],
        collect: () => gauge.set({ instance: opts.instance ?? opts.holder }, this.leading ? 1 : 0),
      });
    }
  }

  /** True while this core holds an unexpired lease (by its own clock). */
  get leading(): boolean {
    return this.validUntil > performance.now();
  }

  /** The holder last seen (this core's id when leading; null: nobody). */
  get leader(): string | null | undefined {
    return this.leading ? this.opts.holder : this.lastSeenHolder;
  }

  /** Listens to leadership changes; returns the unsubscribe function. */
  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tries at once, then every renew period. */
  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.renewMs);
    this.timer.unref();
  }

  /**
   * One renew (when holding) or acquire attempt; resolves with `leading`. The timer calls it;
   * tests call it to drive holders by hand. Concurrent calls share one attempt.
   */
  tick(): Promise<boolean> {
    this.ticking ??= this.attempt().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  /**
   * Stops renewing. With release (a graceful stop) the key is deleted if still ours, so another
   * core takes over at its next try instead of after the lease.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    // An attempt waiting on a Redis that is away is not waited for long (its result no longer matters).
    if (this.ticking !== undefined) await Promise.race([this.ticking.catch(() => undefined), delay(1000)]);
    const held = this.leading;
    this.validUntil = 0;
    this.changed();
    if (this.expiry !== undefined) clearTimeout(this.expiry);
    if (held && opts.release !== false) {
      try {
        await Promise.race([RELEASE.run(this.opts.redis, [this.opts.key], [this.opts.holder]), delay(1000)]);
      } catch (err) {
        this.opts.logger.warn({ err }, 'could not release the leader lease; another core takes it when it expires');
      }
    }
  }

  private async attempt(): Promise<boolean> {
    if (this.stopped) return false;
    const { redis, key, holder } = this.opts;
    const sentAt = performance.now();
    try {
      if (this.validUntil > 0) {
        const renewed = await RENEW.run(redis, [key], [holder, this.leaseMs]);
        if (Number(renewed) === 1) this.hold(sentAt);
        else {
          this.validUntil = 0;
          this.noteHolder(await redis.get(key));
        }
      } else {
        const taken = await redis.set(key, holder, 'PX', this.leaseMs, 'NX');
        if (taken === 'OK') this.hold(sentAt);
        else this.noteHolder(await redis.get(key));
      }
    } catch (err) {
      // Still leading until the confirmed lease ends (the expiry timer steps down then).
      this.opts.logger.warn({ err: (err as Error)?.message ?? err }, 'leader lease: Redis unreachable; retrying');
    }
    if (this.stopped) this.validUntil = 0;
    this.changed();
    return this.leading;
  }

  private hold(sentAt: number): void {
    this.validUntil = sentAt + this.leaseMs;
    this.lastSeenHolder = this.opts.holder;
    // Step down on time even if no renew gets through (Redis gone, event loop late).
    if (this.expiry !== undefined) clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.changed(), Math.max(0, this.validUntil - performance.now()) + 1);
    this.expiry.unref();
  }

  private noteHolder(holder: string | null): void {
    if (holder === this.lastSeenHolder) return;
    this.lastSeenHolder = holder;
    if (holder !== null) this.opts.logger.info({ leader: holder, instance: this.opts.holder }, 'another core holds the leader lease and runs the periodic work');
  }

  private changed(): void {
    const leading = this.leading;
    if (leading === this.lastLeading) return;
    this.lastLeading = leading;
    if (leading) this.opts.logger.info({ leader: this.opts.holder }, 'this core now holds the leader lease and runs the periodic work');
    else this.opts.logger.warn({ instance: this.opts.holder }, 'this core no longer holds the leader lease; periodic work stops here');
    for (const l of this.listeners) {
      try {
        l(leading);
      } catch (err) {
        this.opts.logger.error({ err }, 'leader lease listener failed');
      }
    }
  }
}
