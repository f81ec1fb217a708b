// Several cores (CLUSTER_ENABLED, implied by INSTANCE_ID): what each core joins, built from the
// config. Two parts with one switch: the cluster member (src/cluster: event and hpfeeds fan-out,
// cowrie sessions in Redis, the leader lease) and session routing (src/cluster-routing: which core
// holds each node's session, commands delivered there, takeovers, revocations and guess limits
// shared). Either alone would leave the other half of "any core accepts anything" broken, so they
// are never switched separately. src/app.ts wires them into the domains.
import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import { createCluster, type ClusterMember } from '../cluster/index.js';
import { startSessionRouting, type SessionRouting } from '../cluster-routing/index.js';
import type { Config } from '../config/index.js';
import { createRedisClient, describeRedisTarget, parseRedisUrl } from '../redis/index.js';

/** This core's name among the others: INSTANCE_ID, or the host name. */
export function instanceIdOf(config: Config): string {
  return config.instanceId ?? hostname();
}

/** This core's cluster membership, on two Redis connections of its own (one blocks in XREAD). */
export function clusterMember(config: Config, logger: FastifyBaseLogger, registry: Registry): ClusterMember {
  const target = parseRedisUrl(config.redisUrl!);
  // No per-command retry limit: writes wait out a Redis restart (the fan-out bounds how many).
  // Their failures are logged by the fan-out and the lease, throttled: not by ioredis per retry.
  const client = () => createRedisClient(target, { maxRetriesPerRequest: null }).on('error', () => undefined);
  const instanceId = instanceIdOf(config);
  logger.info({ instance: instanceId, redis: describeRedisTarget(target) }, 'cluster mode: sharing events, hpfeeds publishes, cowrie sessions and the leader lease through Redis');
  return createCluster({
    instanceId,
    redis: client(),
    reader: client(),
    logger: logger.child({ domain: 'cluster', instance: instanceId }),
    registry,
    leaseMs: config.clusterLeaseMs,
    fanoutMaxLen: config.clusterFanoutMaxLen,
  });
}

/**
 * Joins the node session registry (its own Redis connections). Must run before the token service
 * and the node gateway exist: the gateway starts from the registry's view of who is online where.
 */
export function clusterRouting(config: Config, logger: FastifyBaseLogger, registry: Registry): Promise<SessionRouting> {
  return startSessionRouting({ redisUrl: config.redisUrl!, instanceId: instanceIdOf(config), logger: logger.child({ domain: 'routing' }), registry });
}
