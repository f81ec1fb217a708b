// The live side of the node domain: which node has which session, what their messages do to the
// stored state, the events other domains listen to, and the staleness sweep.
import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { NodeCommandBody, NodeId, NodeMessage, PotEventMsg, PotStatusUpdateMsg } from '../protocol/index.js';
import { isPotEventShaped } from '../protocol/index.js';
import { AckHold, type AckGate } from './ack-hold.js';
import type { Enrollment, RegistrationDecision, RegistrationRequest } from './enrollment.js';
import { KeyedLogThrottle } from './log-throttle.js';
import type { NodeMetrics } from './metrics.js';
import { ReadScheduler } from './read-scheduler.js';
import type { NodeRetention } from './retention.js';
import { NodeSession, type SessionHub, type SessionTransport } from './session.js';
import type { NodeStore } from './store.js';

type NodeRegistrationMsg = Extract<NodeMessage, { type: 'NodeRegistration' }>;

export interface NodeGatewayEvents {
  online: [{ nodeName: string; nodeId: NodeId; address: string; transport: string }];
  offline: [{ nodeName: string; reason: string }];
  /** Real pot statuses only (Installing, Running, Stopped, Failed). */
  potStatus: [{ nodeName: string; potId: string; potType: string; status: string; message?: string; at: number }];
  /** PotEvent, and PotStatusUpdate with status '' (how real nodes forward attack events). */
  attackEvent: [{ nodeName: string; message: PotEventMsg | PotStatusUpdateMsg; receivedAt: number }];
  nodeEvent: [{ nodeName: string; event: string; message?: string; description?: string; at: number }];
  /** A node holds a working TOTP secret: created by an operator, or a key it was sent was delivered. */
  enrolled: [{ nodeName: string; via: 'provisioned' | 'key_delivered' | 'rotated' }];
  /** An operator revoked or deleted the node: whatever credentials it holds elsewhere must stop working. */
  revoked: [{ nodeName: string; via: 'revoked' | 'deleted' }];
  /** disconnect() was called (revoke, delete, secret rotation): other instances must close their session too. */
  disconnectRequested: [{ nodeName: string; reason: string }];
}

/**
 * Sessions on the other instances sharing the database (session routing, src/cluster-routing).
 * Absent with one instance.
 */
export interface RemotePresence {
  /** The node's live session on another instance, if any. */
  remote(nodeName: string): LiveSessionInfo | undefined;
}

export type NodeGatewayEventName = keyof NodeGatewayEvents;

export interface NodeGateway {
  isOnline(nodeName: string): boolean;
  onlineNodes(): string[];
  sendCommand(nodeName: string, command: NodeCommandBody): boolean;
  disconnect(nodeName: string, reason: string): void;
  on<E extends NodeGatewayEventName>(ev: E, fn: (...args: NodeGatewayEvents[E]) => void): this;
  off<E extends NodeGatewayEventName>(ev: E, fn: (...args: NodeGatewayEvents[E]) => void): this;
  once<E extends NodeGatewayEventName>(ev: E, fn: (...args: NodeGatewayEvents[E]) => void): this;
}

export interface LiveSessionInfo {
  nodeId: NodeId;
  transport: string;
  remoteAddress: string;
  connectedAt: number;
  lastSeen: number;
}

/** After this many last_seen flushes skipped for a busy database, the next one waits for the lock. */
const BUSY_FLUSHES_BEFORE_WAITING = 10;

export interface GatewayCoreOptions {
  store: NodeStore;
  enrollment: Enrollment;
  metrics: NodeMetrics;
  logger: FastifyBaseLogger;
  authTimeoutMs: number;
  heartbeatIntervalMs: number;
  staleFactor: number;
  sweepIntervalMs: number;
  lastSeenWriteIntervalMs: number;
  retention?: NodeRetention;
}

