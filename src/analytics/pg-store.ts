// PostgreSQL AttackStore: the write side (one transaction per folded aggregate, one multi-row
// upsert per table through unnest() arrays) and retention. Reads are in pg-queries.ts.
//
// Several cores may write at once (each folds its own committed events). Each write takes a
// transaction-level advisory lock first, so writes apply one at a time: no deadlocks between
// multi-row upserts that meet the same keys in different orders, and the day-rollup fold below
// (which reads the hours it folds) never races a late increment of those hours. Retention chunks
// take the same lock.
import type pg from 'pg';
import { inPgTransaction, type PgDatabaseHandle } from '../db/index.js';
import type { BatchAggregate, RollupIncrement } from './aggregate.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, ROLLED_DIM_IDS } from './dimensions.js';
import { PgAttackQueries } from './pg-queries.js';
import type { AttackWriteStore, RetentionResult } from './store.js';

/** pg_advisory_xact_lock key of analytics writes ('apaw'). */
const WRITE_LOCK = 0x61706177;
/** Rows per statement: bounds one statement's parameter arrays on a large flush. */
const CHUNK_ROWS = 10_000;
const SEP = '\u0001';

/** PostgreSQL text cannot hold NUL (SQLite can): an attacker's NUL byte becomes U+FFFD. */
function text(v: string): string;
function text(v: string | null): string | null;
function text(v: string | null): string | null {
  return v !== null && v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : v;
}

/** Column arrays for an unnest() insert, filled a row at a time. */
class Columns {
  readonly cols: unknown[][];
  constructor(width: number) {
    this.cols = Array.from({ length: width }, () => []);
  }
  add(...row: unknown[]): void {
    for (let i = 0; i < row.length; i++) this.cols[i]!.push(row[i]);
  }
  get rows(): number {
    return this.cols[0]!.length;
  }
}

/**
 * INSERT .. SELECT * FROM unnest($1::t1[], ..) `tail`, CHUNK_ROWS rows per statement; returns the
 * rows the statements return (a RETURNING tail).
 */
async function unnestInsert<T>(client: pg.PoolClient, head: string, types: string[], tail: string, c: Columns): Promise<T[]> {
  const out: T[] = [];
  const sql = `${head} SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) ${tail}`;
  for (let i = 0; i < c.rows; i += CHUNK_ROWS) {
    const args = c.cols.map((col) => (i === 0 && col.length <= CHUNK_ROWS ? col : col.slice(i, i + CHUNK_ROWS)));
    out.push(...((await client.query(sql, args)).rows as T[]));
  }
  return out;
}

const ROLLUP_TYPES = ['int', 'bigint', 'text', 'text', 'text', 'bigint'];
const rollupUpsert = (table: string) =>
  [`INSERT INTO ${table} (dim, bucket, node, pot_type, key, count)`, `ON CONFLICT (dim, bucket, node, pot_type, key) DO UPDATE SET count = ${table}.count + excluded.count`] as const;

const ATTACKER_TYPES = ['text', 'bigint', 'bigint', 'bigint', 'text', 'text', 'bigint', 'text', 'text', 'float8', 'float8', 'text', 'bigint', 'bigint', 'bigint', 'bigint'];
const ATTACKER_INSERT = `INSERT INTO attackers (ip, first_seen, last_seen, events, scope, country, asn, as_org, city, latitude, longitude,
  scanner, logins_failed, logins_ok, commands, downloads)`;
// Geo columns take the latest lookup, as in SQLite.
const ATTACKER_UPSERT = `ON CONFLICT (ip) DO UPDATE SET
  first_seen = least(attackers.first_seen, excluded.first_seen), last_seen = greatest(attackers.last_seen, excluded.last_seen),
  events = attackers.events + excluded.events, scope = excluded.scope, country = excluded.country, asn = excluded.asn,
  as_org = excluded.as_org, city = excluded.city, latitude = excluded.latitude, longitude = excluded.longitude,
  scanner = excluded.scanner, logins_failed = attackers.logins_failed + excluded.logins_failed,
  logins_ok = attackers.logins_ok + excluded.logins_ok, commands = attackers.commands + excluded.commands,
  downloads = attackers.downloads + excluded.downloads`;
const SESSION_TYPES = ['text', 'text', 'text', 'text', 'text', 'int', 'text', 'int', 'text', 'bigint', 'bigint', 'int', 'bigint', 'bigint', 'text', 'text'];
const SESSION_INSERT = `INSERT INTO attack_sessions (node, pot_id, pot_type, session, src_ip, src_port, dest_ip, dest_port, protocol,
  started_at, last_seen, closed, events, logins_failed, username, password)`;
