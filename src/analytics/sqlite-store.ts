// SQLite AttackStore: the write side (batch upserts with prepared statements) and retention.
// Reads are in sqlite-queries.ts. Statements are prepared lazily, so a store over a read-only
// connection (a read worker) never prepares the writes.
import type Database from 'better-sqlite3';
import { KEY_SEPARATOR, type BatchAggregate, type SessionDelta } from './aggregate.js';
import { DAY_MS, HOUR_MS, MINUTE_MS, ROLLED_DIM_IDS } from './dimensions.js';
import { SqliteAttackQueries } from './sqlite-queries.js';
import { DAY_SUMMARIES, DEFAULT_TOP_KEYS_PER_DAY, DEFAULT_TOP_KEYS_PER_HOUR, HOUR_SUMMARIES, TopSummaries } from './sqlite-top-summaries.js';
import type { AttackStore, AttackWriteStore, RetentionResult } from './store.js';

/** Rows per multi-row INSERT: one statement step per 64 rows instead of per row. */
const MULTI_ROWS = 64;

/**
 * A multi-row upsert: rows are collected (flat values) and run 64 to a statement, which costs
 * about half of running the one-row statement per row (the flush writes tens of thousands of rows).
 */
class MultiRow {
  private readonly statements = new Map<number, Database.Statement>();
  private values: unknown[] = [];

  constructor(
    private readonly db: Database.Database,
    private readonly width: number,
    private readonly head: string,
    private readonly tail: string,
  ) {}

  add(...row: unknown[]): void {
    for (let i = 0; i < row.length; i++) this.values.push(row[i]);
    if (this.values.length >= MULTI_ROWS * this.width) this.flush();
  }

  flush(): void {
    const v = this.values;
    if (v.length === 0) return;
    this.values = [];
    this.statement(v.length / this.width).run(v);
  }

  /** For a tail with RETURNING: runs what is collected and returns the returned rows. */
  flushReturning<T>(): T[] {
    const v = this.values;
    if (v.length === 0) return [];
    this.values = [];
    return this.statement(v.length / this.width).all(v) as T[];
  }

  /** Whether a row added now would run the statement first (RETURNING callers flush themselves). */
  get full(): boolean {
    return this.values.length >= (MULTI_ROWS - 1) * this.width;
  }

  private statement(rows: number): Database.Statement {
    let st = this.statements.get(rows);
    if (st === undefined) {
      const one = '(' + new Array(this.width).fill('?').join(', ') + ')';
      st = this.db.prepare(`${this.head} VALUES ${new Array(rows).fill(one).join(', ')} ${this.tail}`);
      this.statements.set(rows, st);
    }
    return st;
  }
}

// Geo columns take the latest lookup: a database update (or the operator's own .mmdb) corrects old rows.
const ATTACKER_INSERT = `INSERT INTO attackers (ip, first_seen, last_seen, events, scope, country, asn, as_org, city, latitude, longitude,
  scanner, logins_failed, logins_ok, commands, downloads)`;
const ATTACKER_UPSERT = `ON CONFLICT (ip) DO UPDATE SET
  first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen),
  events = events + excluded.events, scope = excluded.scope, country = excluded.country, asn = excluded.asn,
  as_org = excluded.as_org, city = excluded.city, latitude = excluded.latitude, longitude = excluded.longitude,
  scanner = excluded.scanner, logins_failed = logins_failed + excluded.logins_failed,
  logins_ok = logins_ok + excluded.logins_ok, commands = commands + excluded.commands,
  downloads = downloads + excluded.downloads`;
const SESSION_INSERT = `INSERT INTO attack_sessions (node, pot_id, pot_type, session, src_ip, src_port, dest_ip, dest_port, protocol,
  started_at, last_seen, closed, events, logins_failed, username, password)`;
