// Cross-core fan-out: every event committed by one core, and every hpfeeds PUBLISH a client makes
// on one core's broker, reaches the hpfeeds subscribers and live streams of all the others, once.
//
// The core that committed (or received) something publishes it locally itself, at once, and
// appends it to one Redis stream, tagged with its origin; every core reads the stream and hands on
// what other origins wrote (its own entries it skips: no echo). Each committed batch is written at
// once, as entries of up to 128 events (compact JSON, each event's stored data JSON carried as is),
// and client publishes as one entry per event-loop turn: the event hot path gains no Redis round
// trip per event.
//
// Why a stream and not PUBLISH/SUBSCRIBE: pub/sub delivers only to subscribers connected at that
// moment, so every message sent while a core's subscriber connection is reconnecting (a Redis
// restart, a failover, a network blip) would be lost for that core without a trace. A stream
// keeps the last `maxLen` entries (XADD MAXLEN ~) and each core reads from its own position (the
// last id it handled, kept in memory), so after a brief outage a core carries on where it stopped
// and loses nothing the stream still holds. Entries also carry a per-origin sequence number:
// an XADD resent after a reconnect (ioredis resends unanswered commands) is skipped rather than
// published twice, and a gap (entries trimmed before a long-absent core read them, or a failed
// XADD) is counted in apiary_cluster_fanout_lost_total instead of passing unnoticed.
//
// Committed batches go through one Lua script that first sets a marker key for the batch (its first
// event id) and writes the entries only if the marker was new. So a batch reaches the stream once
// whoever hands it on: the core that committed it (at once), or a surviving core that found it in
// the database's outbox because that core died between its COMMIT and this write (outbox-relay.ts).
// A batch handed on by another core carries `f`, the origin that committed it: that core (if it
// still lives) published it locally already and skips those entries.
import { Counter, type Registry } from 'prom-client';
import { LuaScript, type ClusterLogger, type RedisClient } from './redis.js';

/**
 * KEYS[1] the stream, KEYS[2] the batch's marker. ARGV: max length, marker lifetime (ms), origin,
 * the committing origin when handing on another core's batch ('' otherwise), then a sequence number
 * and an entry's JSON per entry. A batch already on the stream still gets its sequence numbers, as
 * empty entries: readers count gaps in an origin's numbers as lost, and nothing was lost here.
 * Returns 1 when the batch was written, 0 when it was on the stream already.
 */
const WRITE_BATCH = new LuaScript(`
local fresh = redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2])
for i = 5, #ARGV, 2 do
  if not fresh then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'o', ARGV[3], 's', ARGV[i])
  elseif ARGV[4] == '' then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'o', ARGV[3], 's', ARGV[i], 'e', ARGV[i + 1])
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'o', ARGV[3], 's', ARGV[i], 'f', ARGV[4], 'e', ARGV[i + 1])
  end
end
if fresh then return 1 end
return 0
`);

/** An event as committed (what the receiving core needs to republish it). */
/** Events per stream entry at most (a post-commit slice's size). */
const ENTRY_EVENTS = 128;

export interface FanoutEvent {
  id: number;
  node: string;
  potId: string;
  potType: string;
  eventType: string;
  timestamp: number;
  receivedAt: number;
  dataJson: string;
  fromStatus: boolean;
}

export interface FanoutPublication {
  ident: string;
  channel: string;
  payload: Buffer;
}

export interface FanoutHandlers {
  /** Events another core committed: publish them to this core's subscribers and streams. */
  events(events: FanoutEvent[]): void;
  /** hpfeeds publishes made on another core (clients, cowrie.sessions summaries): Broker.publish them. */
  publications(publications: FanoutPublication[]): void;
}

export interface ClusterFanoutOptions {
  /** Commands (XADD). */
  redis: RedisClient;
  /** A connection of its own: it spends its time in XREAD BLOCK. */
  reader: RedisClient;
  key: string;
  /** Unique per running core (instance id and a per-start id). */
  origin: string;
  /** Entries the stream keeps (approximately). */
  maxLen: number;
  logger: ClusterLogger;
  registry?: Registry;
  /** XADDs waiting for Redis beyond this are dropped (counted as lost). Default 10 000. */
  maxPendingWrites?: number;
  /**
   * Prefix of the per-batch marker keys (same hash tag as `key`, so the script's keys share a
   * Cluster slot). Default `${key}:batch:`.
   */
  batchKeyPrefix?: string;
  /**
   * How long a batch's marker lives, in ms: a batch is never written twice within it. Default
   * 30 min; the outbox relay hands on what a dead core left within seconds, and gives up on notes
   * older than this (outbox-relay.ts).
   */
  batchMarkerMs?: number;
  /** Longest XREAD BLOCK. Default 5000 ms. */
  blockMs?: number;
}

