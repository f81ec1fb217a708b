// Day partitions of the PostgreSQL events table (drizzle/pg/0001_events_partitioned.sql): one
// partition per UTC day of received_at, named events_pYYYYMMDD, created ahead of time; retention
// drops whole partitions (no row-by-row DELETE, no table bloat, no vacuum debt).
import type pg from 'pg';
import { inPgTransaction } from './pg.js';

export const DAY_MS = 86_400_000;
const NAME = /^events_p(\d{4})(\d{2})(\d{2})$/;
/** pg_advisory_xact_lock key: cores sharing the database create and drop partitions one at a time. */
const PARTITION_LOCK = 0x61707074; // 'appt'

/** UTC day number (days since the epoch) of an epoch-ms time. */
export const dayOf = (ms: number): number => Math.floor(ms / DAY_MS);

export function partitionName(day: number): string {
  return `events_p${new Date(day * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/** The day a partition name stands for; undefined for tables that are not ours. */
export function partitionDay(name: string): number | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return partitionName(dayOf(ms)) === name ? dayOf(ms) : undefined;
}

export interface EventPartitionsOptions {
  /** Days after today whose partitions exist ahead of time. Default 3. */
  aheadDays?: number;
  /** Longest a DROP waits for the table lock (it must wait for queries on events to end). Default 5000 ms. */
  lockTimeoutMs?: number;
}

export class EventPartitions {
  private readonly aheadDays: number;
  private readonly lockTimeoutMs: number;
  /** Days known to have a partition: the insert path asks this before every batch. */
  private readonly known = new Set<number>();

  constructor(
    private readonly pool: pg.Pool,
    opts: EventPartitionsOptions = {},
  ) {
    this.aheadDays = opts.aheadDays ?? 3;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 5000;
  }

  /** Partitions of events that follow our naming, oldest first. */
  async list(): Promise<{ name: string; day: number }[]> {
    const { rows } = await this.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent
       WHERE p.relname = 'events' AND p.relnamespace = current_schema()::regnamespace`,
    );
    return rows.flatMap((r) => {
      const day = partitionDay(r.name);
      return day === undefined ? [] : [{ name: r.name, day }];
    }).sort((a, b) => a.day - b.day);
  }

  /** Creates the partitions of `days` that do not exist yet; returns the names created. */
  async ensureDays(days: Iterable<number>): Promise<string[]> {
    const missing = [...new Set(days)].filter((d) => !this.known.has(d)).sort((a, b) => a - b);
    if (missing.length === 0) return [];
    const created: string[] = [];
    await this.inTransaction(async (client) => {
      for (const day of missing) {
        const name = partitionName(day);
        const { rowCount } = await client.query('SELECT 1 FROM pg_class WHERE relname = $1 AND relnamespace = current_schema()::regnamespace', [name]);
        if (rowCount === 0) {
          // Bounds are integers computed here, and the name comes from partitionName(): nothing
          // from outside is spliced into the statement.
          await client.query(`CREATE TABLE "${name}" PARTITION OF events FOR VALUES FROM (${day * DAY_MS}) TO (${(day + 1) * DAY_MS})`);
          created.push(name);
        }
      }
    });
    for (const day of missing) this.known.add(day);
    return created;
  }

  /** Forgets that these days have partitions (someone else dropped them): ensureDays checks again. */
  forget(days: Iterable<number>): void {
    for (const d of days) this.known.delete(d);
  }

  /** Today's partition and the next `aheadDays` ones. */
  ensureAhead(now = Date.now()): Promise<string[]> {
    const today = dayOf(now);
    return this.ensureDays(Array.from({ length: this.aheadDays + 1 }, (_, i) => today + i));
  }

  /**
   * Retention: drops the partitions whose whole day is before `cutoff` (epoch ms). The day that
   * holds the cutoff is kept, so up to one day more than the limit stays. Returns the names dropped.
   */
  async dropBefore(cutoff: number): Promise<string[]> {
    return this.drop((await this.list()).filter((p) => (p.day + 1) * DAY_MS <= cutoff));
  }

  /** Drops these partitions (as list() gives them) in one transaction; returns the names dropped. */
  async drop(parts: readonly { name: string; day: number }[]): Promise<string[]> {
    if (parts.length === 0) return [];
    await this.inTransaction(async (client) => {
      // DROP of a partition locks the parent briefly; a long query on events must not make it
      // (and every insert queued behind it) wait: give up and retry at the next sweep instead.
      await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(this.lockTimeoutMs))}`);
      // Names are checked against our pattern: nothing else is spliced into the statement.
      for (const p of parts) if (partitionDay(p.name) === p.day) await client.query(`DROP TABLE IF EXISTS "${p.name}"`);
    });
    for (const p of parts) this.known.delete(p.day);
    return parts.map((p) => p.name);
  }

  /** One maintenance pass: partitions ahead created, those older than `maxAgeDays` dropped (0 = keep all). */
  async maintain(maxAgeDays: number, now = Date.now()): Promise<{ created: string[]; dropped: string[] }> {
    const created = await this.ensureAhead(now);
    const dropped = maxAgeDays > 0 ? await this.dropBefore(now - maxAgeDays * DAY_MS) : [];
    return { created, dropped };
  }

  private inTransaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    return inPgTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
      await work(client);
    });
  }
}