const SESSION_UPSERT = `ON CONFLICT (node, pot_id, session) DO UPDATE SET
  src_ip = coalesce(src_ip, excluded.src_ip), src_port = coalesce(src_port, excluded.src_port),
  dest_ip = coalesce(dest_ip, excluded.dest_ip), dest_port = coalesce(dest_port, excluded.dest_port),
  protocol = coalesce(protocol, excluded.protocol),
  started_at = min(started_at, excluded.started_at), last_seen = max(last_seen, excluded.last_seen),
  closed = max(closed, excluded.closed), events = events + excluded.events,
  logins_failed = logins_failed + excluded.logins_failed,
  username = coalesce(excluded.username, username), password = coalesce(excluded.password, password)`;

class WriteStatements {
  readonly hour: Database.Statement;
  readonly day: Database.Statement;
  readonly minute: Database.Statement;
  readonly ignored: Database.Statement;
  readonly asn: Database.Statement;
  readonly fact: Database.Statement;
  readonly hours: MultiRow;
  readonly facts: MultiRow;
  readonly steps: MultiRow;
  readonly attackers: MultiRow;
  readonly sessions: MultiRow;
  readonly setDayUntil: Database.Statement;
  readonly setIngestedUntil: Database.Statement;
  readonly compact: Database.Statement;

