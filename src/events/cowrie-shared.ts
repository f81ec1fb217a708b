// cowrie.sessions when several cores share one fleet: a node that reconnects to another core
// mid-session sends the rest of that session's events there, so no core's memory holds the whole
// session. The in-progress sessions then live in a shared state (CowrieSessionState, e.g. Redis:
// src/cluster/), as the compact records of their events; a session is taken out of it atomically,
// by exactly one core, when its close is committed, when it has been idle too long, or when too
// many are open, and that core rebuilds the summary by replaying the records through the same
// CowrieSessionAggregator the single-core path uses. One state call per committed slice that holds
// cowrie events (never one per event), one per idle sweep.
import { CowrieSessionAggregator, type CowrieAggregatorOptions, type CowrieEmitReason, type CowrieSessionSummary } from './cowrie.js';

/** One session's records from one committed slice. */
export interface CowrieSessionUpdate {
  /** Opaque and stable for (node, pot, session): cowrieSessionKey(). */
  key: string;
  /** Records in commit order: cowrieSessionRecord(). */
  records: string[];
  /** The slice holds the session's close: the session is taken (removed and returned) at once. */
  closes: boolean;
}

export interface CowrieTakenSession {
  key: string;
  records: string[];
  reason: Extract<CowrieEmitReason, 'closed' | 'idle' | 'evicted'>;
}

/**
 * Where in-progress sessions are kept between cores. Both calls must be atomic per session: a
 * session is returned by one call of one core only (that is what makes its summary exactly once).
 */
export interface CowrieSessionState {
  /** Appends the slice's records; returns the sessions it closed. */
  append(updates: readonly CowrieSessionUpdate[], now: number): Promise<CowrieTakenSession[]>;
  /** Takes the sessions with no record since `idleBefore`, and the oldest beyond `maxOpen`. */
  takeIdle(idleBefore: number, maxOpen: number): Promise<CowrieTakenSession[]>;
}

/** What the aggregation reads of a committed event. */
export interface CowrieCommitted {
  node: string;
  potId: string;
  eventType: string;
  timestamp: number;
  data: Record<string, unknown>;
  dataJson: string;
  fromStatus: boolean;
}

export function cowrieSessionKey(node: string, potId: string, session: string): string {
  return JSON.stringify([node, potId, session]);
}

/** A record is the event's type, time and stored data JSON (reused as is: nothing re-serialised). */
export function cowrieSessionRecord(e: CowrieCommitted): string {
  return '[' + JSON.stringify(e.eventType) + ',' + e.timestamp + ',' + e.dataJson + ']';
}

type Emit = (node: string, summary: CowrieSessionSummary, reason: CowrieEmitReason) => void;

export interface SharedCowrieOptions extends CowrieAggregatorOptions {
  /** Failures of the state (its Redis unreachable): logged by the caller, throttled. */
  onError: (err: unknown) => void;
}

export class SharedCowrieSessions {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly idleMs: number;
  private readonly maxOpen: number;

  constructor(
    private readonly state: CowrieSessionState,
    private readonly emit: Emit,
    private readonly opts: SharedCowrieOptions,
  ) {
    this.idleMs = opts.idleTimeoutMs ?? 300_000;
    this.maxOpen = Math.max(1, opts.maxOpenSessions ?? 10_000);
  }

  /** Feeds one committed slice (one state call if it holds cowrie events with a session). */
  add(batch: readonly CowrieCommitted[], now: number): void {
    let updates: Map<string, CowrieSessionUpdate> | undefined;
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      if (e.fromStatus || !e.eventType.startsWith('cowrie.')) continue;
      const session = e.data.session;
      if ((typeof session !== 'string' && typeof session !== 'number') || session === '') continue;
      const key = cowrieSessionKey(e.node, e.potId, String(session));
      updates ??= new Map();
      let u = updates.get(key);
      if (u === undefined) updates.set(key, (u = { key, records: [], closes: false }));
      u.records.push(cowrieSessionRecord(e));
      if (e.eventType === 'cowrie.session.closed') u.closes = true;
    }
    if (updates !== undefined) this.track(this.state.append([...updates.values()], now));
  }

  /** Emits what idled out or overflows the cap (exactly one core gets each). */
  expireIdle(now: number): void {
    this.track(this.state.takeIdle(now - this.idleMs, this.maxOpen));
  }

  /**
   * Waits for the state calls in flight (their summaries are emitted), at most `maxWaitMs` (a state
   * that does not answer must not hold up a shutdown). Open sessions stay in the state.
   */
  async settle(maxWaitMs = 3000): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.all([...this.inFlight]), new Promise((resolve) => setTimeout(resolve, deadline - Date.now()).unref())]);
    }
  }

  private track(call: Promise<CowrieTakenSession[]>): void {
    const p = call.then(
      (taken) => {
        for (const t of taken) this.summarise(t);
      },
      (err: unknown) => this.opts.onError(err),
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private summarise(t: CowrieTakenSession): void {
    let node: string;
    let potId: string;
    try {
      [node, potId] = JSON.parse(t.key) as [string, string, string];
    } catch {
      return;
    }
    let done = false;
    const aggregator = new CowrieSessionAggregator((n, summary, reason) => {
      done = true;
      this.emit(n, summary, reason === 'closed' ? 'closed' : t.reason);
    }, { ...this.opts, maxOpenSessions: 1 });
    for (const text of t.records) {
      let record: [string, number, Record<string, unknown>];
      try {
        record = JSON.parse(text) as [string, number, Record<string, unknown>];
      } catch {
        continue;
      }
      const [eventType, timestamp, data] = record;
      aggregator.add({ node, potId, potType: '', eventType, timestamp, data }, Date.now());
      if (done) return;
    }
    aggregator.flushAll(t.reason);
  }
}
