// Prometheus instruments of the node gateway. Labelled children used per message are cached so a
// flood of attack events costs a counter increment, not a label lookup.
import { Counter, Gauge, type Registry } from 'prom-client';

export type TransportKind = 'tcp' | 'tls' | 'ws';

export class NodeMetrics {
  readonly sessions: Gauge<'transport'>;
  readonly messages: Counter<'type'>;
  readonly invalid: Counter<'transport' | 'reason'>;
  readonly registrations: Counter<'result'>;
  readonly authFailures: Counter<'reason'>;
  readonly oversizedLines: Counter<string>;
  readonly pendingRemoved: Counter<'reason'>;
  readonly truncated: Counter<'field'>;
  readonly connectionsRefused: Counter<'transport' | 'reason'>;
  readonly preAuthClosed: Counter<'transport' | 'reason'>;
  readonly potsCapped: Counter<string>;
  readonly inputPaused: Gauge<string>;
  readonly inputPauses: Counter<string>;
  readonly lastSeenFlushesDeferred: Counter<string>;
  readonly ackHolds: Counter<'result'>;
  /** Message counts not yet added to `messages` (bounded: one key per message type). */
  private readonly pendingMessages = new Map<string, number>();

  constructor(registry: Registry) {
    this.sessions = new Gauge({
      name: 'apiary_node_sessions',
      help: 'Open node connections (authenticated or awaiting registration), per transport',
      labelNames: ['transport'],
      registers: [registry],
    });
    const pending = this.pendingMessages;
    this.messages = new Counter({
      name: 'apiary_node_messages_total',
      help: 'Valid envelopes received from nodes, per message type',
      labelNames: ['type'],
      registers: [registry],
      // Per-message counts are kept in a plain map and added here, at scrape time: a prom-client
      // child's inc() hashes its label set on every call.
      collect() {
        for (const [type, n] of pending) if (n > 0) this.labels(type).inc(n);
        pending.clear();
      },
    });
    this.invalid = new Counter({
      name: 'apiary_node_invalid_messages_total',
      help: 'Node lines/frames that were discarded (the session was kept), per transport and reason',
      labelNames: ['transport', 'reason'],
      registers: [registry],
    });
    this.registrations = new Counter({
      name: 'apiary_node_registrations_total',
      help: 'NodeRegistration outcomes: accepted, key_issued, or the rejection reason',
      labelNames: ['result'],
      registers: [registry],
    });
    this.authFailures = new Counter({
      name: 'apiary_node_auth_failures_total',
      help: 'Rejected node registrations, per reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.oversizedLines = new Counter({
      name: 'apiary_node_oversized_lines_total',
      help: 'Node lines/frames discarded because they exceeded the size cap',
      registers: [registry],
    });
    this.pendingRemoved = new Counter({
      name: 'apiary_node_pending_removed_total',
      help: 'Pending (approve mode) nodes removed: expired without a retry, or rejected in bulk by an admin',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.truncated = new Counter({
      name: 'apiary_node_truncated_strings_total',
      help: 'Node-supplied strings cut to their storage cap before being stored, per field',
      labelNames: ['field'],
      registers: [registry],
    });
    this.connectionsRefused = new Counter({
      name: 'apiary_node_connections_refused_total',
      help: 'Node connections refused at accept time: total cap (global) or per-address cap (per_address)',
      labelNames: ['transport', 'reason'],
      registers: [registry],
    });
    this.preAuthClosed = new Counter({
      name: 'apiary_node_preauth_closed_total',
      help: 'Node connections closed before registration for exceeding the pre-registration budget',
      labelNames: ['transport', 'reason'],
      registers: [registry],
    });
    this.potsCapped = new Counter({
      name: 'apiary_node_pots_capped_total',
      help: 'Pot status lines not stored because their node already has the maximum number of pots',
      registers: [registry],
    });
    this.inputPaused = new Gauge({
      name: 'apiary_node_input_paused',
      help: '1 while node connections are not read because the event pipeline is saturated (back-pressure)',
      registers: [registry],
    });
    this.inputPauses = new Counter({
      name: 'apiary_node_input_pauses_total',
      help: 'Times reading from node connections was paused for back-pressure',
      registers: [registry],
    });
    this.lastSeenFlushesDeferred = new Counter({
      name: 'apiary_node_last_seen_flushes_deferred_total',
      help: 'Periodic last_seen writes put off to the next interval because another connection held the database write lock',
      registers: [registry],
    });
    this.ackHolds = new Counter({
      name: 'apiary_node_ack_holds_total',
      help: "RegistrationAcks held until the node's shared state (several cores) was read: ready in time, or sent anyway on timeout or a failed read",
      labelNames: ['result'],
      registers: [registry],
    });
    for (const t of ['tcp', 'tls', 'ws'] as const) this.sessions.set({ transport: t }, 0);
  }

  message(type: string): void {
    this.pendingMessages.set(type, (this.pendingMessages.get(type) ?? 0) + 1);
  }
}