/** Client publishes flushed early once this many payload bytes are buffered in one turn. */
const PUBLICATION_FLUSH_BYTES = 256 * 1024;

export class ClusterFanout {
  private handlers: FanoutHandlers | undefined;
  private seq = 0;
  private pendingWrites = 0;
  private readonly writes = new Set<Promise<unknown>>();
  private publications: string[] = [];
  private publicationBytes = 0;
  private publicationFlush: NodeJS.Immediate | undefined;
  /** Last sequence number handled per origin. */
  private readonly seen = new Map<string, number>();
  private lastId: string | undefined;
  private positionKnown: (() => void) | undefined;
  /** Resolves at close(): a read waiting on a Redis that never answers is abandoned then. */
  private readonly stopping: Promise<undefined>;
  private stop: () => void = () => undefined;
  private reading: Promise<void> | undefined;
  private closed = false;
  private lastErrorLog = 0;
  private readonly sent: Counter<'kind'>;
  private readonly received: Counter<'kind'>;
  private readonly lost: Counter<'reason'>;

  constructor(private readonly opts: ClusterFanoutOptions) {
    this.stopping = new Promise((resolve) => {
      this.stop = () => resolve(undefined);
    });
    const registers = opts.registry ? [opts.registry] : [];
    this.sent = new Counter({ name: 'apiary_cluster_fanout_sent_total', help: 'Events and hpfeeds publishes this core handed to the other cores (cluster fan-out)', labelNames: ['kind'], registers });
    this.received = new Counter({ name: 'apiary_cluster_fanout_received_total', help: 'Events and hpfeeds publishes from other cores republished here (cluster fan-out)', labelNames: ['kind'], registers });
    this.lost = new Counter({
      name: 'apiary_cluster_fanout_lost_total',
      help: 'Fan-out stream entries lost: write_failed (Redis refused or unreachable too long), backlog (too many writes waiting), gap (entries another core wrote that this one never read: trimmed while it was away). On a shared PostgreSQL, event batches counted under write_failed or backlog stay in the outbox and the leader hands them on later',
      labelNames: ['reason'],
      registers,
    });
  }

  /**
   * Starts reading from the stream's current end. Resolves once the read position is known, or
   * after `startWaitMs` if Redis does not answer (the core starts anyway; reading begins, from the
   * stream's end then, once Redis is reachable).
   */
  async start(handlers: FanoutHandlers, startWaitMs = 5000): Promise<void> {
    this.handlers = handlers;
    let timer: NodeJS.Timeout | undefined;
    const known = new Promise<void>((resolve) => {
      this.positionKnown = resolve;
      timer = setTimeout(resolve, startWaitMs);
    });
    this.reading = this.readLoop();
    await known;
    clearTimeout(timer);
  }

  /**
   * A batch this core just committed (already published here). Resolves true once it is on the
   * stream (written now or found there already), false if it could not be written: then it stays
   * in the outbox for the relay.
   */
  committed(events: readonly FanoutEvent[]): Promise<boolean> {
    if (this.closed || events.length === 0) return Promise.resolve(false);
    return this.writeBatch(events, '').then((written) => written !== undefined);
  }

  /**
   * A batch another core (`origin`) committed and never handed on (found in the outbox). Written
   * once whoever tries; when this call wrote it, it is also published here (unless this core is
   * its origin, which published it at commit). Resolves whether this call wrote it, undefined if
   * Redis could not be reached.
   */
  async handOn(events: readonly FanoutEvent[], origin: string): Promise<boolean | undefined> {
    if (this.closed) return undefined;
    if (events.length === 0) return false;
    const written = await this.writeBatch(events, origin === this.opts.origin ? '' : origin);
    if (written && origin !== this.opts.origin) {
      this.received.inc({ kind: 'events' }, events.length);
      this.handlers?.events([...events]);
    }
    return written;
  }

