// Closes the one window the fan-out leaves: a core killed after its COMMIT completed but before it
// wrote the batch to the fan-out stream. The database notes every batch in an outbox in the same
// statement as its events (the events domain's BatchNotes, table event_outbox); this relay
// - forgets a batch once this core put it on the stream (deletes gathered, one statement a second);
// - on the leader only, every few seconds, hands on what is still noted after `staleMs`: a batch
//   whose core died (or could not reach Redis for that long). The fan-out writes a batch once
//   whoever tries (a marker per batch in Redis), so a slow core racing the relay cannot make it
//   twice; every core then publishes it, the one that committed it excepted.
import { Counter, type Registry } from 'prom-client';
import type { ClusterFanout, FanoutEvent } from './fanout.js';
import type { ClusterLogger } from './redis.js';

/** What the relay needs of the database's outbox (the events domain's BatchNotes). */
export interface OutboxPort {
  /** Deletes the notes of these batches (by first event id). */
  forget(keys: readonly number[]): Promise<void>;
  /** Notes older than `before`, oldest first; owner = the fan-out origin of the committing core. */
  unsent(before: number, limit: number): Promise<{ key: number; owner: string; notedAt: number; events: FanoutEvent[] }[]>;
}

export interface OutboxRelayOptions {
  outbox: OutboxPort;
  fanout: ClusterFanout;
  /** True while this core holds the leader lease: only the leader hands on others' batches. */
  leading: () => boolean;
  logger: ClusterLogger;
  registry?: Registry;
  /** A batch noted this long ago and still there is handed on. Default 10 000 ms. */
  staleMs?: number;
  /** How often the leader looks. Default 2000 ms. */
  sweepMs?: number;
  /** Notes older than this are dropped unsent: the fan-out's markers are gone, so they could go twice. Default 25 min. */
  giveUpMs?: number;
  /** How often this core's own hand-overs are forgotten in one statement. Default 1000 ms. */
  forgetMs?: number;
}

/** Batches handed on per sweep at most (each is read from the database with its events). */
const SWEEP_BATCHES = 50;

export class OutboxRelay {
  private handed: number[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private sweeping: Promise<void> | undefined;
  private forgetting: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly recovered: Counter<'result'>;

  constructor(private readonly opts: OutboxRelayOptions) {
    const registers = opts.registry ? [opts.registry] : [];
    this.recovered = new Counter({
      name: 'apiary_cluster_outbox_batches_total',
      help: 'Committed event batches found in the outbox after their core failed to hand them on: handed_on (published to every core now), already_sent (they were on the fan-out stream), expired (too old to know; dropped unsent)',
      labelNames: ['result'],
      registers,
    });
  }

  start(): void {
    this.timers.push(setInterval(() => void this.forget(), this.opts.forgetMs ?? 1000).unref());
    this.timers.push(
      setInterval(() => {
        if (this.opts.leading() && !this.sweeping) this.sweeping = this.sweep().finally(() => (this.sweeping = undefined));
      }, this.opts.sweepMs ?? 2000).unref(),
    );
  }

  /** A batch this core committed: hands it to the other cores, then forgets its note. */
  committed(events: readonly FanoutEvent[]): void {
    if (events.length === 0) return;
    void this.opts.fanout.committed(events).then((onStream) => {
      // Not on the stream (Redis away): the note stays, and the leader hands it on later.
      if (onStream) this.handed.push(events[0]!.id);
    });
  }

  /** One pass of the leader: hands on what dead (or cut off) cores left. Public for tests. */
  async sweep(now = Date.now()): Promise<void> {
    try {
      const stale = await this.opts.outbox.unsent(now - (this.opts.staleMs ?? 10_000), SWEEP_BATCHES);
      const done: number[] = [];
      for (const batch of stale) {
        if (this.closed) break;
        if (now - batch.notedAt > (this.opts.giveUpMs ?? 25 * 60_000)) {
          this.recovered.inc({ result: 'expired' });
          this.opts.logger.error({ batch: batch.key, origin: batch.owner, events: batch.events.length }, 'cluster outbox: a committed batch was never handed to the other cores and is too old to hand on safely; dropped (the events are stored)');
          done.push(batch.key);
          continue;
        }
        const written = await this.opts.fanout.handOn(batch.events, batch.owner);
        if (written === undefined) break; // Redis away: the next sweep tries again
        this.recovered.inc({ result: written ? 'handed_on' : 'already_sent' });
        if (written) this.opts.logger.warn({ batch: batch.key, origin: batch.owner, events: batch.events.length }, 'cluster outbox: handed on a batch its core committed but never passed to the other cores (that core died or lost Redis)');
        done.push(batch.key);
      }
      await this.opts.outbox.forget(done);
    } catch (err) {
      this.opts.logger.error({ err: (err as Error)?.message ?? String(err) }, 'cluster outbox: sweep failed; retrying');
    }
  }

  /** Deletes the notes of the batches this core put on the stream since the last call. */
  private forget(): Promise<void> {
    if (this.handed.length === 0) return this.forgetting;
    const keys = this.handed;
    this.handed = [];
    this.forgetting = this.forgetting
      .then(() => this.opts.outbox.forget(keys))
      .catch((err: unknown) => {
        // Left in the outbox: the leader finds them on the stream already (the marker) and drops them.
        this.opts.logger.warn({ err: (err as Error)?.message ?? String(err), batches: keys.length }, 'cluster outbox: could not delete the notes of handed-on batches');
      });
    return this.forgetting;
  }

  /** Stops the timers and deletes the notes of what was handed on (after the fan-out's writes settled). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.sweeping;
    // The fan-out's last writes settled before this (ClusterMember.close); their callbacks that
    // note the hand-over run a few microtasks later.
    await new Promise((resolve) => setImmediate(resolve));
    await this.forget();
  }
}
