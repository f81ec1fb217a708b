// Several cores: before a node's RegistrationAck is written, the gate reads what the other cores
// left for the node (its open cowrie text sessions, src/events/cowrie-text-shared.ts). A node
// speaks only after its ack, so holding the ack makes its first lines meet that state. The hold
// is per node (other sessions go on) and bounded: past the bound the ack goes out anyway, counted
// and logged. Without a gate (one core) nothing is held and the ack goes out in the same turn.
import type { FastifyBaseLogger } from 'fastify';
import type { NodeMetrics } from './metrics.js';

/** Work to wait for before the node's ack: undefined when there is none for that node. */
export type AckGate = (nodeName: string) => Promise<void> | undefined;

export class AckHold {
  private gate: AckGate | undefined;
  private maxWaitMs = 2000;

  constructor(
    private readonly metrics: NodeMetrics,
    private readonly logger: FastifyBaseLogger,
  ) {}

  set(gate: AckGate | undefined, maxWaitMs = 2000): void {
    this.gate = gate;
    this.maxWaitMs = maxWaitMs;
  }

  /** Resolves when the node's ack may be written (never rejects); undefined: at once. */
  before(nodeName: string): Promise<void> | undefined {
    const work = this.gate?.(nodeName);
    if (work === undefined) return undefined;
    const started = Date.now();
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = (result: 'ready' | 'timeout' | 'failed', err?: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.metrics.ackHolds.inc({ result });
        if (result !== 'ready') {
          this.logger.warn(
            { nodeName, waitedMs: Date.now() - started, maxWaitMs: this.maxWaitMs, result, ...(err !== undefined ? { err } : {}) },
            `RegistrationAck sent before the node's shared state was read (${result === 'timeout' ? 'timed out' : 'the read failed'}); its first lines may miss what another core had open for it`,
          );
        }
        resolve();
      };
      const timer = setTimeout(() => finish('timeout'), this.maxWaitMs);
      work.then(
        () => finish('ready'),
        (err: unknown) => finish('failed', err),
      );
    });
  }
}