  constructor(db: Database.Database) {
    const rollup = (table: string) =>
      db.prepare(
        `INSERT INTO ${table} (dim, bucket, node, pot_type, key, count) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (dim, bucket, node, pot_type, key) DO UPDATE SET count = count + excluded.count`,
      );
    this.hour = rollup('attack_rollup_hour');
    this.day = rollup('attack_rollup_day');
    this.minute = db.prepare(
      `INSERT INTO attack_minute (bucket, node, pot_type, count) VALUES (?, ?, ?, ?)
       ON CONFLICT (bucket, node, pot_type) DO UPDATE SET count = count + excluded.count`,
    );
    this.ignored = db.prepare(
      'INSERT INTO attack_ignored (bucket, count) VALUES (?, ?) ON CONFLICT (bucket) DO UPDATE SET count = count + excluded.count',
    );
    this.asn = db.prepare('INSERT INTO attack_asn (asn, org) VALUES (?, ?) ON CONFLICT (asn) DO UPDATE SET org = excluded.org');
    // Geo columns take the latest lookup: a database update (or the operator's own .mmdb) corrects old rows.
    this.fact = db.prepare(
      `INSERT INTO attacker_facts (ip, kind, value, count, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (ip, kind, value) DO UPDATE SET count = count + excluded.count,
         first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)`,
    );
    this.setDayUntil = db.prepare(
      `INSERT INTO attack_meta (key, value) VALUES ('day_rollup_until_hour', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    );
    this.setIngestedUntil = db.prepare(
      `INSERT INTO attack_meta (key, value) VALUES ('ingested_until_event_id', ?)
       ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)`,
    );
    // Per dim, so the scan is a primary-key range of the hour table.
    this.compact = db.prepare(
      `INSERT INTO attack_rollup_day (dim, bucket, node, pot_type, key, count)
         SELECT dim, bucket / 24, node, pot_type, key, sum(count) FROM attack_rollup_hour
         WHERE dim = ? AND bucket >= ? AND bucket < ? GROUP BY dim, bucket / 24, node, pot_type, key
       ON CONFLICT (dim, bucket, node, pot_type, key) DO UPDATE SET count = count + excluded.count`,
    );
    this.attackers = new MultiRow(db, 16, ATTACKER_INSERT, ATTACKER_UPSERT);
    this.sessions = new MultiRow(db, 16, SESSION_INSERT, SESSION_UPSERT + ' RETURNING id, node, pot_id, session');
    this.hours = new MultiRow(db, 6, 'INSERT INTO attack_rollup_hour (dim, bucket, node, pot_type, key, count)',
      'ON CONFLICT (dim, bucket, node, pot_type, key) DO UPDATE SET count = count + excluded.count');
    this.facts = new MultiRow(db, 6, 'INSERT INTO attacker_facts (ip, kind, value, count, first_seen, last_seen)',
      `ON CONFLICT (ip, kind, value) DO UPDATE SET count = count + excluded.count,
         first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)`);
    this.steps = new MultiRow(db, 6, 'INSERT OR IGNORE INTO attack_session_steps (session_id, event_id, at, kind, value, detail)', '');
  }
}

export class SqliteAttackStore extends SqliteAttackQueries implements AttackStore {
  private writes: WriteStatements | undefined;
  private readonly daySummaries: TopSummaries;
  private readonly hourSummaries: TopSummaries;

  constructor(
    db: Database.Database,
    opts: { bruteforceMinFailures?: number; cacheMiB?: number; topKeysPerDay?: number; topKeysPerHour?: number } = {},
  ) {
    super(db, opts);
    this.daySummaries = new TopSummaries(db, DAY_SUMMARIES, Math.max(1, opts.topKeysPerDay ?? DEFAULT_TOP_KEYS_PER_DAY));
    this.hourSummaries = new TopSummaries(db, HOUR_SUMMARIES, Math.max(1, opts.topKeysPerHour ?? DEFAULT_TOP_KEYS_PER_HOUR));
    // The rollup upserts touch pages all over several large B-trees; SQLite's default 2 MiB page
    // cache makes most of them reads from the OS. A larger cache on this connection (negative =
    // KiB) more than halves the ingest cost once the tables outgrow it.
    const cacheKiB = (opts.cacheMiB ?? Number(process.env.APIARY_ANALYTICS_CACHE_MIB ?? 64)) * 1024;
    const current = db.pragma('cache_size', { simple: true }) as number;
    if (cacheKiB > 0 && (current >= 0 || -current < cacheKiB)) db.pragma(`cache_size = -${cacheKiB}`);
  }

  write(agg: BatchAggregate): void {
    const s = (this.writes ??= new WriteStatements(this.db));
    // Day rows are folded from whole hours once the stream has moved past them (one INSERT..SELECT
    // per hour instead of a day upsert per batch and key, which was a third of the ingest cost).
    // Increments for hours already folded (late events) go to both tables.
    let minHour = Infinity;
    let maxHour = -Infinity;
    for (const inc of agg.hourly.values()) {
      if (inc.hour < minHour) minHour = inc.hour;
      if (inc.hour > maxHour) maxHour = inc.hour;
    }
    if (minHour === Infinity) return this.writeRest(s, agg);
    let foldedUntil = this.dayRollupUntilHour();
    if (foldedUntil === null) {
      foldedUntil = minHour;
      s.setDayUntil.run(foldedUntil);
    }
    for (const inc of agg.hourly.values()) {
      s.hours.add(inc.dim, inc.hour, inc.node, inc.potType, inc.key, inc.count);
      if (inc.hour < foldedUntil) {
        const day = Math.floor(inc.hour / 24);
        s.day.run(inc.dim, day, inc.node, inc.potType, inc.key, inc.count);
        this.daySummaries.late(inc.dim, day, inc.key, inc.count);
        this.hourSummaries.late(inc.dim, inc.hour, inc.key, inc.count);
      }
    }
    s.hours.flush();
    // Hours before the batch's newest one are complete, bar late events; never fold past the clock
    // (a node with a clock in the future must not close hours that are still filling).
    const foldTo = Math.min(maxHour, Math.floor(Date.now() / HOUR_MS));
    if (foldTo > foldedUntil) {
      for (const dim of ROLLED_DIM_IDS) s.compact.run(dim, foldedUntil, foldTo);
      s.setDayUntil.run(foldTo);
      foldedUntil = foldTo;
    }
    // Hour summaries are small (one hour's rows of one dim): the new hours' are built right away, up
    // to a time budget (a backlog, e.g. a first start on old data, is worked off over later writes).
    this.hourSummaries.catchUp(foldedUntil, 20);
    this.daySummaries.step(foldedUntil);
    this.writeRest(s, agg);
  }

  /**
   * Builds every summary the folded buckets still lack, at once (the writer builds a few per write);
   * for tools and benches that fill the rollups by other means. Returns the (bucket, dim) count built.
   */
  summariseFolded(granularity: 'hour' | 'day'): number {
    const folded = this.dayRollupUntilHour();
    if (folded === null) return 0;
    const summaries = granularity === 'hour' ? this.hourSummaries : this.daySummaries;
    summaries.reset();
    let n = 0;
    while (summaries.step(folded)) n++;
    return n;
  }

  ingestedUntil(): number | null {
    const v = this.db.prepare("SELECT value FROM attack_meta WHERE key = 'ingested_until_event_id'").pluck().get() as number | undefined;
    return v ?? null;
  }

  private writeRest(s: WriteStatements, agg: BatchAggregate): void {
    if (agg.lastEventId > 0) s.setIngestedUntil.run(agg.lastEventId);
    for (const m of agg.minutes.values()) s.minute.run(m.minute, m.node, m.potType, m.count);
    for (const [bucket, count] of agg.ignored) s.ignored.run(bucket, count);
    for (const [asn, org] of agg.asnNames) s.asn.run(asn, org);
    // Attackers and sessions go 64 rows to a statement like the rollups; a session's id (for its
    // steps) comes back through RETURNING, matched by its key.
    for (const a of agg.attackers.values()) {
      const g = a.geo;
      s.attackers.add(
        a.ip, a.firstSeen, a.lastSeen, a.events, g.scope, g.country, g.asn, g.as_org, g.city, g.latitude, g.longitude,
        a.scanner, a.loginsFailed, a.loginsOk, a.commands, a.downloads,
      );
      for (const f of a.facts.values()) s.facts.add(a.ip, f.kind, f.value, f.count, f.first, f.last);
    }
    s.attackers.flush();
    s.facts.flush();
    let pending: SessionDelta[] = [];
    const writeSessions = () => {
      const ids = new Map<string, number>();
      for (const r of s.sessions.flushReturning<{ id: number; node: string; pot_id: string; session: string }>()) {
        ids.set(r.node + KEY_SEPARATOR + r.pot_id + KEY_SEPARATOR + r.session, r.id);
      }
      for (const x of pending) {
        const id = ids.get(x.node + KEY_SEPARATOR + x.potId + KEY_SEPARATOR + x.session)!;
        for (const st of x.steps) s.steps.add(id, st.eventId, st.at, st.kind, st.value, st.detail);
      }
      pending = [];
    };
    for (const x of agg.sessions.values()) {
      if (s.sessions.full) writeSessions();
      s.sessions.add(
        x.node, x.potId, x.potType, x.session, x.srcIp, x.srcPort, x.destIp, x.destPort, x.protocol,
        x.startedAt, x.lastSeen, x.closed ? 1 : 0, x.events, x.loginsFailed, x.username, x.password,
      );
      pending.push(x);
    }
    writeSessions();
    s.steps.flush();
  }

  deleteOlderThan(cutoff: number, maxRows: number): RetentionResult {
    const hour = Math.floor(cutoff / HOUR_MS);
    const day = Math.floor(cutoff / DAY_MS);
    let budget = Math.max(1, maxRows);
    let deleted = 0;
    // Any statement that used its whole budget may have left rows behind.
    let more = false;
    const run = (sql: string, ...params: unknown[]) => {
      if (budget <= 0) {
        more = true;
        return;
      }
      const n = this.db.prepare(sql).run(...params, budget).changes;
      if (n >= budget) more = true;
      budget -= n;
      deleted += n;
    };
    // Chunked with LIMIT via rowid-free key subqueries; each statement walks an index prefix.
    for (const dim of ROLLED_DIM_IDS) {
      run(
        `DELETE FROM attack_rollup_hour WHERE (dim, bucket, node, pot_type, key) IN
           (SELECT dim, bucket, node, pot_type, key FROM attack_rollup_hour WHERE dim = ? AND bucket < ? LIMIT ?)`,
        dim, hour,
      );
      run(
        `DELETE FROM attack_rollup_day WHERE (dim, bucket, node, pot_type, key) IN
           (SELECT dim, bucket, node, pot_type, key FROM attack_rollup_day WHERE dim = ? AND bucket < ? LIMIT ?)`,
        dim, day,
      );
    }
    for (const dim of ROLLED_DIM_IDS) {
      run('DELETE FROM attack_top_hour WHERE (dim, bucket, key) IN (SELECT dim, bucket, key FROM attack_top_hour WHERE dim = ? AND bucket < ? LIMIT ?)', dim, hour);
      run('DELETE FROM attack_top_hour_floor WHERE (dim, bucket) IN (SELECT dim, bucket FROM attack_top_hour_floor WHERE dim = ? AND bucket < ? LIMIT ?)', dim, hour);
      run('DELETE FROM attack_top_day WHERE (dim, bucket, key) IN (SELECT dim, bucket, key FROM attack_top_day WHERE dim = ? AND bucket < ? LIMIT ?)', dim, day);
      run('DELETE FROM attack_top_day_floor WHERE (dim, bucket) IN (SELECT dim, bucket FROM attack_top_day_floor WHERE dim = ? AND bucket < ? LIMIT ?)', dim, day);
    }
    run(
      `DELETE FROM attack_minute WHERE (bucket, node, pot_type) IN
         (SELECT bucket, node, pot_type FROM attack_minute WHERE bucket < ? LIMIT ?)`,
      Math.floor(cutoff / MINUTE_MS),
    );
    run('DELETE FROM attack_ignored WHERE bucket IN (SELECT bucket FROM attack_ignored WHERE bucket < ? LIMIT ?)', hour);
    run(
      `DELETE FROM attacker_facts WHERE (ip, kind, value) IN
         (SELECT ip, kind, value FROM attacker_facts WHERE last_seen < ? LIMIT ?)`,
      cutoff,
    );
    run('DELETE FROM attackers WHERE ip IN (SELECT ip FROM attackers WHERE last_seen < ? LIMIT ?)', cutoff);
    if (budget <= 0) more = true;
    else {
      const limit = Math.max(1, Math.floor(budget / 20));
      const ids = this.db
        .prepare('SELECT id FROM attack_sessions WHERE last_seen < ? ORDER BY last_seen LIMIT ?')
        .pluck()
        .all(cutoff, limit) as number[];
      if (ids.length >= limit) more = true;
      const delSteps = this.db.prepare('DELETE FROM attack_session_steps WHERE session_id = ?');
      const delSession = this.db.prepare('DELETE FROM attack_sessions WHERE id = ?');
      for (const id of ids) {
        deleted += delSteps.run(id).changes + delSession.run(id).changes;
      }
    }
    return { deleted, done: !more };
  }
}

/**
 * The SQLite store behind the asynchronous write interface (tools, tests, the contract suite): each
 * write is its own transaction on the connection. The events writer thread does not use this; it
 * calls SqliteAttackStore.write() synchronously inside each batch's transaction.
 */
export class SqliteAttackWriteStore implements AttackWriteStore {
  private readonly apply: (agg: BatchAggregate) => void;

  constructor(
    db: Database.Database,
    readonly store: SqliteAttackStore = new SqliteAttackStore(db),
  ) {
    this.apply = db.transaction((agg: BatchAggregate) => store.write(agg));
  }

  async write(agg: BatchAggregate): Promise<void> {
    this.apply(agg);
  }

  async ingestedUntil(): Promise<number | null> {
    return this.store.ingestedUntil();
  }

  async deleteOlderThan(cutoff: number, maxRows: number): Promise<RetentionResult> {
    return this.store.deleteOlderThan(cutoff, maxRows);
  }
}
