import { ReadPool } from '../db/read-pool.js';
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import {
  channelsForPotType,
  nodeAuthkeyFor,
  resolveChannels,
  type ChannelOptions,
  type NodeAuthkey,
  type ResolvedChannels,
} from './channels.js';
import { CowrieSessionAggregator, type CowrieAggregatorOptions, type CowrieEmitReason, type CowrieSessionSummary } from './cowrie.js';
import { SharedCowrieSessions, type CowrieSessionState } from './cowrie-shared.js';
import { SharedCowrieText, type CowrieTextState } from './cowrie-text-shared.js';
import { BUILTIN_POT_TYPES, EventLabels } from './labels.js';
import { createEventMetrics, type EventMetrics } from './metrics.js';
import { createCowrieTextContext, normaliseAttackEvent, PotTypeCache, type CowrieTextContext, type PendingEvent } from './normalize.js';
import { CowrieTextSessions, type CowrieTextSessionOptions } from './cowrie-text-sessions.js';
import { checkStatsRange, decodeCursor, type EventListQuery, type EventPage, type EventStats, type EventStatsQuery } from './queries.js';
import { RetentionSweeper, type RetentionOptions } from './retention.js';
import { EventStreamHub, type StreamOptions, type StreamSocket } from './stream.js';
import { LogThrottle } from './log-throttle.js';
import { Republisher } from './republisher.js';
import type {
  AttackEvent,
  AttackEventSource,
  CowriePotLookup,
  EventFilter,
  EventJson,
  EventPublisher,
  PotStatusNotice,
  PotTypeLookup,
} from './types.js';
import { eventQueryModules, SqliteEventStore } from './sqlite-store.js';
import type { EventStore } from './store.js';
import { EventWriter, type BatchOptions } from './writer.js';

const DEFAULT_STATS_RANGE_MS = 86_400_000;

export interface EventServiceOptions {
  /**
   * Where events are stored. The composition root passes a store; tests may pass `db` instead (the
   * core's database handle: a SqliteEventStore with a one-worker read pool is then built on its file).
   */
  store?: EventStore;
  db?: { path: string };
  logger: FastifyBaseLogger;
  registry: Registry;
  /** In-process hpfeeds broker (Broker.publish). Without one nothing is republished. */
  publisher?: EventPublisher;
  /**
   * Last known type of a pot (e.g. from the pots table), for events that arrive with pot_type ""
   * from a pot no live PotStatusUpdate has described since start. Cached 60 s per pot.
   */
  potTypeLookup?: PotTypeLookup;
  /**
   * The node's cowrie pot (e.g. from the pots table), for the real node's cowrie text lines that
   * arrive under cowrie's sensor name, before any live PotStatusUpdate described the pot.
   */
  cowriePotLookup?: CowriePotLookup;
  /** Attribution of the real node's cowrie text lines to sessions. */
  cowrieText?: CowrieTextSessionOptions;
  channels?: ChannelOptions;
  batch?: BatchOptions;
  retention?: RetentionOptions;
  /** cowrie.sessions aggregation limits; the channel itself is `channels.cowrieSessions`. */
  cowrie?: CowrieAggregatorOptions;
  /**
   * Keeps in-progress cowrie sessions in a state shared by several cores (see cowrie-shared.ts)
   * instead of this process's memory, so a session whose events arrive at different cores still
   * gets one summary. Open sessions then outlive close() (another core, or the next start, ends them).
   */
  cowrieState?: CowrieSessionState;
  /**
   * Keeps the open sessions of the real node's cowrie text in a state shared by several cores (see
   * cowrie-text-shared.ts): a node that reconnects to another core goes on being attributed there.
   */
  cowrieTextState?: CowrieTextState;
  stream?: StreamOptions;
  /**
   * Pot types that get a metric label of their own (default BUILTIN_POT_TYPES); others, and their
   * channels, are counted as `other`. addKnownPotType() extends the set at run time.
   */
  knownPotTypes?: Iterable<string>;
}

