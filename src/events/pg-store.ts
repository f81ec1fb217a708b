// Events on PostgreSQL (issue 15). PgEventWriter: batches go into the day-partitioned events table
// (drizzle/pg/0001_events_partitioned.sql) as ONE multi-row INSERT over unnest() arrays — eight
// parameters whatever the batch size, one statement (atomic without BEGIN/COMMIT round trips).
// PgEventStore: the EventStore of store.ts on top of it, with the reads and retention of
// pg-queries.ts (the same answers as the SQLite store: test/events/store-contract.test.ts).
//
// Batch notes (noteBatches: the cluster fan-out outbox, the analytics backlog): each batch's INSERT
// also notes the batch in those tables, in the same statement (pg-batch-notes.ts).
//
// Not on PostgreSQL yet: batch hooks (the analytics ingest runs inside the SQLite writer's
// transaction; its PostgreSQL version belongs to the analytics domain).
import { EventPartitions, dayOf, type EventPartitionsOptions, type PgDatabaseHandle } from '../db/index.js';
import { PgEventQueries, PgEventRetention } from './pg-queries.js';
import type { EventListQuery, EventPage, EventStats, EventStatsQuery } from './queries.js';
import { notedInsert, noteParams, PgBatchNotes, type NoteTarget } from './pg-batch-notes.js';
import type { BatchNotes, EventStore, EventStoreObserver, NewEvent, RetentionStep } from './store.js';
import type { EventJson } from './types.js';

const INSERT = `INSERT INTO events (id, node_name, pot_id, pot_type, event_type, timestamp, data, received_at)
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[])`;
/** SQLSTATE "no partition of relation found for row": a partition another instance dropped. */
const NO_PARTITION = '23514';

export class PgEventWriter {
  readonly partitions: EventPartitions;
  /** Appends run one after another: batches commit in the order append() was called. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Notes tables every batch is noted in (noteBatches()), and the insert statement with them. */
  private notes: NoteTarget[] = [];
  private insertSql = INSERT;

  constructor(
    private readonly database: PgDatabaseHandle,
    opts: EventPartitionsOptions = {},
  ) {
    this.partitions = new EventPartitions(database.pool, opts);
  }

  /** Appends a batch atomically; resolves with the ids in batch order once committed. */
  append(batch: readonly NewEvent[]): Promise<number[]> {
    const run = this.tail.then(() => this.insert(batch));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** From now on, notes every batch in `table` under `owner` too (pg-batch-notes.ts). */
  noteBatches(table: string, owner: string): void {
    this.notes = [...this.notes.filter((n) => n.table !== table), { table, owner }];
    this.insertSql = notedInsert(INSERT, 8, this.notes);
  }

  /** Drops the day partitions wholly older than `receivedBefore`; resolves with how many. */
  async dropBefore(receivedBefore: number): Promise<number> {
    return (await this.partitions.dropBefore(receivedBefore)).length;
  }

  /** Waits for appends in flight (the pool belongs to the caller's database handle). */
  async close(): Promise<void> {
    await this.tail;
  }

  private async insert(batch: readonly NewEvent[]): Promise<number[]> {
    if (batch.length === 0) return [];
    await this.partitions.ensureDays(batch.map((e) => dayOf(e.receivedAt)));
    const pool = this.database.pool;
    // Ids are taken first and given in batch order: the order INSERT ... RETURNING reports rows
    // in is not defined, and callers need the id of each event.
    const { rows } = await pool.query<{ id: number }>("SELECT nextval('events_id_seq') AS id FROM generate_series(1, $1)", [batch.length]);
    const ids = rows.map((r) => r.id).sort((a, b) => a - b);
    const columns = [ids, [] as string[], [] as string[], [] as string[], [] as string[], [] as number[], [] as string[], [] as number[]] as const;
    for (const e of batch) {
      columns[1].push(e.node);
      columns[2].push(e.potId);
      columns[3].push(e.potType);
      columns[4].push(e.eventType);
      columns[5].push(e.timestamp);
      columns[6].push(e.dataJson);
      columns[7].push(e.receivedAt);
    }
    const sql = this.insertSql;
    const params: unknown[] = this.notes.length === 0 ? (columns as unknown as unknown[]) : [...columns, ...noteParams(batch, this.notes, Date.now())];
    try {
      await pool.query(sql, params);
    } catch (err) {
      if ((err as { code?: string }).code !== NO_PARTITION) throw err;
      // The partition cache was stale (another instance's retention dropped a day this batch
      // still has, i.e. a very late event): forget it, create the days again, retry once.
      this.partitions.forget(batch.map((e) => dayOf(e.receivedAt)));
      await this.partitions.ensureDays(batch.map((e) => dayOf(e.receivedAt)));
      await pool.query(sql, params);
    }
    return ids;
  }
}

export interface PgEventStoreOptions {
  /** Day partitions ahead and the lock timeout of drops (src/db/pg-partitions.ts). */
  partitions?: EventPartitionsOptions;
}

export class PgEventStore implements EventStore {
  readonly writer: PgEventWriter;
  private readonly queries: PgEventQueries;
  private readonly retention: PgEventRetention;
  private observer: EventStoreObserver | undefined;
  private closed = false;

  constructor(
    private readonly database: PgDatabaseHandle,
    opts: PgEventStoreOptions = {},
  ) {
    this.writer = new PgEventWriter(database, opts.partitions);
    this.queries = new PgEventQueries(database.pool);
    this.retention = new PgEventRetention(database.pool, this.writer.partitions);
  }

  observe(observer: EventStoreObserver): void {
    this.observer = observer;
  }

  noteBatches(table: string, owner: string): BatchNotes {
    this.writer.noteBatches(table, owner);
    return new PgBatchNotes(this.database.pool, table);
  }

  async append(batch: readonly NewEvent[]): Promise<ArrayLike<number>> {
    if (this.closed) throw new Error('event store closed');
    const started = performance.now();
    const ids = await this.writer.append(batch);
    this.observer?.commitSeconds((performance.now() - started) / 1000);
    return ids;
  }

  /** Also creates the partitions of the days ahead: the sweep runs every minute. */
  async retentionStep(step: RetentionStep): Promise<{ age: number; rows: number }> {
    await this.writer.partitions.ensureAhead();
    return this.retention.step(step);
  }

  list(query: EventListQuery): Promise<EventPage> {
    return this.queries.list(query);
  }

  get(id: number): Promise<EventJson | undefined> {
    return this.queries.get(id);
  }

  stats(query: EventStatsQuery & { since: number; until: number }): Promise<EventStats> {
    return this.queries.stats(query);
  }

  /** Waits for appends in flight; the pool belongs to the caller's database handle. */
  async close(): Promise<void> {
    this.closed = true;
    await this.writer.close();
  }
}
