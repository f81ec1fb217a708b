// Read side (list, get, stats) and retention of the events table on PostgreSQL: the same filters,
// keyset cursors, orders and answers as the SQLite queries in queries.ts (checked by
// test/events/store-contract.test.ts). Statements are named per filter shape, so each pooled
// connection plans a shape once.
import type pg from 'pg';
import { DAY_MS, dayOf, type EventPartitions } from '../db/index.js';
import {
  BUCKET_MS,
  checkStatsRange,
  decodeCursor,
  DEFAULT_PAGE_SIZE,
  encodeCursor,
  MAX_PAGE_SIZE,
  rowToJson,
  STATS_TOP,
  type EventListQuery,
  type EventPage,
  type EventRow,
  type EventStats,
  type EventStatsQuery,
} from './queries.js';
import type { RetentionStep } from './store.js';
import type { EventFilter, EventJson } from './types.js';

const COLUMNS = 'id, node_name, pot_id, pot_type, event_type, timestamp, data, received_at';

function whereClause(f: EventFilter): { parts: string[]; params: unknown[]; shape: string } {
  const parts: string[] = [];
  const params: unknown[] = [];
  let shape = '';
  const add = (sql: (p: string) => string, value: unknown, key: string) => {
    params.push(value);
    parts.push(sql(`$${params.length}`));
    shape += key;
  };
  if (f.node !== undefined) add((p) => `node_name = ${p}`, f.node, 'n');
  if (f.pot !== undefined) add((p) => `pot_id = ${p}`, f.pot, 'p');
  if (f.potType !== undefined) add((p) => `pot_type = ${p}`, f.potType, 't');
  if (f.eventType !== undefined) add((p) => `event_type = ${p}`, f.eventType, 'e');
  if (f.since !== undefined) add((p) => `timestamp >= ${p}`, f.since, 's');
  if (f.until !== undefined) add((p) => `timestamp < ${p}`, f.until, 'u');
  return { parts, params, shape };
}

const whereOf = (parts: string[]) => (parts.length === 0 ? '' : `WHERE ${parts.join(' AND ')}`);

export class PgEventQueries {
  constructor(private readonly pool: pg.Pool) {}

  async get(id: number): Promise<EventJson | undefined> {
    const { rows } = await this.pool.query<EventRow>({ name: 'events_get', text: `SELECT ${COLUMNS} FROM events WHERE id = $1`, values: [id] });
    return rows[0] === undefined ? undefined : rowToJson(rows[0]);
  }

  async list(q: EventListQuery = {}): Promise<EventPage> {
    const limit = Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(q.limit ?? DEFAULT_PAGE_SIZE)));
    const order = q.order ?? 'desc';
    const w = whereClause(q);
    let shape = w.shape + order;
    if (q.cursor !== undefined) {
      w.params.push(decodeCursor(q.cursor));
      w.parts.push(order === 'desc' ? `id < $${w.params.length}` : `id > $${w.params.length}`);
      shape += 'c';
    }
    w.params.push(limit + 1);
    const text = `SELECT ${COLUMNS} FROM events ${whereOf(w.parts)} ORDER BY id ${order === 'desc' ? 'DESC' : 'ASC'} LIMIT $${w.params.length}`;
    const { rows } = await this.pool.query<EventRow>({ name: `events_list_${shape}`, text, values: w.params });
    const more = rows.length > limit;
    if (more) rows.length = limit;
    return { events: rows.map(rowToJson), next_cursor: more ? encodeCursor(rows[rows.length - 1]!.id) : null };
  }

  async stats(q: EventStatsQuery & { since: number; until: number }): Promise<EventStats> {
    const bucket = q.bucket ?? 'hour';
    const size = BUCKET_MS[bucket];
    checkStatsRange(q);
    const w = whereClause(q);
    const where = whereOf(w.parts);
    const run = <R extends pg.QueryResultRow>(key: string, text: string) =>
      this.pool.query<R>({ name: `events_stats_${key}_${w.shape}`, text, values: w.params }).then((r) => r.rows);
    // Ties in count are broken by the key in byte order (COLLATE "C"), as SQLite compares text.
    const group = (col: string) =>
      run<{ k: string; c: number }>(col, `SELECT ${col} AS k, count(*) AS c FROM events ${where} GROUP BY ${col} ORDER BY c DESC, ${col} COLLATE "C" LIMIT ${STATS_TOP}`);
    const [total, byType, byNode, byPotType, buckets] = await Promise.all([
      run<{ c: number }>('total', `SELECT count(*) AS c FROM events ${where}`),
      group('event_type'),
      group('node_name'),
      group('pot_type'),
      // size comes from BUCKET_MS, never from input; bigint / bigint divides as integers, as in SQLite.
      run<{ b: number; c: number }>(`bucket_${bucket}`, `SELECT (timestamp / ${size}) * ${size} AS b, count(*) AS c FROM events ${where} GROUP BY b ORDER BY b`),
    ]);
    return {
      since: new Date(q.since).toISOString(),
      until: new Date(q.until).toISOString(),
      bucket,
      total: total[0]?.c ?? 0,
      by_event_type: byType.map((r) => ({ event_type: r.k, count: r.c })),
      by_node: byNode.map((r) => ({ node: r.k, count: r.c })),
      by_pot_type: byPotType.map((r) => ({ pot_type: r.k, count: r.c })),
      buckets: buckets.map((r) => ({ start: new Date(r.b).toISOString(), count: r.c })),
    };
  }
}