/** An event as handed to onCommitted listeners: committed, with its id. */
export interface CommittedEvent {
  readonly id: number;
  readonly node: string;
  readonly potId: string;
  readonly potType: string;
  readonly eventType: string;
  /** Epoch ms. */
  readonly timestamp: number;
  readonly receivedAt: number;
  readonly data: Readonly<Record<string, unknown>>;
  /** data as stored and republished (the node's own JSON text when the codec kept it). */
  readonly dataJson: string;
  /** Derived from a PotStatusUpdate (free text): not republished on the classic dionaea channels. */
  readonly fromStatus: boolean;
}

/** What republish() needs of an event committed by another core. */
export type RepublishedEvent = Omit<CommittedEvent, 'data'>;

export interface EventService {
  /** Normalises and queues one gateway attackEvent; false if it was rejected (invalid, backlog, closed). */
  ingest(event: AttackEvent): boolean;
  /**
   * True while more events wait for their commit than the high-water mark allows: the gateway stops
   * reading node sockets until 'drained'. Listen with onFlow().
   */
  readonly saturated: boolean;
  /** Back-pressure notifications (saturated / drained). Returns the unsubscribe function. */
  onFlow(listener: (saturated: boolean) => void): () => void;
  /** Listens to a source's 'attackEvent'; returns the detach function. close() detaches all. */
  attach(source: AttackEventSource): () => void;
  /** Commits everything queued now and resolves once it is committed. False if a commit failed (kept, retried). */
  flush(): Promise<boolean>;
  /** Reads run off the main thread (read pool) with a time limit. */
  list(query?: EventListQuery): Promise<EventPage>;
  get(id: number): Promise<EventJson | undefined>;
  /** Aggregates over [since, until) (default: the last 24 h). */
  stats(query?: EventStatsQuery): Promise<EventStats>;
  /**
   * Called with the committed events, after republishing them: a batch arrives in slices (of up to
   * 128 events, across event-loop turns), always in commit order. Returns an unsubscribe function.
   */
  onCommitted(listener: (events: readonly CommittedEvent[]) => void): () => void;
  /**
   * Called with each whole batch as soon as its commit is known, in the same turn, before any of
   * it is republished here: for hand-offs that must follow the commit as closely as possible (the
   * cluster fan-out, so a core killed just after a commit has already passed its events on). Keep
   * it cheap: it runs on the event loop in one go for up to a whole batch. Returns an unsubscribe function.
   */
  onBatchCommitted(listener: (events: readonly CommittedEvent[]) => void): () => void;
  /**
   * Publishes events another core committed (cluster fan-out) to this core's hpfeeds subscribers
   * and live streams, as if committed here; nothing else (no cowrie.sessions, no onCommitted).
   */
  republish(events: readonly RepublishedEvent[]): void;
  /** Called with each cowrie.sessions summary this core publishes (not republished ones). */
  onSessionSummary(listener: (node: string, channel: string, json: string) => void): () => void;
  /**
   * A node is registering here: with a shared cowrie text state, takes the sessions another core
   * left open for it. Resolves once they are read; undefined when there is nothing to read (one
   * core), so the caller need not wait at all.
   */
  nodeRegistering(nodeName: string): Promise<void> | undefined;
  /** Adds a live stream client (WebSocket). False if refused (limit reached). */
  addStreamClient(socket: StreamSocket, filter: EventFilter): boolean;
  /** hpfeeds channels an event of this pot type is republished on. */
  channelsFor(potType: string): readonly string[];
  /** Authkey to create with a node (see nodeAuthkeyFor), using this service's channel mapping. */
  nodeAuthkey(nodeName: string, potTypes?: readonly string[]): NodeAuthkey;
  /** Runs a retention sweep now; resolves with the number of rows deleted. */
  sweepRetention(): Promise<number>;
  readonly pendingCount: number;
  readonly openCowrieSessions: number;
  readonly streamClientCount: number;
  /** Gives `potType` its own metric labels (an operator installed it); bounded, see EventLabels. */
  addKnownPotType(potType: string): void;
  /**
   * Graceful stop: detaches sources, commits and republishes everything received, publishes open
   * cowrie sessions, closes stream clients, stops timers. Does not close the database or broker.
   */
  close(): Promise<void>;
}

