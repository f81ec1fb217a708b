// One node connection, whatever carries it. The transport frames text (a line or a WebSocket
// frame) and hands each envelope to handleText(); the session answers through the transport.
// awaiting-registration -> registering -> authenticated -> closed
import type { FastifyBaseLogger } from 'fastify';
import {
  encodeNodeCommand,
  encodeRegistrationAck,
  isNodeId,
  parseNodeMessage,
  type NodeCommandBody,
  type NodeId,
  type NodeMessage,
} from '../protocol/index.js';
import type { RegistrationDecision, RegistrationRequest } from './enrollment.js';
import { addressKey } from './limits.js';
import type { KeyedLogThrottle } from './log-throttle.js';
import type { NodeMetrics, TransportKind } from './metrics.js';

type NodeRegistrationMsg = Extract<NodeMessage, { type: 'NodeRegistration' }>;

export interface SessionTransport {
  readonly kind: TransportKind;
  /** Socket peer address (IPv4-mapped IPv6 unwrapped). */
  readonly remoteAddress: string;
  /** Writes one envelope; the transport adds the framing. */
  send(text: string): void;
  /** Writes `text` if given, then closes once it has been flushed. */
  end(text: string | undefined, reason: string): void;
  /** Closes at once, dropping unsent data. */
  destroy(): void;
  /** The node registered: the transport may lift its pre-registration limits. */
  authenticated?(): void;
}

/** What a session needs from the gateway that owns it. */
export interface SessionHub {
  readonly logger: FastifyBaseLogger;
  /** Log lines about connections that have not registered: at most one per address and reason a minute. */
  readonly preAuthLog: KeyedLogThrottle;
  readonly metrics: NodeMetrics;
  readonly authTimeoutMs: number;
  decide(req: RegistrationRequest): Promise<RegistrationDecision>;
  /**
   * Work that must be done before the accepted node's ack is written (bounded), or undefined when
   * there is none: then the ack goes out in the same turn as before.
   */
  beforeAck(nodeName: string): Promise<void> | undefined;
  /** The session was accepted and its ack written: make it the node's live session. */
  attach(session: NodeSession, reg: NodeRegistrationMsg): void;
  /** An authenticated session delivered its first message after an ack that carried a key. */
  keyDelivered(session: NodeSession, key: string): void;
  /** Any message from an authenticated node: keeps last_seen (throttled persistence). */
  seen(session: NodeSession, now: number): void;
  handleMessage(session: NodeSession, message: NodeMessage, now: number): void;
  /** The session ended (for any reason); called exactly once per session. */
  detach(session: NodeSession, reason: string, wasAuthenticated: boolean): void;
}

export type SessionState = 'awaiting-registration' | 'registering' | 'authenticated' | 'closed';

/** Messages that arrive while the registration is being decided (a node should wait for the ack). */
const MAX_QUEUED_DURING_REGISTRATION = 256;
/** Invalid-message log lines per session per window; the rest are counted and summarised. */
const INVALID_LOG_BURST = 5;
const INVALID_LOG_WINDOW_MS = 10_000;

export class NodeSession {
  state: SessionState = 'awaiting-registration';
  nodeName: string | undefined;
  nodeId: NodeId | undefined;
  readonly openedAt = Date.now();
  lastSeen = this.openedAt;
  /** last_seen value last written to the database. */
  lastSeenPersisted = 0;
  closeReason: string | undefined;
  /** Last NodeStatusUpdate status, so repeated heartbeats do not rewrite it. */
  lastStatus: string | undefined;
  private pendingKey: string | undefined;
  private queue: string[] = [];
  private authTimer: NodeJS.Timeout | undefined;
  /** Set by closeDraining(): the reason the core is ending the session while it reads the last lines. */
  private draining: string | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private invalidWindowStart = 0;
  private invalidLogged = 0;
  private invalidSuppressed = 0;

  constructor(
    private readonly hub: SessionHub,
    readonly transport: SessionTransport,
  ) {
    hub.metrics.sessions.inc({ transport: transport.kind });
    this.authTimer = setTimeout(() => this.authTimedOut(), hub.authTimeoutMs);
    this.authTimer.unref();
  }

