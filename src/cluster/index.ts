// Public surface of the cluster domain: what lets several `apiary serve` cores share one database
// and one Redis. Cross-core fan-out of committed events and hpfeeds client publishes (fanout.ts),
// cowrie sessions whose events arrive at different cores (cowrie-state.ts), and the leader lease
// that keeps periodic work on one core at a time (lease.ts). It is given its Redis clients and
// logger (the composition root builds them from the config) and reaches for nothing else.
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import { RedisCowrieSessionState } from './cowrie-state.js';
import { RedisCowrieTextState } from './cowrie-text-state.js';
import { ClusterFanout, type FanoutEvent, type FanoutHandlers } from './fanout.js';
import { LeaderLease } from './lease.js';
import { OutboxRelay, type OutboxPort } from './outbox-relay.js';
import { clusterKey, type ClusterLogger, type RedisClient } from './redis.js';

export { ClusterFanout, type ClusterFanoutOptions, type FanoutEvent, type FanoutHandlers, type FanoutPublication } from './fanout.js';
export { LeaderLease, type LeaderLeaseOptions } from './lease.js';
export { OutboxRelay, type OutboxPort, type OutboxRelayOptions } from './outbox-relay.js';
export { RedisCowrieSessionState, type RedisCowrieSessionStateOptions } from './cowrie-state.js';
export { RedisCowrieTextState, type RedisCowrieTextStateOptions } from './cowrie-text-state.js';
export { clusterKey, type ClusterLogger, type RedisClient } from './redis.js';

export interface ClusterOptions {
  /** This core's name among the others (INSTANCE_ID); logs and the leader gauge show it. */
  instanceId: string;
  /** Commands: stream writes, the lease, the cowrie session state. */
  redis: RedisClient;
  /** A second connection, for the blocking stream reads. */
  reader: RedisClient;
  logger: ClusterLogger;
  registry?: Registry;
  /** Key prefix (before the hash tag). Default 'apiary:'. */
  prefix?: string;
  leaseMs?: number;
  /** Fan-out stream entries kept (approximately). Default 2000. */
  fanoutMaxLen?: number;
  /** A batch still in the outbox this long after its commit is handed on by the leader. Default 10 000 ms. */
  outboxStaleMs?: number;
}

export interface ClusterMember {
  readonly instanceId: string;
  /** instanceId plus an id of this start: what the stream entries and the lease are tagged with. */
  readonly origin: string;
  readonly fanout: ClusterFanout;
  readonly lease: LeaderLease;
  readonly cowrieSessions: RedisCowrieSessionState;
  /** The open sessions of the real node's cowrie text lines, per node and sensor. */
  readonly cowrieText: RedisCowrieTextState;
  /** True while this core holds the leader lease (periodic work runs here). */
  leading(): boolean;
  /**
   * A batch this core committed (and published here): on to the other cores. With an outbox,
   * its note is then forgotten; without one (a database the cores do not share), a core killed
   * between its commit and this write leaves that batch unpublished elsewhere.
   */
  committed(events: readonly FanoutEvent[]): void;
  /**
   * Starts reading the fan-out stream (handing what others publish to `handlers`) and the lease;
   * with the shared database's outbox, also the relay that hands on what dead cores left there.
   */
  start(handlers: FanoutHandlers, outbox?: OutboxPort): Promise<void>;
  /** Sends what is buffered, releases the lease, closes both Redis clients. */
  close(): Promise<void>;
}

export function createCluster(opts: ClusterOptions): ClusterMember {
  const prefix = opts.prefix ?? 'apiary:';
  const origin = `${opts.instanceId}/${randomBytes(4).toString('hex')}`;
  const fanout = new ClusterFanout({
    redis: opts.redis,
    reader: opts.reader,
    key: clusterKey(prefix, 'fanout'),
    origin,
    maxLen: opts.fanoutMaxLen ?? 2000,
    logger: opts.logger,
    registry: opts.registry,
  });
  const lease = new LeaderLease({
    redis: opts.redis,
    key: clusterKey(prefix, 'leader'),
    holder: origin,
    instance: opts.instanceId,
    leaseMs: opts.leaseMs,
    logger: opts.logger,
    registry: opts.registry,
  });
  const cowrieSessions = new RedisCowrieSessionState({ redis: opts.redis, prefix });
  const cowrieText = new RedisCowrieTextState({ redis: opts.redis, prefix });
  let relay: OutboxRelay | undefined;
  let closing: Promise<void> | undefined;
  return {
    instanceId: opts.instanceId,
    origin,
    fanout,
    lease,
    cowrieSessions,
    cowrieText,
    leading: () => lease.leading,
    committed(events) {
      if (relay) relay.committed(events);
      else void fanout.committed(events);
    },
    async start(handlers, outbox) {
      if (outbox) {
        relay = new OutboxRelay({ outbox, fanout, leading: () => lease.leading, logger: opts.logger, registry: opts.registry, staleMs: opts.outboxStaleMs });
        relay.start();
      }
      await fanout.start(handlers);
      lease.start();
    },
    close() {
      closing ??= (async () => {
        await fanout.close();
        await relay?.close();
        await lease.stop({ release: true });
        // QUIT lets replies in flight arrive; a Redis that is away gets a second, then the socket goes.
        await Promise.race([opts.redis.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
        opts.redis.disconnect();
        opts.reader.disconnect();
      })();
      return closing;
    },
  };
}
