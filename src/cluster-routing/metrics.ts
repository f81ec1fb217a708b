// Prometheus instruments of session routing: how often sessions move between instances and how
// the notices and Redis fare. Registered only when routing is on.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface RoutingMetrics {
  claim(): void;
  takenOver(): void;
  notice(kind: string): void;
  redisError(): void;
}

export function createRoutingMetrics(registry: Registry, counts: { remoteSessions(): number; liveInstances(): number }): RoutingMetrics {
  const claims = new Counter({ name: 'apiary_routing_claims_total', help: 'Node sessions this instance registered in the shared session registry', registers: [registry] });
  const takeovers = new Counter({
    name: 'apiary_routing_takeovers_total',
    help: 'Stale node sessions this instance closed because the node registered on another instance',
    registers: [registry],
  });
  const notices = new Counter({
    name: 'apiary_routing_notices_received_total',
    help: 'Notices received from other instances, by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const errors = new Counter({ name: 'apiary_routing_redis_errors_total', help: 'Redis errors seen by session routing', registers: [registry] });
  new Gauge({
    name: 'apiary_routing_remote_sessions',
    help: 'Node sessions held by the other live instances, as this instance sees the registry',
    registers: [registry],
    collect() {
      this.set(counts.remoteSessions());
    },
  });
  new Gauge({
    name: 'apiary_routing_live_instances',
    help: 'Instances whose heartbeat is current (this one included)',
    registers: [registry],
    collect() {
      this.set(counts.liveInstances());
    },
  });
  return {
    claim: () => claims.inc(),
    takenOver: () => takeovers.inc(),
    notice: (kind) => notices.inc({ kind }),
    redisError: () => errors.inc(),
  };
}