  get kind(): TransportKind {
    return this.transport.kind;
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  /** One envelope of text from the transport. */
  handleText(text: string): void {
    if (this.state === 'closed') return;
    if (this.state === 'registering') {
      if (this.queue.length >= MAX_QUEUED_DURING_REGISTRATION) {
        this.invalid('queue_overflow', 'message arrived before the RegistrationAck and the wait queue is full');
        return;
      }
      this.queue.push(text);
      return;
    }
    const parsed = parseNodeMessage(text);
    if (!parsed.ok) {
      if (this.state === 'awaiting-registration' && parsed.error.startsWith('message.NodeRegistration')) {
        // A registration the schema refuses (a control character in node_name, a port out of
        // range...) gets a rejecting ack that says why, instead of silence until the auth timeout.
        this.refuseRegistration(text, parsed.reason, parsed.error);
        return;
      }
      this.invalid(parsed.reason, parsed.error);
      return;
    }
    const message = parsed.message;
    this.hub.metrics.message(message.type);
    if (this.state === 'awaiting-registration') {
      if (message.type !== 'NodeRegistration') {
        this.invalid('not_registered', `${message.type} before NodeRegistration; still waiting for NodeRegistration`);
        return;
      }
      void this.register(message);
      return;
    }
    // authenticated
    const now = Date.now();
    this.lastSeen = now;
    if (this.pendingKey !== undefined) {
      // A node only speaks after its ack once it has stored the key that ack carried.
      const key = this.pendingKey;
      this.pendingKey = undefined;
      this.hub.keyDelivered(this, key);
    }
    if (message.type === 'NodeRegistration') {
      this.invalid('duplicate_registration', 'NodeRegistration on an already registered session; ignored');
      this.hub.seen(this, now);
      return;
    }
    this.hub.handleMessage(this, message, now);
  }

  /** A line/frame the transport had to discard (oversized, binary...). The session lives on. */
  discarded(reason: string, detail: string): void {
    if (this.state === 'closed') return;
    this.invalid(reason, detail);
  }

  /** Sends a command to the node; false when the session cannot carry it. */
  sendCommand(command: NodeCommandBody): boolean {
    if (this.state !== 'authenticated' || this.nodeId === undefined || this.draining !== undefined) return false;
    this.transport.send(encodeNodeCommand(this.nodeId, command));
    return true;
  }

  /** Ends the session from the core side (replaced, revoked, stale, drop, shutdown...). */
  close(reason: string): void {
    if (this.state === 'closed') return;
    this.transport.end(undefined, reason);
    this.finish(reason);
  }

  /**
   * Ends the session from the core side like close(), but lets the node's last lines in: the core
   * ends its side of the connection and keeps handling what arrives (sending nothing more) until
   * the node closes its side, or for `graceMs`. The protocol has no per-event ack, so a graceful
   * stop (a rolling restart) that dropped the connection at once would lose what the node had
   * already written; this way the node sees the end, stops, and what it sent before is stored.
   */
  closeDraining(reason: string, graceMs: number): void {
    if (this.state !== 'authenticated') return this.close(reason);
    if (this.draining !== undefined) return;
    this.draining = reason;
    this.transport.end(undefined, reason);
    this.drainTimer = setTimeout(() => this.close(reason), graceMs);
    this.drainTimer.unref();
  }

  /** The transport is gone (peer closed, error, reset). */
  transportClosed(): void {
    if (this.state === 'closed') return;
    this.finish(this.draining ?? 'disconnect');
  }

  private async register(reg: NodeRegistrationMsg): Promise<void> {
    this.state = 'registering';
    const req: RegistrationRequest = {
      nodeName: reg.node_name,
      nodeId: reg.node_id,
      nodeType: reg.node_type,
      totpCode: reg.totp_code,
      address: reg.address,
      port: reg.port,
      remoteAddress: this.remoteAddress,
      transport: this.kind,
    };
    let decision: RegistrationDecision;
    try {
      decision = await this.hub.decide(req);
    } catch (err) {
      this.hub.logger.error({ err, nodeName: reg.node_name, remoteAddress: this.remoteAddress }, 'node registration failed with an internal error');
      decision = { accepted: false, result: 'internal_error', message: 'Internal error' };
    }
    if (this.state !== 'registering') return; // the connection went away meanwhile
    if (!decision.accepted) {
      const ack = encodeRegistrationAck({ node_id: reg.node_id, accepted: false, message: decision.message });
      this.transport.end(ack, 'rejected');
      this.finish(`rejected: ${decision.result}`);
      return;
    }
    // A node speaks only after its ack: holding the ack holds the node's lines (those sent early
    // wait in this session's queue), and no other session waits for it.
    const held = this.hub.beforeAck(reg.node_name);
    if (held !== undefined) {
      await held;
      if (this.state !== 'registering') return; // the connection went away meanwhile
    }
    this.clearAuthTimer();
    this.nodeName = reg.node_name;
    this.nodeId = reg.node_id;
    this.lastSeen = Date.now();
    this.pendingKey = decision.issuedKey;
    // The ack must be the first line the node receives, before any command an 'online' listener
    // might send, so it is written before the session becomes visible.
    this.transport.send(
      encodeRegistrationAck({
        node_id: reg.node_id,
        accepted: true,
        message: 'Registration successful',
        ...(decision.issuedKey ? { totp_key: decision.issuedKey } : {}),
      }),
    );
    this.state = 'authenticated';
    this.transport.authenticated?.();
    this.hub.attach(this, reg);
    const queued = this.queue;
    this.queue = [];
    for (const text of queued) this.handleText(text);
  }

  private refuseRegistration(text: string, reason: string, error: string): void {
    this.hub.metrics.invalid.inc({ transport: this.kind, reason });
    this.hub.metrics.registrations.inc({ result: 'bad_registration' });
    this.hub.metrics.authFailures.inc({ reason: 'bad_registration' });
    const t = this.hub.preAuthLog.take(`${addressKey(this.remoteAddress)}\0bad_registration`, Date.now());
    if (t.log) {
      this.hub.logger.warn(
        { remoteAddress: this.remoteAddress, transport: this.kind, reason, error, suppressedSinceLastLine: t.suppressed },
        'node registration refused: invalid NodeRegistration (one line per address per minute)',
      );
    }
    const m = /"node_id"\s*:\s*"?([0-9]{1,20})[",}\s]/.exec(text);
    const nodeId = m && isNodeId(m[1]) ? m[1] : '0';
    this.transport.end(encodeRegistrationAck({ node_id: nodeId, accepted: false, message: `Invalid NodeRegistration: ${error}` }), 'rejected');
    this.finish('rejected: bad_registration');
  }

  private authTimedOut(): void {
    this.authTimer = undefined;
    if (this.state !== 'awaiting-registration' && this.state !== 'registering') return;
    const t = this.hub.preAuthLog.take(`${addressKey(this.remoteAddress)}\0auth_timeout`, Date.now());
    if (t.log) {
      this.hub.logger.warn(
        { remoteAddress: this.remoteAddress, transport: this.kind, timeoutMs: this.hub.authTimeoutMs, suppressedSinceLastLine: t.suppressed },
        `node connection closed: no NodeRegistration within ${this.hub.authTimeoutMs} ms (one line per address per minute)`,
      );
    }
    this.transport.end(undefined, 'auth_timeout');
    this.finish('auth_timeout');
  }

  private finish(reason: string): void {
    const wasAuthenticated = this.state === 'authenticated';
    if (this.drainTimer !== undefined) clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    this.state = 'closed';
    this.closeReason = reason;
    this.queue = [];
    this.clearAuthTimer();
    this.hub.metrics.sessions.dec({ transport: this.kind });
    if (this.invalidSuppressed > 0) this.flushInvalidSummary();
    this.hub.detach(this, reason, wasAuthenticated);
  }

  private clearAuthTimer(): void {
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }

  private invalid(reason: string, detail: string): void {
    this.hub.metrics.invalid.inc({ transport: this.kind, reason });
    const now = Date.now();
    if (this.state !== 'authenticated') {
      // Anyone can open connections and send garbage: before registration the lines are
      // throttled per address, not per session, so reconnecting does not buy more log lines.
      const t = this.hub.preAuthLog.take(`${addressKey(this.remoteAddress)}\0${reason}`, now);
      if (t.log) {
        this.hub.logger.warn(
          { remoteAddress: this.remoteAddress, transport: this.kind, reason, error: detail, suppressedSinceLastLine: t.suppressed },
          `invalid message from an unregistered node connection discarded (${reason}); one line per address and reason per minute`,
        );
      }
      return;
    }
    if (now - this.invalidWindowStart >= INVALID_LOG_WINDOW_MS) {
      if (this.invalidSuppressed > 0) this.flushInvalidSummary();
      this.invalidWindowStart = now;
      this.invalidLogged = 0;
    }
    if (this.invalidLogged >= INVALID_LOG_BURST) {
      this.invalidSuppressed++;
      return;
    }
    this.invalidLogged++;
    this.hub.logger.warn(
      { nodeName: this.nodeName, remoteAddress: this.remoteAddress, transport: this.kind, reason, error: detail },
      `invalid message from node discarded (${reason}); session kept`,
    );
  }

  private flushInvalidSummary(): void {
    this.hub.logger.warn(
      { nodeName: this.nodeName, remoteAddress: this.remoteAddress, transport: this.kind, suppressed: this.invalidSuppressed },
      `${this.invalidSuppressed} more invalid messages from node discarded (log lines suppressed)`,
    );
    this.invalidSuppressed = 0;
  }
}