class EventServiceImpl implements EventService {
  private readonly metrics: EventMetrics;
  private readonly labels: EventLabels;
  private readonly channels: ResolvedChannels;
  private readonly channelCache = new Map<string, readonly string[]>();
  private readonly potTypes: PotTypeCache;
  private readonly cowrieText: CowrieTextContext;
  private readonly writer: EventWriter;
  private readonly store: EventStore;
  /** Read pool built here (only when the caller gave `db` rather than a store). */
  private readonly ownedPool: ReadPool | undefined;
  private readonly retention: RetentionSweeper;
  private readonly hub: EventStreamHub;
  private readonly cowrie: CowrieSessionAggregator | undefined;
  private readonly sharedCowrie: SharedCowrieSessions | undefined;
  private readonly sharedText: SharedCowrieText | undefined;
  private readonly summaryListeners = new Set<(node: string, channel: string, json: string) => void>();
  private readonly cowrieTimer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(events: readonly CommittedEvent[]) => void>();
  private readonly detachers = new Set<() => void>();
  private readonly throttle = new LogThrottle();
  private readonly logger: FastifyBaseLogger;
  private readonly republisher: Republisher;
  private closed = false;

  constructor(opts: EventServiceOptions) {
    this.logger = opts.logger;
    this.metrics = createEventMetrics(opts.registry);
    this.channels = resolveChannels(opts.channels);
    this.potTypes = new PotTypeCache(opts.potTypeLookup);
    if (opts.cowrieTextState !== undefined) {
      this.sharedText = new SharedCowrieText(opts.cowrieTextState, opts.cowrieText, (err) => {
        const suppressed = this.throttle.allow('cowrie-text-state', Date.now());
        if (suppressed !== false) this.logger.error({ err, suppressed }, 'shared cowrie text sessions failed; lines of a node that moves between cores may lose their session');
      });
    }
    this.cowrieText = createCowrieTextContext(opts.cowriePotLookup, this.sharedText?.sessions ?? new CowrieTextSessions(opts.cowrieText));
    const fixedChannels = [this.channels.allEvents, this.channels.cowrieSessions, ...this.channels.dionaeaChannels.values()];
    for (const chans of this.channels.byPotType.values()) fixedChannels.push(...chans);
    this.labels = new EventLabels(
      (t) => this.channelsFor(t),
      fixedChannels.filter((c): c is string => c !== null),
      [...(opts.knownPotTypes ?? BUILTIN_POT_TYPES), ...this.channels.byPotType.keys()],
    );
    if (opts.store !== undefined) {
      this.store = opts.store;
    } else if (opts.db !== undefined) {
      this.ownedPool = new ReadPool({ dbPath: opts.db.path, modules: eventQueryModules(), size: 1 });
      this.store = new SqliteEventStore({ dbPath: opts.db.path, readPool: this.ownedPool });
    } else {
      throw new Error('createEventService needs a store (or db)');
    }
    this.store.observe?.({
      commitSeconds: (s) => this.metrics.commitSeconds.observe(s),
      hookFailed: (hook, error) => {
        this.metrics.hookFailures.inc();
        const suppressed = this.throttle.allow('hook:' + hook, Date.now());
        if (suppressed !== false) {
          this.logger.error({ hook, error, suppressed }, 'event batch hook failed; its writes were rolled back, the events committed');
        }
      },
      writerError: (error) => this.logger.error({ error }, 'event writer error'),
    });
    this.writer = new EventWriter(this.store, this.metrics, this.logger, (b) => this.afterCommit(b), opts.batch);
    this.retention = new RetentionSweeper(this.store, this.metrics, this.logger, opts.retention);
    this.hub = new EventStreamHub(this.metrics, opts.stream);
    this.republisher = new Republisher({
      publisher: opts.publisher,
      hub: this.hub,
      channels: this.channels,
      channelsFor: (t) => this.channelsFor(t),
      metrics: this.metrics,
      labels: this.labels,
      throttle: this.throttle,
      logger: this.logger,
    });
    if (this.channels.cowrieSessions !== null) {
      const channel = this.channels.cowrieSessions;
      const emit = (node: string, summary: CowrieSessionSummary, reason: CowrieEmitReason) => {
        this.publishSession(node, channel, summary);
        this.metrics.cowrieEmitted.child(reason).inc();
        this.metrics.cowrieOpen.set(this.cowrie?.openSessions ?? 0);
      };
      if (opts.cowrieState !== undefined) {
        this.sharedCowrie = new SharedCowrieSessions(opts.cowrieState, emit, {
          ...opts.cowrie,
          onError: (err) => {
            this.metrics.dropped.child('cowrie_state_error').inc();
            const suppressed = this.throttle.allow('cowrie-state', Date.now());
            if (suppressed !== false) this.logger.error({ err, suppressed }, 'shared cowrie session state failed; those events are missing from their cowrie.sessions summary');
          },
        });
      } else {
        this.cowrie = new CowrieSessionAggregator(emit, opts.cowrie);
      }
      const idle = opts.cowrie?.idleTimeoutMs ?? 300_000;
      this.cowrieTimer = setInterval(
        () => {
          if (this.sharedCowrie !== undefined) return this.sharedCowrie.expireIdle(Date.now());
          this.cowrie!.expireIdle(Date.now());
          this.metrics.cowrieOpen.set(this.cowrie!.openSessions);
        },
        Math.max(50, Math.min(30_000, Math.floor(idle / 4))),
      );
      this.cowrieTimer.unref();
    }
    this.retention.start();
  }

