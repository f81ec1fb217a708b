// Per-output metrics on the registry the composition root passes in. Backlog and lag are read at
// scrape time from the outputs themselves (no timers on the hot path).
import { Counter, Gauge, type Registry } from 'prom-client';

export interface OutputGauges {
  name: string;
  backlogEntries(): number;
  backlogBytes(): number;
  /** Seconds the oldest undelivered record has waited (0 when none). */
  lagSeconds(): number;
}

export class OutputMetrics {
  readonly sent: Counter<'output'>;
  readonly failed: Counter<'output'>;
  readonly rejected: Counter<'output'>;
  readonly dropped: Counter<'output'>;
  private readonly sources = new Map<string, OutputGauges>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.sent = new Counter({ name: 'apiary_output_sent_total', help: 'records delivered by each output (accepted by the receiver or written to the file)', labelNames: ['output'], registers });
    this.failed = new Counter({ name: 'apiary_output_failed_total', help: 'records in delivery attempts that failed and will be retried (a record retried n times counts n)', labelNames: ['output'], registers });
    this.rejected = new Counter({ name: 'apiary_output_rejected_total', help: 'records a receiver refused for good (e.g. an Elasticsearch mapping error): logged and not retried', labelNames: ['output'], registers });
    this.dropped = new Counter({ name: 'apiary_output_dropped_total', help: 'records not queued because the output backlog was at its size bound (or the file could not be written)', labelNames: ['output'], registers });
    const sources = this.sources;
    new Gauge({
      name: 'apiary_output_backlog_records',
      help: 'records waiting in each output backlog',
      labelNames: ['output'],
      registers,
      collect() {
        for (const s of sources.values()) this.set({ output: s.name }, s.backlogEntries());
      },
    });
    new Gauge({
      name: 'apiary_output_backlog_bytes',
      help: 'bytes of each output backlog on disk (not yet acknowledged)',
      labelNames: ['output'],
      registers,
      collect() {
        for (const s of sources.values()) this.set({ output: s.name }, s.backlogBytes());
      },
    });
    new Gauge({
      name: 'apiary_output_lag_seconds',
      help: 'age of the oldest record not yet delivered by each output',
      labelNames: ['output'],
      registers,
      collect() {
        for (const s of sources.values()) this.set({ output: s.name }, s.lagSeconds());
      },
    });
  }

  add(g: OutputGauges): void {
    this.sources.set(g.name, g);
    // Series exist from the start, at 0.
    for (const c of [this.sent, this.failed, this.rejected, this.dropped]) c.inc({ output: g.name }, 0);
  }
}
