import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CommandKind, TerminalStatus } from './types.js';

export interface CommandMetrics {
  finished(kind: CommandKind, status: TerminalStatus): void;
  delivered(seconds: number): void;
  answered(kind: CommandKind, seconds: number): void;
  rejected(reason: string): void;
  redisError(): void;
}

/**
 * Registers the command metrics on `registry`. A metric of the same name left by an earlier
 * service instance on the same registry (a service restarted in-process) is replaced.
 */
export function createCommandMetrics(
  registry: Registry,
  counts: { queued(): Promise<number>; inFlight(): Promise<number> },
): CommandMetrics {
  const fresh = <T>(name: string, make: () => T): T => {
    if (registry.getSingleMetric(name)) registry.removeSingleMetric(name);
    return make();
  };
  const total = fresh(
    'apiary_commands_total',
    () =>
      new Counter({
        name: 'apiary_commands_total',
        help: 'Operator commands that reached a final status, by NodeCommand kind and status',
        labelNames: ['kind', 'status'] as const,
        registers: [registry],
      }),
  );
  const delivery = fresh(
    'apiary_command_delivery_seconds',
    () =>
      new Histogram({
        name: 'apiary_command_delivery_seconds',
        help: 'Time from a command being accepted to it being written to its node (includes waiting for an offline node)',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400],
        registers: [registry],
      }),
  );
  const answer = fresh(
    'apiary_command_answer_seconds',
    () =>
      new Histogram({
        name: 'apiary_command_answer_seconds',
        help: 'Time from a command being sent to its final status, by kind',
        labelNames: ['kind'] as const,
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
        registers: [registry],
      }),
  );
  fresh(
    'apiary_commands_queued',
    () =>
      new Gauge({
        name: 'apiary_commands_queued',
        help: 'Commands accepted and not yet sent to their node',
        registers: [registry],
        async collect() {
          this.set(await counts.queued());
        },
      }),
  );
  fresh(
    'apiary_commands_in_flight',
    () =>
      new Gauge({
        name: 'apiary_commands_in_flight',
        help: 'Commands sent and awaiting their answer',
        registers: [registry],
        async collect() {
          this.set(await counts.inFlight());
        },
      }),
  );
  const rejected = fresh(
    'apiary_commands_rejected_total',
    () =>
      new Counter({
        name: 'apiary_commands_rejected_total',
        help: 'Command requests refused before being queued, by reason',
        labelNames: ['reason'] as const,
        registers: [registry],
      }),
  );
  const redisErrors = fresh(
    'apiary_command_queue_redis_errors_total',
    () =>
      new Counter({
        name: 'apiary_command_queue_redis_errors_total',
        help: 'Redis errors seen by the command queue (connection losses, failed queue operations)',
        registers: [registry],
      }),
  );

  const totalChildren = new Map<string, ReturnType<typeof total.labels>>();
  const answerChildren = new Map<string, ReturnType<typeof answer.labels>>();
  return {
    finished(kind, status) {
      const key = `${kind}\u0000${status}`;
      let c = totalChildren.get(key);
      if (!c) totalChildren.set(key, (c = total.labels(kind, status)));
      c.inc();
    },
    delivered(seconds) {
      delivery.observe(seconds);
    },
    answered(kind, seconds) {
      let h = answerChildren.get(kind);
      if (!h) answerChildren.set(kind, (h = answer.labels(kind)));
      h.observe(seconds);
    },
    rejected(reason) {
      rejected.labels(reason).inc();
    },
    redisError() {
      redisErrors.inc();
    },
  };
}
