// The fan-out outbox on PostgreSQL (the FanoutOutbox of store.ts; table event_outbox, migration
// drizzle/pg/0004_event_outbox.sql). PgEventWriter notes each batch in the statement that inserts
// it; this file holds the reads and deletes. Why an outbox at all: a core that is killed after its
// COMMIT completed but before it handed the batch to the other cores leaves events that are stored
// and that no other core's subscribers would ever see. The note is committed with the events, so a
// surviving core finds exactly those batches here.
import type pg from 'pg';
import type { FanoutOutbox, OutboxBatch } from './store.js';

interface OutboxRow {
  first_id: string | number;
  origin: string;
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

/** The columns and values of the note PgEventWriter adds to a batch's INSERT statement. */
export function outboxNote(origin: string, ids: readonly number[], batch: readonly { receivedAt: number; fromStatus: boolean }[], now: number) {
  let receivedFrom = Infinity;
  const fromStatus: boolean[] = [];
  for (const e of batch) {
    if (e.receivedAt < receivedFrom) receivedFrom = e.receivedAt;
    fromStatus.push(e.fromStatus);
  }
  // ids are in ascending order: the first is the batch's key.
  return { firstId: ids[0]!, origin, notedAt: now, receivedFrom, fromStatus };
}

export class PgFanoutOutbox implements FanoutOutbox {
  constructor(private readonly pool: pg.Pool) {}

  async handedOn(keys: readonly number[]): Promise<void> {
    if (keys.length === 0) return;
    await this.pool.query('DELETE FROM event_outbox WHERE first_id = ANY($1::bigint[])', [keys]);
  }

  async unsent(before: number, limit: number): Promise<OutboxBatch[]> {
    const { rows } = await this.pool.query<OutboxRow>(
      'SELECT first_id, origin, noted_at, received_from, ids, from_status FROM event_outbox WHERE noted_at < $1 ORDER BY first_id LIMIT $2',
      [before, limit],
    );
    const batches: OutboxBatch[] = [];
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
        origin: row.origin,
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