  get pendingCount(): number {
    return this.writer.pendingCount;
  }
  get openCowrieSessions(): number {
    return this.cowrie?.openSessions ?? 0;
  }
  get streamClientCount(): number {
    return this.hub.size;
  }

  get saturated(): boolean {
    return this.writer.saturated;
  }

  onFlow(listener: (saturated: boolean) => void): () => void {
    const onSaturated = () => listener(true);
    const onDrained = () => listener(false);
    this.writer.on('saturated', onSaturated);
    this.writer.on('drained', onDrained);
    return () => {
      this.writer.off('saturated', onSaturated);
      this.writer.off('drained', onDrained);
    };
  }

  ingest(event: AttackEvent): boolean {
    if (this.closed) {
      this.metrics.dropped.child('closed').inc();
      return false;
    }
    const out = normaliseAttackEvent(event, this.potTypes, this.cowrieText);
    if ('error' in out) {
      this.metrics.dropped.child('invalid').inc();
      const suppressed = this.throttle.allow('invalid', Date.now());
      if (suppressed !== false) {
        this.logger.warn({ node: event?.nodeName, error: out.error, suppressed }, 'attack event rejected');
      }
      return false;
    }
    this.metrics.received.inc(this.labels.potType(out.potType));
    if (out.cowrieText !== undefined) this.noteCowrieText(out);
    if (out.timestampInvalid) this.noteInvalidTimestamp(out, event);
    return this.writer.add(out);
  }

  private noteCowrieText(e: PendingEvent): void {
    this.metrics.cowrieText.child(e.cowrieText!).inc();
    if (e.cowrieText !== 'unparsed') return;
    const suppressed = this.throttle.allow('cowrie-text:' + e.node, e.receivedAt);
    if (suppressed !== false) {
      const text = typeof e.data.message === 'string' ? e.data.message.slice(0, 120) : '';
      this.logger.info({ node: e.node, pot: e.potId, text, suppressed }, 'cowrie text line matches no known cowrie format; stored as cowrie.unparsed');
    }
  }

  private noteInvalidTimestamp(e: PendingEvent, event: AttackEvent): void {
    this.metrics.invalidTimestamp.child(this.labels.potType(e.potType)).inc();
    const suppressed = this.throttle.allow('ts:' + e.node, e.receivedAt);
    if (suppressed !== false) {
      const raw = (event.message as { timestamp?: unknown }).timestamp;
      this.logger.warn(
        { node: e.node, pot: e.potId, timestamp: String(raw).slice(0, 64), suppressed },
        'PotEvent timestamp is not ISO 8601; stored with the receive time',
      );
    }
  }

  attach(source: AttackEventSource): () => void {
    const listener = (e: AttackEvent) => {
      this.ingest(e);
    };
    const potStatus = (u: PotStatusNotice) => {
      if (typeof u?.potType !== 'string') return;
      this.potTypes.learn(u.nodeName, u.potId, u.potType);
      this.cowrieText.pots.learn(u.nodeName, u.potId, u.potType, u.status, u.at ?? Date.now());
    };
    source.on('attackEvent', listener);
    source.on('potStatus', potStatus);
    const detach = () => {
      if (!this.detachers.delete(detach)) return;
      source.off('attackEvent', listener);
      source.off('potStatus', potStatus);
    };
    this.detachers.add(detach);
    return detach;
  }