  /**
   * Writes a whole batch (up to thousands of events) as entries of ENTRY_EVENTS, in order, in one
   * script call: entries stay small for the readers and no event waits a turn. Resolves true when
   * written, false when the batch was on the stream already, undefined when it failed.
   */
  private writeBatch(events: readonly FanoutEvent[], forOrigin: string): Promise<boolean | undefined> {
    if (this.pendingWrites >= (this.opts.maxPendingWrites ?? 10_000)) {
      this.lost.inc({ reason: 'backlog' });
      this.logError(new Error(`${this.pendingWrites} stream writes waiting for Redis`), 'cluster fan-out: Redis too slow or away; a batch for the other cores waits in the outbox');
      return Promise.resolve(undefined);
    }
    const args: (string | number)[] = [this.opts.maxLen, this.opts.batchMarkerMs ?? 30 * 60_000, this.opts.origin, forOrigin];
    for (let from = 0; from < events.length; from += ENTRY_EVENTS) args.push(++this.seq, eventsJson(events, from, Math.min(events.length, from + ENTRY_EVENTS)));
    const marker = (this.opts.batchKeyPrefix ?? `${this.opts.key}:batch:`) + events[0]!.id;
    return this.track(
      WRITE_BATCH.run(this.opts.redis, [this.opts.key, marker], args).then(
        (fresh) => {
          if (fresh === 1) this.sent.inc({ kind: 'events' }, events.length);
          return fresh === 1;
        },
        (err: unknown) => {
          this.lost.inc({ reason: 'write_failed' });
          this.logError(err, 'cluster fan-out: a batch for the other cores could not be written; it waits in the outbox');
          return undefined;
        },
      ),
    );
  }

  /** Counts a write as pending until it settles; close() waits for those. */
  private track<T>(write: Promise<T>): Promise<T> {
    this.pendingWrites++;
    const p = write.finally(() => {
      this.pendingWrites--;
      this.writes.delete(p);
    });
    this.writes.add(p);
    return p;
  }

  /** One hpfeeds publish made here (already routed to this core's subscribers); sent with the turn's others. */
  published(ident: string, channel: string, payload: Uint8Array | string): void {
    if (this.closed) return;
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.publications.push(JSON.stringify([ident, channel, bytes.toString('base64')]));
    this.publicationBytes += bytes.length;
    if (this.publicationBytes >= PUBLICATION_FLUSH_BYTES) this.flushPublications();
    else this.publicationFlush ??= setImmediate(() => this.flushPublications());
  }

