// In-progress cowrie sessions in Redis, shared by the cores (the events domain's
// CowrieSessionState; see src/events/cowrie-shared.ts for why). Per session: a list of its event
// records (expiring when the session is idle far longer than the idle timeout), and its last
// activity as the score in one sorted set of open sessions. Taking a session out is atomic (a Lua
// script: ZREM decides who gets it), so exactly one core publishes each summary. A session taken
// because it closed leaves a short-lived tombstone: records of it that another core commits late
// (the tail of a node's old connection) are dropped instead of starting a second, partial summary.
import { clusterKey, LuaScript, type RedisClient } from './redis.js';

/** Same shapes as the events domain's CowrieSessionState (kept structural: no import across domains). */
export interface SessionUpdate {
  key: string;
  records: string[];
  closes: boolean;
}
export interface TakenSession {
  key: string;
  records: string[];
  reason: 'closed' | 'idle' | 'evicted';
}

// KEYS: open-set, then (list, tombstone) per update. ARGV: now, ttl, cap, tombMs, then per update:
// member, closes (0/1), count, records... Returns [member, records, ...] of the sessions closed.
const APPEND = new LuaScript(`
local now, ttl, cap, tombMs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local a, out = 5, {}
for i = 1, (#KEYS - 1) / 2 do
  local list, tomb = KEYS[2 * i], KEYS[2 * i + 1]
  local member, closes, n = ARGV[a], ARGV[a + 1] == '1', tonumber(ARGV[a + 2])
  a = a + 3
  if redis.call('EXISTS', tomb) == 0 then
    local len = redis.call('LLEN', list)
    for j = 0, n - 1 do
      if len < cap or (closes and j == n - 1) then
        redis.call('RPUSH', list, ARGV[a + j])
        len = len + 1
      end
    end
    if closes then
      out[#out + 1] = member
      out[#out + 1] = redis.call('LRANGE', list, 0, -1)
      redis.call('DEL', list)
      redis.call('ZREM', KEYS[1], member)
      redis.call('SET', tomb, '1', 'PX', tombMs)
    else
      redis.call('PEXPIRE', list, ttl)
      redis.call('ZADD', KEYS[1], now, member)
    end
  end
  a = a + n
end
return out`);

// KEYS: open-set, then the list of each candidate. ARGV: idleBefore, then (member, evict 0/1) per
// candidate. A candidate is taken if still open and, unless evicted, still idle. Returns
// [member, reason, records, ...].
const TAKE = new LuaScript(`
local idleBefore = tonumber(ARGV[1])
local out = {}
for i = 2, #KEYS do
  local member, evict = ARGV[2 * i - 2], ARGV[2 * i - 1] == '1'
  local score = redis.call('ZSCORE', KEYS[1], member)
  if score and (evict or tonumber(score) < idleBefore) then
    redis.call('ZREM', KEYS[1], member)
    out[#out + 1] = member
    out[#out + 1] = evict and 'evicted' or 'idle'
    out[#out + 1] = redis.call('LRANGE', KEYS[i], 0, -1)
    redis.call('DEL', KEYS[i])
  end
end
return out`);

export interface RedisCowrieSessionStateOptions {
  redis: RedisClient;
  /** Key prefix (before the cluster hash tag). Default 'apiary:'. */
  prefix?: string;
  /** Records kept per session (beyond it only the close is added). Default 5000. */
  maxRecords?: number;
  /** An idle session's records expire after this (the idle sweep normally takes it long before). Default 1 h. */
  ttlMs?: number;
  /** How long records of a closed session are refused. Default 10 min. */
  tombstoneMs?: number;
  /** Sessions taken per idle sweep at most. Default 500. */
  takeBatch?: number;
}

export class RedisCowrieSessionState {
  private readonly open: string;
  private readonly prefix: string;

  constructor(private readonly opts: RedisCowrieSessionStateOptions) {
    this.prefix = opts.prefix ?? 'apiary:';
    this.open = clusterKey(this.prefix, 'cowrie:open');
  }

  async append(updates: readonly SessionUpdate[], now: number): Promise<TakenSession[]> {
    const keys = [this.open];
    const args: (string | number)[] = [now, this.opts.ttlMs ?? 3_600_000, this.opts.maxRecords ?? 5000, this.opts.tombstoneMs ?? 600_000];
    for (const u of updates) {
      keys.push(this.listKey(u.key), this.tombKey(u.key));
      args.push(u.key, u.closes ? '1' : '0', u.records.length, ...u.records);
    }
    const reply = (await APPEND.run(this.opts.redis, keys, args)) as (string | string[])[];
    const out: TakenSession[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push({ key: reply[i] as string, records: reply[i + 1] as string[], reason: 'closed' });
    return out;
  }

  async takeIdle(idleBefore: number, maxOpen: number): Promise<TakenSession[]> {
    const redis = this.opts.redis;
    const batch = this.opts.takeBatch ?? 500;
    const idle = await redis.zrangebyscore(this.open, '-inf', `(${idleBefore}`, 'LIMIT', 0, batch);
    const count = await redis.zcard(this.open);
    const over = Math.min(batch, count - idle.length - maxOpen);
    const candidates = new Map<string, boolean>(idle.map((m) => [m, false]));
    if (over > 0) {
      // The oldest by last activity go first (a session never closed nor idle yet is rare).
      for (const m of await redis.zrange(this.open, 0, over + idle.length - 1)) if (!candidates.has(m)) candidates.set(m, true);
    }
    if (candidates.size === 0) return [];
    const keys = [this.open];
    const args: (string | number)[] = [idleBefore];
    for (const [member, evict] of candidates) {
      keys.push(this.listKey(member));
      args.push(member, evict ? '1' : '0');
    }
    const reply = (await TAKE.run(redis, keys, args)) as (string | string[])[];
    const out: TakenSession[] = [];
    for (let i = 0; i + 2 < reply.length; i += 3) {
      out.push({ key: reply[i] as string, reason: reply[i + 1] as 'idle' | 'evicted', records: reply[i + 2] as string[] });
    }
    return out;
  }

  private listKey(member: string): string {
    return clusterKey(this.prefix, 'cowrie:s:' + member);
  }

  private tombKey(member: string): string {
    return clusterKey(this.prefix, 'cowrie:t:' + member);
  }
}