const SESSION_UPSERT = `ON CONFLICT (node, pot_id, session) DO UPDATE SET
  src_ip = coalesce(s.src_ip, excluded.src_ip), src_port = coalesce(s.src_port, excluded.src_port),
  dest_ip = coalesce(s.dest_ip, excluded.dest_ip), dest_port = coalesce(s.dest_port, excluded.dest_port),
  protocol = coalesce(s.protocol, excluded.protocol),
  started_at = least(s.started_at, excluded.started_at), last_seen = greatest(s.last_seen, excluded.last_seen),
  closed = greatest(s.closed, excluded.closed), events = s.events + excluded.events,
  logins_failed = s.logins_failed + excluded.logins_failed,
  username = coalesce(excluded.username, s.username), password = coalesce(excluded.password, s.password)
  RETURNING id, node, pot_id, session`;

export interface PgAttackStoreOptions {
  bruteforceMinFailures?: number;
  /**
   * Whose watermark this store records: cores that share the database each fold their own events,
   * so each keeps its own (attack_meta key `ingested_until_event_id:<name>`). Default: the
   * single-writer key `ingested_until_event_id`, as SQLite.
   */
  watermarkName?: string;
}

/** The notes table of batches committed but not yet in the rollups (src/events/pg-batch-notes.ts). */
export const ANALYTICS_BACKLOG = 'analytics_backlog';

/** A write whose batches were (partly) written by another fold already: it wrote nothing. */
export class BatchClaimLost extends Error {
  constructor(readonly claimed: number, readonly expected: number) {
    super(`${expected - claimed} of ${expected} batches of this aggregate were folded elsewhere; nothing written`);
  }
}

export class PgAttackStore extends PgAttackQueries implements AttackWriteStore {
  private readonly watermarkKey: string;

  constructor(
    private readonly database: PgDatabaseHandle,
    opts: PgAttackStoreOptions = {},
  ) {
    super(database, opts);
    this.watermarkKey = opts.watermarkName ? `ingested_until_event_id:${opts.watermarkName}` : 'ingested_until_event_id';
  }

  /**
   * With `agg.batches` (noted batches), first deletes their notes from the backlog: if any is gone,
   * another fold (a core handing on what a dead one left) wrote it, and this write throws
   * BatchClaimLost and rolls back, so no batch is counted twice; the batches whose notes it had
   * deleted are noted again by the rollback and folded later.
   */
  async write(agg: BatchAggregate): Promise<void> {
    await this.locked(async (client) => {
      if (agg.batches.length > 0) {
        const { rowCount } = await client.query(`DELETE FROM ${ANALYTICS_BACKLOG} WHERE first_id = ANY($1::bigint[])`, [agg.batches]);
        if (rowCount !== agg.batches.length) throw new BatchClaimLost(rowCount ?? 0, agg.batches.length);
      }
      await this.writeRollups(client, agg);
      await this.writeRest(client, agg);
    });
  }

