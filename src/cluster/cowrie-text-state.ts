// The open sessions of the real node's cowrie text, shared by the cores (the events domain's
// CowrieTextState; see src/events/cowrie-text-shared.ts for why): one hash per node, a field per
// sensor holding its open sessions as JSON, expiring an hour after the node's last change (the
// events domain forgets an open session idle for that long too).
import { clusterKey, type RedisClient } from './redis.js';

/** Same shape as the events domain's CowrieTextEntry (structural: no import across domains). */
export interface TextSessionEntry {
  node: string;
  sensor: string;
  open: { id: string; srcIp: string; startedAt: number }[];
}

export interface RedisCowrieTextStateOptions {
  redis: RedisClient;
  prefix?: string;
  /** Default 1 h. */
  ttlMs?: number;
}

export class RedisCowrieTextState {
  constructor(private readonly opts: RedisCowrieTextStateOptions) {}

  async save(entries: readonly TextSessionEntry[]): Promise<void> {
    const multi = this.opts.redis.multi();
    const touched = new Set<string>();
    for (const e of entries) {
      const key = this.key(e.node);
      if (e.open.length === 0) multi.hdel(key, e.sensor);
      else multi.hset(key, e.sensor, JSON.stringify(e.open));
      touched.add(key);
    }
    for (const key of touched) multi.pexpire(key, this.opts.ttlMs ?? 3_600_000);
    await multi.exec();
  }

  async load(node: string): Promise<TextSessionEntry[]> {
    const fields = await this.opts.redis.hgetall(this.key(node));
    const out: TextSessionEntry[] = [];
    for (const [sensor, json] of Object.entries(fields)) {
      try {
        out.push({ node, sensor, open: JSON.parse(json) as TextSessionEntry['open'] });
      } catch {
        // a field this version cannot read: as if nothing were open there
      }
    }
    return out;
  }

  private key(node: string): string {
    return clusterKey(this.opts.prefix ?? 'apiary:', 'cowrie-text:' + node);
  }
}