/**
 * Retention on PostgreSQL: what SQLite does row by row (writer-worker.ts), with whole day
 * partitions dropped wherever every row of the day goes: by age, the days wholly before the
 * cutoff; by row count, the oldest days whose every id is among those to delete. Rows of the day
 * that holds the limit are deleted like on SQLite, at most `limit` per step. A dropped day counts
 * all its rows (counted before the drop) and may exceed `limit`: that is the point of partitions.
 */
export class PgEventRetention {
  constructor(
    private readonly pool: pg.Pool,
    private readonly partitions: EventPartitions,
  ) {}

  async step(step: RetentionStep, now = Date.now()): Promise<{ age: number; rows: number }> {
    let age = 0;
    let rows = 0;
    if (step.receivedBefore > 0) {
      const whole = (await this.partitions.list()).filter((p) => (p.day + 1) * DAY_MS <= step.receivedBefore);
      age += await this.dropCounted(whole);
      if (age < step.limit) {
        const res = await this.pool.query(
          `DELETE FROM events WHERE (id, received_at) IN
             (SELECT id, received_at FROM events WHERE received_at < $1 ORDER BY received_at LIMIT $2)`,
          [step.receivedBefore, step.limit - age],
        );
        age += res.rowCount ?? 0;
      }
    }
    if (step.maxRows > 0 && age < step.limit) {
      const maxId = (await this.pool.query<{ m: number | null }>('SELECT max(id) AS m FROM events')).rows[0]?.m ?? 0;
      const keepAbove = maxId - step.maxRows;
      if (keepAbove > 0) {
        rows += await this.dropCounted(await this.wholeDaysAtOrBelow(keepAbove, dayOf(now)));
        if (age + rows < step.limit) {
          const res = await this.pool.query(
            'DELETE FROM events WHERE id <= $1 AND id < (SELECT coalesce(min(id), 0) FROM events) + $2',
            [keepAbove, step.limit - age - rows],
          );
          rows += res.rowCount ?? 0;
        }
      }
    }
    return { age, rows };
  }

  /** The oldest partitions, in a row, whose ids are all <= keepAbove (empty past days included). */
  private async wholeDaysAtOrBelow(keepAbove: number, today: number): Promise<{ name: string; day: number }[]> {
    const out: { name: string; day: number }[] = [];
    for (const p of await this.partitions.list()) {
      if (p.day >= today) break;
      // The name is one of ours (list() only gives names matching events_pYYYYMMDD).
      const m = (await this.pool.query<{ m: number | null }>(`SELECT max(id) AS m FROM "${p.name}"`)).rows[0]?.m ?? null;
      if (m !== null && m > keepAbove) break;
      out.push(p);
    }
    return out;
  }

  private async dropCounted(parts: { name: string; day: number }[]): Promise<number> {
    if (parts.length === 0) return 0;
    let count = 0;
    for (const p of parts) count += (await this.pool.query<{ c: number }>(`SELECT count(*) AS c FROM "${p.name}"`)).rows[0]?.c ?? 0;
    await this.partitions.drop(parts);
    return count;
  }
}