  /** Sends what is buffered, waits for the writes in flight, stops reading. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flushPublications();
    this.closed = true;
    // Writes wait for a Redis that is away (no per-command retry limit): not beyond a few seconds here.
    await Promise.race([Promise.allSettled([...this.writes]), new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
    this.stop();
    this.opts.reader.disconnect();
    this.positionKnown?.();
    await this.reading;
  }

  private flushPublications(): void {
    if (this.publicationFlush !== undefined) clearImmediate(this.publicationFlush);
    this.publicationFlush = undefined;
    if (this.publications.length === 0) return;
    const count = this.publications.length;
    const json = '[' + this.publications.join(',') + ']';
    this.publications = [];
    this.publicationBytes = 0;
    this.write('p', json, 'publications', count);
  }

  private write(field: 'e' | 'p', json: string, kind: string, count: number): void {
    if (this.pendingWrites >= (this.opts.maxPendingWrites ?? 10_000)) {
      this.lost.inc({ reason: 'backlog' });
      this.logError(new Error(`${this.pendingWrites} stream writes waiting for Redis`), 'cluster fan-out: Redis too slow or away; an entry for the other cores was dropped');
      return;
    }
    const seq = ++this.seq;
    void this.track(
      this.opts.redis.xadd(this.opts.key, 'MAXLEN', '~', this.opts.maxLen, '*', 'o', this.opts.origin, 's', String(seq), field, json).then(
        () => this.sent.inc({ kind }, count),
        (err: unknown) => {
          this.lost.inc({ reason: 'write_failed' });
          this.logError(err, 'cluster fan-out: an entry for the other cores could not be written');
        },
      ),
    );
  }

  private async initPosition(): Promise<void> {
    // On the reader connection: close() disconnects it, which ends this wait when Redis is away.
    const last = (await Promise.race([this.opts.reader.xrevrange(this.opts.key, '+', '-', 'COUNT', 1), this.stopping])) as [string, string[]][] | undefined;
    if (last === undefined) return;
    this.lastId = last[0]?.[0] ?? '0-0';
    this.positionKnown?.();
  }

  private async readLoop(): Promise<void> {
    const blockMs = this.opts.blockMs ?? 5000;
    while (!this.closed) {
      try {
        if (this.lastId === undefined) {
          await this.initPosition();
          continue;
        }
        const reply = (await Promise.race([this.opts.reader.xread('COUNT', 256, 'BLOCK', blockMs, 'STREAMS', this.opts.key, this.lastId), this.stopping])) as
          | [string, [string, string[]][]][]
          | null
          | undefined;
        if (reply === null || reply === undefined) continue;
        for (const [, entries] of reply) {
          for (const [id, fields] of entries) {
            this.lastId = id;
            this.handle(fields);
          }
        }
      } catch (err) {
        if (this.closed) break;
        this.logError(err, 'cluster fan-out: reading the stream failed; retrying from the last entry read');
        await new Promise((resolve) => setTimeout(resolve, 500).unref());
      }
    }
  }

  private handle(fields: string[]): void {
    let origin: string | undefined;
    let committedBy: string | undefined;
    let seq = 0;
    let events: string | undefined;
    let publications: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const v = fields[i + 1]!;
      switch (fields[i]) {
        case 'o':
          origin = v;
          break;
        case 's':
          seq = Number(v);
          break;
        case 'f':
          committedBy = v;
          break;
        case 'e':
          events = v;
          break;
        case 'p':
          publications = v;
          break;
      }
    }
    if (origin === undefined || origin === this.opts.origin) return;
    const last = this.seen.get(origin);
    if (last !== undefined && seq <= last) return; // a resent XADD: already handled
    if (last !== undefined && seq > last + 1) this.lost.inc({ reason: 'gap' }, seq - last - 1);
    this.seen.set(origin, seq);
    if (this.seen.size > 10_000) this.seen.delete(this.seen.keys().next().value!);
    try {
      // A batch this core committed, handed on by another: published here at commit already.
      if (events !== undefined && committedBy !== this.opts.origin) {
        const decoded = (JSON.parse(events) as [number, string, string, string, string, number, number, number, string][]).map(
          ([id, node, potId, potType, eventType, timestamp, receivedAt, fromStatus, dataJson]) => ({ id, node, potId, potType, eventType, timestamp, receivedAt, fromStatus: fromStatus === 1, dataJson }),
        );
        this.received.inc({ kind: 'events' }, decoded.length);
        this.handlers?.events(decoded);
      }
      if (publications !== undefined) {
        const decoded = (JSON.parse(publications) as [string, string, string][]).map(([ident, channel, b64]) => ({ ident, channel, payload: Buffer.from(b64, 'base64') }));
        this.received.inc({ kind: 'publications' }, decoded.length);
        this.handlers?.publications(decoded);
      }
    } catch (err) {
      this.logError(err, 'cluster fan-out: an entry from another core could not be handled');
    }
  }

  /** At most one error line per 10 s: a Redis outage must not flood the log. */
  private logError(err: unknown, msg: string): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = now;
    this.opts.logger.error({ err: (err as Error)?.message ?? String(err) }, msg);
  }
}

/** Events [from, to) as one stream entry: compact arrays, the stored data JSON carried as is. */
function eventsJson(events: readonly FanoutEvent[], from: number, to: number): string {
  let json = '[';
  for (let i = from; i < to; i++) {
    const e = events[i]!;
    if (i > from) json += ',';
    json +=
      '[' + e.id + ',' + JSON.stringify(e.node) + ',' + JSON.stringify(e.potId) + ',' + JSON.stringify(e.potType) + ',' +
      JSON.stringify(e.eventType) + ',' + e.timestamp + ',' + e.receivedAt + ',' + (e.fromStatus ? 1 : 0) + ',' + JSON.stringify(e.dataJson) + ']';
  }
  return json + ']';
}