  flush(): Promise<boolean> {
    return this.writer.flush();
  }

  addKnownPotType(potType: string): void {
    this.labels.addPotType(potType);
  }

  async list(query: EventListQuery = {}): Promise<EventPage> {
    // Cursors are checked here so a bad one is a 400 before any worker is involved.
    if (query.cursor !== undefined) decodeCursor(query.cursor);
    return this.store.list(query);
  }

  get(id: number): Promise<EventJson | undefined> {
    return this.store.get(id);
  }

  async stats(query: EventStatsQuery = {}): Promise<EventStats> {
    const until = query.until ?? Date.now();
    const since = query.since ?? until - DEFAULT_STATS_RANGE_MS;
    checkStatsRange({ ...query, since, until });
    return this.store.stats({ ...query, since, until });
  }

  onCommitted(listener: (events: readonly CommittedEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  onBatchCommitted(listener: (events: readonly CommittedEvent[]) => void): () => void {
    this.writer.on('batchCommitted', listener);
    return () => {
      this.writer.off('batchCommitted', listener);
    };
  }

  republish(events: readonly RepublishedEvent[]): void {
    if (this.closed || events.length === 0) return;
    this.republisher.events(events, Date.now());
  }

  nodeRegistering(nodeName: string): Promise<void> | undefined {
    return this.closed ? undefined : this.sharedText?.nodeOnline(nodeName);
  }

  onSessionSummary(listener: (node: string, channel: string, json: string) => void): () => void {
    this.summaryListeners.add(listener);
    return () => {
      this.summaryListeners.delete(listener);
    };
  }

  addStreamClient(socket: StreamSocket, filter: EventFilter): boolean {
    if (this.closed) {
      socket.close(1001, 'server shutting down');
      return false;
    }
    return this.hub.add(socket, filter);
  }

  channelsFor(potType: string): readonly string[] {
    let c = this.channelCache.get(potType);
    if (c === undefined) {
      c = channelsForPotType(this.channels, potType);
      if (this.channelCache.size < 10_000) this.channelCache.set(potType, c);
    }
    return c;
  }

  nodeAuthkey(nodeName: string, potTypes?: readonly string[]): NodeAuthkey {
    return nodeAuthkeyFor(nodeName, this.channels, { potTypes });
  }

  sweepRetention(): Promise<number> {
    return this.retention.sweep();
  }

  private afterCommit(batch: readonly PendingEvent[]): void {
    const now = Date.now();
    this.republisher.events(batch, now);
    if (this.cowrie !== undefined) {
      for (let i = 0; i < batch.length; i++) {
        const e = batch[i]!;
        if (!e.fromStatus && e.eventType.startsWith('cowrie.')) this.cowrie.add(e, now);
      }
      this.metrics.cowrieOpen.set(this.cowrie.openSessions);
    }
    this.sharedCowrie?.add(batch, now);
    for (const l of this.listeners) {
      try {
        l(batch);
      } catch (err) {
        this.logger.error({ err }, 'onCommitted listener failed');
      }
    }
  }

  private publishSession(node: string, channel: string, summary: CowrieSessionSummary): void {
    const json = this.republisher.session(node, channel, summary);
    if (json === undefined) return;
    for (const l of this.summaryListeners) {
      try {
        l(node, channel, json);
      } catch (err) {
        this.logger.error({ err }, 'onSessionSummary listener failed');
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const detach of [...this.detachers]) detach();
    this.closed = true;
    if (!(await this.writer.close())) {
      this.logger.error({ pending: this.writer.pendingCount }, 'events could not be committed at shutdown');
    }
    if (this.cowrieTimer !== undefined) clearInterval(this.cowrieTimer);
    this.cowrie?.flushAll('shutdown');
    // Shared sessions stay open in their state (the node may go on at another core); only the
    // summaries of sessions already closed are published before the broker goes.
    await this.sharedCowrie?.settle();
    await this.sharedText?.settle();
    this.metrics.cowrieOpen.set(0);
    this.hub.closeAll();
    await this.retention.stop();
    if (this.ownedPool !== undefined) {
      await this.store.close();
      await this.ownedPool.close();
    }
  }
}

export function createEventService(opts: EventServiceOptions): EventService {
  return new EventServiceImpl(opts);
}