export class GatewayCore extends EventEmitter implements SessionHub, NodeGateway {
  readonly logger: FastifyBaseLogger;
  readonly metrics: NodeMetrics;
  readonly authTimeoutMs: number;
  readonly preAuthLog = new KeyedLogThrottle(60_000);
  /** Socket input of every stream transport, handled in bounded slices per event-loop turn. */
  readonly reads = new ReadScheduler();
  private readonly store: NodeStore;
  private readonly enrollment: Enrollment;
  private readonly staleAfterMs: number;
  private readonly lastSeenWriteIntervalMs: number;
  private readonly retention: NodeRetention | undefined;
  /** node_name -> its one live, authenticated session. */
  private readonly live = new Map<string, NodeSession>();
  /** Every open session, authenticated or not (so shutdown reaches them all). */
  private readonly sessions = new Set<NodeSession>();
  /** Sessions whose last_seen moved since the last flush. */
  private readonly dirty = new Set<NodeSession>();
  /** Back-pressure: while true, transports stop reading node sockets (see setInputPaused). */
  private paused = false;
  private readonly flowListeners = new Set<(paused: boolean) => void>();
  /** last_seen flushes skipped in a row because the database was busy (see flushLastSeen). */
  private busyFlushes = 0;
  /** The last_seen flush in flight: a slow database must not stack flushes. */
  private flushing: Promise<void> | undefined;
  /** node_name -> the tail of its chain of state writes (see safely). */
  private readonly writes = new Map<string, Promise<void>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private presence: RemotePresence | undefined;
  private readonly ackHold: AckHold;

  constructor(opts: GatewayCoreOptions) {
    super();
    this.store = opts.store;
    this.enrollment = opts.enrollment;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.authTimeoutMs = opts.authTimeoutMs;
    this.staleAfterMs = opts.staleFactor * opts.heartbeatIntervalMs;
    this.lastSeenWriteIntervalMs = opts.lastSeenWriteIntervalMs;
    this.retention = opts.retention;
    this.ackHold = new AckHold(opts.metrics, opts.logger);
    this.sweepTimer = setInterval(() => this.sweep(), opts.sweepIntervalMs);
    this.sweepTimer.unref();
    this.flushTimer = setInterval(() => this.flushLastSeen(), this.lastSeenWriteIntervalMs);
    this.flushTimer.unref();
  }

  // ------------------------------------------------------------ NodeGateway

  isOnline(nodeName: string): boolean {
    return this.live.has(nodeName);
  }

  onlineNodes(): string[] {
    return [...this.live.keys()];
  }

  sendCommand(nodeName: string, command: NodeCommandBody): boolean {
    const session = this.live.get(nodeName);
    return session ? session.sendCommand(command) : false;
  }

  disconnect(nodeName: string, reason: string): void {
    this.live.get(nodeName)?.close(reason);
    this.emitSafe('disconnectRequested', { nodeName, reason });
  }

  /** Closes this process's session of the node only (a request from another instance). */
  dropLocal(nodeName: string, reason: string): void {
    this.live.get(nodeName)?.close(reason);
  }

  /** Where sessions on other instances are looked up (session routing). */
  setRemotePresence(presence: RemotePresence | undefined): void {
    this.presence = presence;
  }

  /**
   * Several cores: before a node's RegistrationAck is written, `gate` reads what the other cores
   * left for the node (its open cowrie text sessions), so the lines the node sends after the ack
   * meet that state. At most `maxWaitMs`; past it the ack goes out anyway (counted and logged).
   */
  setAckGate(gate: AckGate | undefined, maxWaitMs = 2000): void {
    this.ackHold.set(gate, maxWaitMs);
  }

  /** The node's session here or, with session routing, on another instance. */
  liveSession(nodeName: string): LiveSessionInfo | undefined {
    const s = this.live.get(nodeName);
    if (!s) return this.presence?.remote(nodeName);
    if (s.nodeId === undefined) return undefined;
    return { nodeId: s.nodeId, transport: s.kind, remoteAddress: s.remoteAddress, connectedAt: s.openedAt, lastSeen: s.lastSeen };
  }

