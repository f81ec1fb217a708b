// Batch notes on PostgreSQL (the BatchNotes of store.ts). PgEventWriter notes each batch in every
// notes table opened on it, in the statement that inserts the batch, so a note exists exactly when
// its batch is committed; this file holds that note's SQL and the reads and deletes. What a notes
// table is for is its owner's business:
// - event_outbox: the cluster fan-out. A core killed after its COMMIT completed
//   but before it handed the batch to the other cores leaves events that are stored and that no
//   other core's subscribers would ever see; a surviving core finds exactly those batches here.
// - analytics_backlog: the analytics ingest deletes a batch's note in the
//   transaction that writes its rollups, so a batch a killed core folded but never wrote is folded
//   again, and none twice.
// Every notes table has the same columns: first_id (the batch's first, lowest, event id: its key),
// owner, noted_at, received_from (the lowest received_at: bounds the partitions read), ids and
// from_status (per id; not a column of events). Migration: drizzle/pg/0004_batch_notes.sql.
import type pg from 'pg';
import type { BatchNotes, NotedBatch } from './store.js';

interface NoteRow {
  first_id: string | number;
  owner: string;
  noted_at: string | number;
  received_from: string | number;
  ids: (string | number)[];
  from_status: boolean[];
}

interface EventRow {
  id: string | number;
  node_name: string;
  pot_id: string;
  pot_type: string;
  event_type: string;
  timestamp: string | number;
  data: string;
  received_at: string | number;
}

/** Notes tables are named by their owners; only plain identifiers go into the SQL. */
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** A notes table and the owner its notes carry, as PgEventWriter adds them to a batch's insert. */
export interface NoteTarget {
  table: string;
  owner: string;
}

export function checkNotesTable(table: string): string {
  if (!TABLE_NAME.test(table)) throw new Error(`not a notes table name: ${table}`);
  return table;
}

/**
 * The batch insert `insert` (whose $1 is the ids array) with one note per target, all in one
 * statement: a data-modifying WITH runs to completion whether or not it is read, and one statement
 * commits atomically. Parameters after the insert's `insertParams`: noted_at, received_from,
 * from_status, then each target's owner.
 */
export function notedInsert(insert: string, insertParams: number, targets: readonly NoteTarget[]): string {
  if (targets.length === 0) return insert;
  const [notedAt, receivedFrom, fromStatus] = [insertParams + 1, insertParams + 2, insertParams + 3];
  const notes = targets.map(
    (t, i) => `INSERT INTO ${checkNotesTable(t.table)} (first_id, owner, noted_at, received_from, ids, from_status) VALUES (($1::bigint[])[1], $${insertParams + 4 + i}, $${notedAt}, $${receivedFrom}, $1::bigint[], $${fromStatus}::boolean[])`,
  );
  // The last note is the main statement; the insert and the other notes are WITH parts.
  const parts = [`stored AS (${insert})`, ...notes.slice(0, -1).map((n, i) => `note${i} AS (${n})`)];
  return `WITH ${parts.join(', ')} ${notes[notes.length - 1]}`;
}

/** The parameters notedInsert() adds after the insert's own. */
export function noteParams(batch: readonly { receivedAt: number; fromStatus: boolean }[], targets: readonly NoteTarget[], now: number): unknown[] {
  let receivedFrom = Infinity;
  const fromStatus: boolean[] = [];
  for (const e of batch) {
    if (e.receivedAt < receivedFrom) receivedFrom = e.receivedAt;
    fromStatus.push(e.fromStatus);
  }
  return [now, receivedFrom, fromStatus, ...targets.map((t) => t.owner)];
}

export class PgBatchNotes implements BatchNotes {
  private readonly table: string;
  constructor(
    private readonly pool: pg.Pool,
    table: string,
  ) {
    this.table = checkNotesTable(table);
  }

  async forget(keys: readonly number[]): Promise<void> {
    if (keys.length === 0) return;
    await this.pool.query(`DELETE FROM ${this.table} WHERE first_id = ANY($1::bigint[])`, [keys]);
  }

  async unsent(before: number, limit: number): Promise<NotedBatch[]> {
    const { rows } = await this.pool.query<NoteRow>(
      `SELECT first_id, owner, noted_at, received_from, ids, from_status FROM ${this.table} WHERE noted_at < $1 ORDER BY first_id LIMIT $2`,
      [before, limit],
    );
    const batches: NotedBatch[] = [];
    for (const row of rows) {
      const ids = row.ids.map(Number);
      const fromStatus = new Map(ids.map((id, i) => [id, row.from_status[i] === true]));
      // received_at bounds the scan to the batch's day partitions.
      const events = await this.pool.query<EventRow>(
        'SELECT id, node_name, pot_id, pot_type, event_type, timestamp, data, received_at FROM events WHERE id = ANY($1::bigint[]) AND received_at >= $2 ORDER BY id',
        [ids, Number(row.received_from)],
      );
      batches.push({
        key: Number(row.first_id),
        owner: row.owner,
        notedAt: Number(row.noted_at),
        events: events.rows.map((e) => ({
          id: Number(e.id),
          node: e.node_name,
          potId: e.pot_id,
          potType: e.pot_type,
          eventType: e.event_type,
          timestamp: Number(e.timestamp),
          receivedAt: Number(e.received_at),
          dataJson: e.data,
          fromStatus: fromStatus.get(Number(e.id)) ?? false,
        })),
      });
    }
    return batches;
  }
}
