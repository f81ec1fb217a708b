// Failure windows kept in Redis, so the limits that guard against guessing (node TOTP codes,
// console passwords) count every instance's failures: an attacker spreading guesses over the
// instances behind a load balancer gets the budget of one. One sorted set per key holds the failure
// times of the window (at most `max` newest), each script call is atomic, and a key expires with its
// window. Limits that only protect one process's memory or sockets (connection caps, pre-auth
// budgets, log throttles) stay per instance on purpose: they guard local resources.
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

const PRUNE_AND_WAIT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then return 0 end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1])`;

const RECORD = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/**
 * A sliding window of failures per key: blocked once `max` failures are inside the last `windowMs`,
 * until the oldest of them leaves it (the in-memory windows of src/nodes and src/users, shared).
 */
export class RedisFailureWindow {
  constructor(
    private readonly redis: Redis | Cluster,
    /** Key prefix of this window, e.g. `{apiary-routing}:limit:totp-address:`. */
    private readonly prefix: string,
    private readonly max: number,
    private readonly windowMs: number,
    /**
     * Redis failed. The window then lets the attempt through unrecorded (fails open): refusing every
     * node registration and console login while Redis is away would be worse than a limit that
     * pauses for the outage, which the caller logs and counts.
     */
    private readonly onError: (err: Error) => void = () => undefined,
  ) {}

  /** Milliseconds until `key` may try again (0: now). */
  async blockedFor(key: string, now: number): Promise<number> {
    try {
      const wait = await this.redis.eval(PRUNE_AND_WAIT, 1, this.prefix + key, now, this.windowMs, this.max);
      return Math.max(0, Number(wait));
    } catch (err) {
      this.onError(err as Error);
      return 0;
    }
  }

  async isBlocked(key: string, now: number): Promise<boolean> {
    return (await this.blockedFor(key, now)) > 0;
  }

  async record(key: string, now: number): Promise<void> {
    // Two failures in the same millisecond are two failures: members are made unique.
    try {
      await this.redis.eval(RECORD, 1, this.prefix + key, now, this.windowMs, this.max, `${now}:${randomBytes(6).toString('hex')}`);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  async clear(key: string): Promise<void> {
    try {
      await this.redis.del(this.prefix + key);
    } catch (err) {
      this.onError(err as Error);
    }
  }
}