  /** Open sessions of every state (for diagnostics and the benchmark). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  // ------------------------------------------------------------ back-pressure

  /**
   * Stops (true) or resumes (false) reading from every node connection, e.g. while the event
   * pipeline is saturated: the nodes' own sockets then fill and they slow down, instead of the core
   * queueing without bound. Time spent paused does not count towards a node's staleness.
   */
  setInputPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    if (!paused) {
      const now = Date.now();
      for (const session of this.live.values()) if (session.lastSeen < now) session.lastSeen = now;
    }
    this.metrics.inputPaused.set(paused ? 1 : 0);
    if (paused) this.metrics.inputPauses.inc();
    this.logger.debug({ paused }, paused ? 'node input paused (back-pressure)' : 'node input resumed');
    for (const l of this.flowListeners) l(paused);
  }

  get inputPaused(): boolean {
    return this.paused;
  }

  /** Transports follow the input flow state through this; returns the unsubscribe function. */
  onInputFlow(listener: (paused: boolean) => void): () => void {
    this.flowListeners.add(listener);
    return () => this.flowListeners.delete(listener);
  }

  // ------------------------------------------------------------ transports

  /** A transport accepted a connection; returns the session it must feed. */
  openSession(transport: SessionTransport): NodeSession | undefined {
    if (this.closed) {
      transport.end(undefined, 'shutdown');
      return undefined;
    }
    const session = new NodeSession(this, transport);
    this.sessions.add(session);
    return session;
  }

  // ------------------------------------------------------------ SessionHub

  decide(req: RegistrationRequest): Promise<RegistrationDecision> {
    return this.enrollment.decide(req);
  }

  beforeAck(nodeName: string): Promise<void> | undefined {
    return this.ackHold.before(nodeName);
  }

  attach(session: NodeSession, reg: NodeRegistrationMsg): void {
    const name = reg.node_name;
    const now = Date.now();
    const old = this.live.get(name);
    this.live.set(name, session);
    session.lastSeenPersisted = now;
    this.safely(name, async () => {
      // The row first: with nothing queued before it, it is written before 'online' is emitted below.
      await this.store.markRegistered(
        name,
        { nodeId: reg.node_id, nodeType: reg.node_type, address: reg.address, port: reg.port, remoteAddress: session.remoteAddress, transport: session.kind },
        now,
      );
      if (old && old !== session) {
        await this.store.log(name, 'replaced', `previous session from ${old.remoteAddress} via ${old.kind} replaced by a new one`, now);
      }
      await this.store.log(name, 'registered', `node_id ${reg.node_id} from ${session.remoteAddress} via ${session.kind}`, now);
    });
    // Closed after the new session is recorded, so its detach sees it is no longer the live one.
    if (old && old !== session) old.close('replaced');
    this.logger.info({ nodeName: name, nodeId: reg.node_id, remoteAddress: session.remoteAddress, transport: session.kind }, 'node registered');
    this.emitSafe('online', { nodeName: name, nodeId: reg.node_id, address: session.remoteAddress, transport: session.kind });
  }

  keyDelivered(session: NodeSession, key: string): void {
    const name = session.nodeName;
    if (!name) return;
    const now = Date.now();
    this.safely(name, async () => {
      if (!(await this.store.confirmKey(name, key, now))) return;
      await this.store.log(name, 'enrolled', 'TOTP key delivered; the node now authenticates with it', now);
      this.logger.info({ nodeName: name }, 'node enrolled: TOTP key delivered');
      this.emitSafe('enrolled', { nodeName: name, via: 'key_delivered' });
    });
  }

  seen(session: NodeSession, _now: number): void {
    // last_seen lives in memory (the staleness sweep reads it there); the database gets it in one
    // batched transaction per interval, so an event flood costs no write per message.
    this.dirty.add(session);
  }

  /**
   * Persists the last_seen of every node that spoke since the previous flush. It does not wait for
   * the database's write lock: while another writer holds it the nodes stay dirty for the next
   * interval, and only after BUSY_FLUSHES_BEFORE_WAITING skipped flushes in a row does it wait.
   * One flush at a time: while one is in flight, the next interval leaves the nodes dirty.
   */
  flushLastSeen(): Promise<void> {
    this.enrollment.flush();
    if (this.flushing || this.dirty.size === 0) return this.flushing ?? Promise.resolve();
    const flushing = (this.flushing = this.writeLastSeen().finally(() => {
      this.flushing = undefined;
    }));
    return flushing;
  }

  private async writeLastSeen(): Promise<void> {
    const entries: [string, number][] = [];
    const written: NodeSession[] = [];
    for (const session of this.dirty) {
      const name = session.nodeName;
      if (name && this.live.get(name) === session && session.lastSeen > session.lastSeenPersisted) {
        entries.push([name, session.lastSeen]);
        written.push(session);
      }
    }
    // Taken out of the dirty set now: a node that speaks while the write is in flight is dirty again.
    this.dirty.clear();
    try {
      if (this.busyFlushes >= BUSY_FLUSHES_BEFORE_WAITING) await this.store.touchAll(entries);
      else if (!(await this.store.tryTouchAll(entries))) {
        this.busyFlushes++;
        this.metrics.lastSeenFlushesDeferred.inc();
        // Still dirty: the next interval tries again (sessions that ended meanwhile are done).
        for (const session of written) if (session.nodeName && this.live.get(session.nodeName) === session) this.dirty.add(session);
        return;
      }
    } catch (err) {
      this.logger.error({ err, nodes: entries.length }, 'node last_seen flush failed');
    }
    this.busyFlushes = 0;
    for (let i = 0; i < written.length; i++) written[i]!.lastSeenPersisted = Math.max(written[i]!.lastSeenPersisted, entries[i]![1]);
  }

  handleMessage(session: NodeSession, message: NodeMessage, now: number): void {
    const name = session.nodeName;
    if (!name) return;
    switch (message.type) {
      case 'NodeStatusUpdate':
        if (session.lastStatus !== message.status) {
          session.lastStatus = message.status;
          session.lastSeenPersisted = now;
          this.safely(name, () => this.store.setStatus(name, message.status, now));
        } else {
          this.seen(session, now);
        }
        return;
      case 'PotStatusUpdate':
        this.seen(session, now);
        if (isPotEventShaped(message)) {
          this.emitSafe('attackEvent', { nodeName: name, message, receivedAt: now });
          return;
        }
        this.safely(name, () => this.store.upsertPot(name, message.pot_id, message.pot_type, message.status, message.message ?? null, now));
        this.emitSafe('potStatus', {
          nodeName: name,
          potId: message.pot_id,
          potType: message.pot_type,
          status: message.status,
          ...(message.message !== undefined ? { message: message.message } : {}),
          at: now,
        });
        return;
      case 'PotEvent':
        this.seen(session, now);
        this.emitSafe('attackEvent', { nodeName: name, message, receivedAt: now });
        return;
      case 'NodeEvent': {
        this.seen(session, now);
        const text = [message.message, message.description].filter((t) => t !== undefined && t !== '').join(' | ');
        this.safely(name, () => this.store.log(name, `event:${message.event}`, text || null, now));
        this.emitSafe('nodeEvent', {
          nodeName: name,
          event: message.event,
          ...(message.message !== undefined ? { message: message.message } : {}),
          ...(message.description !== undefined ? { description: message.description } : {}),
          at: now,
        });
        return;
      }
      case 'NodeDrop':
        this.safely(name, () => this.store.log(name, 'drop', 'node announced NodeDrop and is going away', now));
        this.logger.info({ nodeName: name }, 'node sent NodeDrop; closing its session');
        session.close('drop');
        return;
      case 'NodeRegistration':
        return; // handled by the session
    }
  }

  detach(session: NodeSession, reason: string, wasAuthenticated: boolean): void {
    this.sessions.delete(session);
    this.dirty.delete(session);
    const name = session.nodeName;
    if (!wasAuthenticated || !name) return;
    if (this.live.get(name) !== session) return; // replaced: the node is still online
    this.live.delete(name);
    const now = Date.now();
    // A stale session closing after the node registered on another instance must not mark the
    // node Offline: the stored state now belongs to the new session.
    const movedAway = reason === 'taken_over' || this.presence?.remote(name) !== undefined;
    this.safely(name, async () => {
      if (!movedAway) await this.store.markOffline(name, reason, session.lastSeen, now);
      await this.store.log(name, 'disconnected', reason, now);
    });
    this.logger.info({ nodeName: name, reason, remoteAddress: session.remoteAddress, transport: session.kind }, 'node offline');
    this.emitSafe('offline', { nodeName: name, reason });
  }

  // ------------------------------------------------------------ housekeeping

  sweep(now = Date.now()): void {
    // Paused nodes cannot be heard; they are judged again once input resumes.
    if (this.paused) {
      this.enrollment.sweep(now);
      return;
    }
    for (const [name, session] of this.live) {
      const silentMs = now - session.lastSeen;
      if (silentMs > this.staleAfterMs) {
        this.logger.warn({ nodeName: name, silentMs, staleAfterMs: this.staleAfterMs }, 'node stale: no message within the heartbeat allowance; closing its session');
        session.close('stale');
      }
    }
    this.enrollment.sweep(now);
    this.preAuthLog.sweep(now);
    this.retention?.maybeRun(now);
  }

  /** Closes every session with reason 'shutdown' and stops the sweep. */
  shutdown(): void {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.sweepTimer = this.flushTimer = undefined;
    for (const session of [...this.sessions]) session.close('shutdown');
    this.enrollment.flush();
  }

  /** Resolves once the state writes of `nodeName` requested so far are done (see safely). */
  async nodeWritesDone(nodeName: string): Promise<void> {
    await this.writes.get(nodeName);
  }

  /** Resolves once every node state write requested so far (and the last_seen flush) is done. */
  async settled(): Promise<void> {
    while (this.writes.size > 0 || this.flushing) {
      await Promise.all([...this.writes.values(), this.flushing, this.enrollment.settled()]);
    }
    await this.enrollment.settled();
  }

  private emitSafe<E extends NodeGatewayEventName>(ev: E, ...args: NodeGatewayEvents[E]): void {
    try {
      this.emit(ev, ...args);
    } catch (err) {
      // A failing listener belongs to another domain; it must not cost the node its session.
      this.logger.error({ err, event: ev }, 'node gateway event listener threw');
    }
  }

  /**
   * Runs a write of one node's state after that node's earlier writes. On PostgreSQL two writes
   * issued back to back can run on two pooled connections and commit in either order (a status
   * overwritten by the registration before it, Offline before the last status); the chain keeps
   * them in the order the node's messages arrived. A write with nothing queued before it starts at
   * once: on SQLite (whose store works when called) its first statement is done before this
   * returns, as before, and the rest within the same turn of the event loop. Failures are logged:
   * the node keeps its session.
   */
  private safely(nodeName: string, write: () => Promise<unknown>): void {
    const run = async () => {
      try {
        await write();
      } catch (err) {
        this.logger.error({ err, nodeName }, 'node state write failed');
      }
    };
    const before = this.writes.get(nodeName);
    const tail = before ? before.then(run) : run();
    this.writes.set(nodeName, tail);
    void tail.then(() => {
      if (this.writes.get(nodeName) === tail) this.writes.delete(nodeName);
    });
  }
}

// Typed overloads for the EventEmitter methods the NodeGateway interface names.
export interface GatewayCore {
  on<E extends NodeGatewayEventName>(ev: E, fn: (...args: NodeGatewayEvents[E]) => void): this;
  off<E extends NodeGatewayEventName>(ev: E, fn: (...args: NodeGatewayEvents[E]) => void): this;
  once<E extends NodeGatewayEventName>(ev: E, fn: (...args: NodeGatewayEvents[E]) => void): this;
}