  /** Runs `work` in a transaction holding the analytics write lock. */
  private locked<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inPgTransaction(this.database.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK]);
      return work(client);
    });
  }

  async ingestedUntil(): Promise<number | null> {
    const { rows } = await this.database.pool.query<{ value: number }>('SELECT value FROM attack_meta WHERE key = $1', [this.watermarkKey]);
    return rows[0]?.value ?? null;
  }

  /**
   * Hour rows, and day rows folded from whole hours once the stream has moved past them, as the
   * SQLite store does (sqlite-store.ts): increments of hours already folded (late events) go to
   * both tables.
   */
  private async writeRollups(client: pg.PoolClient, agg: BatchAggregate): Promise<void> {
    if (agg.hourly.length === 0) return;
    let minHour = Infinity;
    let maxHour = -Infinity;
    for (const inc of agg.hourly) {
      if (inc.hour < minHour) minHour = inc.hour;
      if (inc.hour > maxHour) maxHour = inc.hour;
    }
    const meta = await client.query<{ value: number }>("SELECT value FROM attack_meta WHERE key = 'day_rollup_until_hour'");
    let foldedUntil = meta.rows[0]?.value ?? null;
    if (foldedUntil === null) {
      foldedUntil = minHour;
      await this.setMeta(client, 'day_rollup_until_hour', foldedUntil);
    }
    const hours = new Columns(6);
    // Late increments summed per day row: ON CONFLICT cannot update one row twice in a statement.
    const late = new Map<string, RollupIncrement>();
    for (const inc of agg.hourly) {
      const key = text(inc.key);
      hours.add(inc.dim, inc.hour, inc.node, inc.potType, key, inc.count);
      if (inc.hour < foldedUntil) {
        const day = Math.floor(inc.hour / 24);
        const k = inc.dim + SEP + day + SEP + inc.node + SEP + inc.potType + SEP + key;
        const cur = late.get(k);
        if (cur === undefined) late.set(k, { ...inc, hour: day, key });
        else cur.count += inc.count;
      }
    }
    const [hourHead, hourTail] = rollupUpsert('attack_rollup_hour');
    await unnestInsert(client, hourHead, ROLLUP_TYPES, hourTail, hours);
    if (late.size > 0) {
      const days = new Columns(6);
      for (const d of late.values()) days.add(d.dim, d.hour, d.node, d.potType, d.key, d.count);
      const [dayHead, dayTail] = rollupUpsert('attack_rollup_day');
      await unnestInsert(client, dayHead, ROLLUP_TYPES, dayTail, days);
    }
    // Never fold past the clock (a node with a clock in the future must not close open hours).
    const foldTo = Math.min(maxHour, Math.floor(Date.now() / HOUR_MS));
    if (foldTo > foldedUntil) {
      await client.query(
        `INSERT INTO attack_rollup_day (dim, bucket, node, pot_type, key, count)
           SELECT dim, bucket / 24, node, pot_type, key, sum(count) FROM attack_rollup_hour
           WHERE dim = ANY($1::int[]) AND bucket >= $2 AND bucket < $3 GROUP BY dim, bucket / 24, node, pot_type, key
         ON CONFLICT (dim, bucket, node, pot_type, key) DO UPDATE SET count = attack_rollup_day.count + excluded.count`,
        [ROLLED_DIM_IDS, foldedUntil, foldTo],
      );
      await this.setMeta(client, 'day_rollup_until_hour', foldTo);
    }
  }

  private async setMeta(client: pg.PoolClient, key: string, value: number, keepMax = false): Promise<void> {
    await client.query(
      `INSERT INTO attack_meta (key, value) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET value = ${keepMax ? 'greatest(attack_meta.value, excluded.value)' : 'excluded.value'}`,
      [key, value],
    );
  }

  private async writeRest(client: pg.PoolClient, agg: BatchAggregate): Promise<void> {
    if (agg.lastEventId > 0) await this.setMeta(client, this.watermarkKey, agg.lastEventId, true);
    if (agg.minutes.length > 0) {
      const m = new Columns(4);
      for (const x of agg.minutes) m.add(x.minute, x.node, x.potType, x.count);
      await unnestInsert(client, 'INSERT INTO attack_minute (bucket, node, pot_type, count)', ['bigint', 'text', 'text', 'bigint'],
        'ON CONFLICT (bucket, node, pot_type) DO UPDATE SET count = attack_minute.count + excluded.count', m);
    }
    if (agg.ignored.size > 0) {
      const ig = new Columns(2);
      for (const [bucket, count] of agg.ignored) ig.add(bucket, count);
      await unnestInsert(client, 'INSERT INTO attack_ignored (bucket, count)', ['bigint', 'bigint'],
        'ON CONFLICT (bucket) DO UPDATE SET count = attack_ignored.count + excluded.count', ig);
    }
    if (agg.asnNames.size > 0) {
      const asn = new Columns(2);
      for (const [n, org] of agg.asnNames) asn.add(n, text(org));
      await unnestInsert(client, 'INSERT INTO attack_asn (asn, org)', ['bigint', 'text'], 'ON CONFLICT (asn) DO UPDATE SET org = excluded.org', asn);
    }
    if (agg.attackers.size > 0) {
      const attackers = new Columns(16);
      const facts = new Columns(6);
      for (const a of agg.attackers.values()) {
        const g = a.geo;
        attackers.add(a.ip, a.firstSeen, a.lastSeen, a.events, g.scope, g.country, g.asn, text(g.as_org), text(g.city), g.latitude, g.longitude,
          text(a.scanner), a.loginsFailed, a.loginsOk, a.commands, a.downloads);
        for (const f of a.facts) facts.add(a.ip, f.kind, text(f.value), f.count, f.first, f.last);
      }
      await unnestInsert(client, ATTACKER_INSERT, ATTACKER_TYPES, ATTACKER_UPSERT, attackers);
      await unnestInsert(client, 'INSERT INTO attacker_facts (ip, kind, value, count, first_seen, last_seen)', ['text', 'int', 'text', 'bigint', 'bigint', 'bigint'],
        `ON CONFLICT (ip, kind, value) DO UPDATE SET count = attacker_facts.count + excluded.count,
           first_seen = least(attacker_facts.first_seen, excluded.first_seen), last_seen = greatest(attacker_facts.last_seen, excluded.last_seen)`, facts);
    }
    if (agg.sessions.size > 0) await this.writeSessions(client, agg);
  }

  /** Sessions in one upsert; each one's id (for its steps) comes back through RETURNING, matched by its key. */
  private async writeSessions(client: pg.PoolClient, agg: BatchAggregate): Promise<void> {
    const sessions = new Columns(16);
    for (const x of agg.sessions.values()) {
      sessions.add(text(x.node), text(x.potId), text(x.potType), text(x.session), x.srcIp, x.srcPort, x.destIp, x.destPort, text(x.protocol),
        x.startedAt, x.lastSeen, x.closed ? 1 : 0, x.events, x.loginsFailed, text(x.username), text(x.password));
    }
    const returned = await unnestInsert<{ id: number; node: string; pot_id: string; session: string }>(
      client, SESSION_INSERT.replace('INSERT INTO attack_sessions', 'INSERT INTO attack_sessions AS s'), SESSION_TYPES, SESSION_UPSERT, sessions);
    const ids = new Map<string, number>();
    for (const r of returned) ids.set(r.node + SEP + r.pot_id + SEP + r.session, r.id);
    const steps = new Columns(6);
    for (const x of agg.sessions.values()) {
      const id = ids.get(text(x.node) + SEP + text(x.potId) + SEP + text(x.session))!;
      for (const st of x.steps) steps.add(id, st.eventId, st.at, text(st.kind), text(st.value), text(st.detail));
    }
    if (steps.rows > 0) {
      await unnestInsert(client, 'INSERT INTO attack_session_steps (session_id, event_id, at, kind, value, detail)',
        ['bigint', 'bigint', 'bigint', 'text', 'text', 'text'], 'ON CONFLICT DO NOTHING', steps);
    }
  }

  /**
   * One chunk of retention, in a transaction under the write lock like a write (a chunk is at most
   * `maxRows` rows, so writes wait little): a returning attacker's upsert never deadlocks with the
   * delete of its old row.
   */
  deleteOlderThan(cutoff: number, maxRows: number): Promise<RetentionResult> {
    return this.locked((client) => this.deleteChunk(client, cutoff, maxRows));
  }

  private async deleteChunk(client: pg.PoolClient, cutoff: number, maxRows: number): Promise<RetentionResult> {
    const hour = Math.floor(cutoff / HOUR_MS);
    const day = Math.floor(cutoff / DAY_MS);
    let budget = Math.max(1, maxRows);
    let deleted = 0;
    // Any statement that used its whole budget may have left rows behind.
    let more = false;
    // Chunked by ctid: each statement deletes at most the budget, found through an index prefix.
    const run = async (table: string, where: string, ...params: unknown[]) => {
      if (budget <= 0) {
        more = true;
        return;
      }
      const res = await client.query(
        `DELETE FROM ${table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${table} WHERE ${where} LIMIT $${params.length + 1}))`,
        [...params, budget],
      );
      const n = res.rowCount ?? 0;
      if (n >= budget) more = true;
      budget -= n;
      deleted += n;
    };
    for (const dim of ROLLED_DIM_IDS) {
      await run('attack_rollup_hour', 'dim = $1 AND bucket < $2', dim, hour);
      await run('attack_rollup_day', 'dim = $1 AND bucket < $2', dim, day);
    }
    await run('attack_minute', 'bucket < $1', Math.floor(cutoff / MINUTE_MS));
    await run('attack_ignored', 'bucket < $1', hour);
    await run('attacker_facts', 'last_seen < $1', cutoff);
    await run('attackers', 'last_seen < $1', cutoff);
    if (budget <= 0) more = true;
    else {
      const limit = Math.max(1, Math.floor(budget / 20));
      const { rows } = await client.query<{ picked: number; n: number }>(
        `WITH picked AS (SELECT id FROM attack_sessions WHERE last_seen < $1 ORDER BY last_seen LIMIT $2),
              steps AS (DELETE FROM attack_session_steps WHERE session_id IN (SELECT id FROM picked) RETURNING 1),
              gone AS (DELETE FROM attack_sessions WHERE id IN (SELECT id FROM picked) RETURNING 1)
         SELECT (SELECT count(*) FROM picked) AS picked, (SELECT count(*) FROM steps) + (SELECT count(*) FROM gone) AS n`,
        [cutoff, limit],
      );
      if (rows[0]!.picked >= limit) more = true;
      deleted += rows[0]!.n;
    }
    return { deleted, done: !more };
  }
}
