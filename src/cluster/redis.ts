// What the cluster domain needs of Redis: an ioredis client (one server, Sentinel or Cluster: the
// composition root builds it from REDIS_URL) and Lua scripts sent by their SHA1 after the first use.
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;

export interface ClusterLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/**
 * Every key of this domain carries the hash tag `{apiary-cluster}`, so on a Redis Cluster they all
 * live in one slot and a script may touch several of them.
 */
export function clusterKey(prefix: string, name: string): string {
  return `${prefix}{apiary-cluster}:${name}`;
}

/** A Lua script run by EVALSHA, with EVAL when the server does not know it yet (restart, failover). */
export class LuaScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: RedisClient, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
