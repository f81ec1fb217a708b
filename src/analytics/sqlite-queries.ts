// Read side of the SQLite AttackStore. Every answer comes from the rollup, attacker and session
// tables (never from a scan of events), with windows widened to whole buckets: hour buckets for
// top-N (day rows cover the whole days inside a long window), the requested bucket for timelines.
import type Database from 'better-sqlite3';
import {
  DEFAULT_BRUTEFORCE_MIN_FAILURES,
  dimensionSource,
  FACT,
  HOUR_MS,
  type Dimension,
  type Tag,
} from './dimensions.js';
import {
  attackerProfile,
  intelIpRow,
  sessionRow,
  SESSION_COLUMNS,
  timelineRange,
  timelineResult,
  type AttackerDbRow,
  type SessionDbRow,
} from './query-results.js';
import { hourlyKeyCounts, hourlyTotals, topQuery } from './sqlite-top-query.js';
import { windowParts } from './windows.js';
import type {
  AttackerProfile,
  FactRow,
  IndicatorRow,
  IntelIpQuery,
  IntelIpRow,
  SessionListQuery,
  SessionRow,
  SessionStepRow,
  TimelineQuery,
  TimelineResult,
  TopQuery,
  TopResult,
} from './store.js';

export { AnalyticsQueryError, MAX_TIMELINE_BUCKETS } from './query-results.js';
import { AnalyticsQueryError } from './query-results.js';

export class SqliteAttackQueries {
  private readonly statements = new Map<string, Database.Statement>();
  protected readonly bruteforceMin: number;

  constructor(
    protected readonly db: Database.Database,
    opts: { bruteforceMinFailures?: number } = {},
  ) {
    this.bruteforceMin = Math.max(1, opts.bruteforceMinFailures ?? DEFAULT_BRUTEFORCE_MIN_FAILURES);
  }

  prepared(key: string, sql: () => string): Database.Statement {
    let s = this.statements.get(key);
    if (s === undefined) {
      s = this.db.prepare(sql());
      this.statements.set(key, s);
    }
    return s;
  }

  /** Hour buckets below this are also in the day table (attack_meta), or null before any ingest. */
  dayRollupUntilHour(): number | null {
    const v = this.prepared('meta:day', () => "SELECT value FROM attack_meta WHERE key = 'day_rollup_until_hour'").pluck().get() as number | undefined;
    return v ?? null;
  }

  private filterSql(q: { node?: string; potType?: string }, params: unknown[]): string {
    let sql = '';
    if (q.node !== undefined) (sql += ' AND node = ?'), params.push(q.node);
    if (q.potType !== undefined) (sql += ' AND pot_type = ?'), params.push(q.potType);
    return sql;
  }

  top(q: TopQuery): TopResult {
    if (q.until <= q.since) throw new AnalyticsQueryError('until must be after since');
    return topQuery(this, q);
  }

  timeline(q: TimelineQuery): TimelineResult {
    const { unit, from, to } = timelineRange(q);
    const params: unknown[] = [];
    let sql: string;
    let shape: string;
    let keys: string[] | null = null;
    if (q.bucket === 'minute') {
      const col = q.by ?? null;
      params.push(from, to);
      const f = this.filterSql(q, params);
      shape = `tl:m:${col}:${f}`;
      sql = `SELECT bucket AS b, ${col ?? 'NULL'} AS k, sum(count) AS c FROM attack_minute
             WHERE bucket >= ? AND bucket < ?${f} GROUP BY b${col ? ', k' : ''} ORDER BY b`;
    } else {
      const { dim, column } = dimensionSource(q.by ?? 'event_type');
      if (q.by !== undefined) {
        keys = this.top({ by: q.by, since: from * unit, until: to * unit, node: q.node, potType: q.potType, limit: q.limit }).items.map((i) => i.key);
      }
      if (q.bucket === 'hour' && q.node === undefined && q.potType === undefined) {
        if (keys !== null && column === 'key') return timelineResult(q, unit, from, to, keys, hourlyKeyCounts(this, dim, from, to, keys));
        if (q.by === undefined) return timelineResult(q, unit, from, to, null, hourlyTotals(this, from, to));
      }
      // Day buckets: folded days from the day table, the rest summed from hour rows.
      const parts: { table: string; from: number; to: number; div: number }[] = [];
      if (q.bucket === 'hour') parts.push({ table: 'attack_rollup_hour', from, to, div: 1 });
      else {
        const folded = Math.floor((this.dayRollupUntilHour() ?? 0) / 24);
        if (from < Math.min(to, folded)) parts.push({ table: 'attack_rollup_day', from, to: Math.min(to, folded), div: 1 });
        const rest = Math.max(from, folded);
        if (rest < to) parts.push({ table: 'attack_rollup_hour', from: rest * 24, to: to * 24, div: 24 });
      }
      const selects = parts.map((p) => {
        params.push(dim, p.from, p.to);
        const f = this.filterSql(q, params);
        let keyFilter = '';
        if (keys !== null) {
          keyFilter = ` AND ${column} IN (SELECT value FROM json_each(?))`;
          params.push(JSON.stringify(keys));
        }
        // A few keys of a long window: their own buckets through key_idx, not the window's every row.
        const from = keys !== null && column === 'key' ? `${p.table} INDEXED BY ${p.table}_key_idx` : p.table;
        return `SELECT bucket / ${p.div} AS b, ${keys === null ? 'NULL' : column} AS k, count AS c FROM ${from}
                WHERE dim = ? AND bucket >= ? AND bucket < ?${f}${keyFilter}`;
      });
      shape = `tl:${parts.map((p) => p.table + p.div).join()}:${column}:${keys !== null}:${q.node !== undefined}:${q.potType !== undefined}`;
      sql = selects.length === 0
        ? 'SELECT 0 AS b, NULL AS k, 0 AS c WHERE 0'
        : `SELECT b, k, sum(c) AS c FROM (${selects.join(' UNION ALL ')}) GROUP BY b, k ORDER BY b`;
    }
    const rows = this.prepared(shape, () => sql).all(...params) as { b: number; k: string | null; c: number }[];
    return timelineResult(q, unit, from, to, keys, rows);
  }

  attacker(ip: string, listLimit: number): AttackerProfile | undefined {
    const a = this.prepared('attacker', () => 'SELECT * FROM attackers WHERE ip = ?').get(ip) as AttackerDbRow | undefined;
    if (a === undefined) return undefined;
    const facts = this.prepared(
      'facts',
      () => 'SELECT value, count, first_seen, last_seen FROM attacker_facts WHERE ip = ? AND kind = ? ORDER BY count DESC, value LIMIT ?',
    );
    const list = (kind: number) => facts.all(ip, kind, listLimit) as FactRow[];
    const targets = facts.all(ip, FACT.target, 100_000) as FactRow[];
    const services = facts.all(ip, FACT.service, 100_000) as FactRow[];
    const sessions = this.prepared(
      'attacker:sessions',
      () => `SELECT ${SESSION_COLUMNS} FROM attack_sessions WHERE src_ip = ? ORDER BY started_at DESC, id DESC LIMIT ?`,
    ).all(ip, listLimit) as SessionDbRow[];
    return attackerProfile(
      {
        attacker: a,
        targets,
        services,
        credentials: list(FACT.credential),
        commands: list(FACT.command),
        urls: list(FACT.url),
        hashes: list(FACT.hash),
        sessions,
      },
      listLimit,
      this.bruteforceMin,
    );
  }

  sessions(q: SessionListQuery): SessionRow[] {
    const conds: string[] = [];
    const params: unknown[] = [];
    if (q.since !== undefined) (conds.push('started_at >= ?'), params.push(q.since));
    if (q.until !== undefined) (conds.push('started_at < ?'), params.push(q.until));
    if (q.srcIp !== undefined) (conds.push('src_ip = ?'), params.push(q.srcIp));
    if (q.node !== undefined) (conds.push('node = ?'), params.push(q.node));
    if (q.after !== undefined) {
      conds.push('(started_at < ? OR (started_at = ? AND id < ?))');
      params.push(q.after.startedAt, q.after.startedAt, q.after.id);
    }
    params.push(q.limit);
    const where = conds.length === 0 ? '' : 'WHERE ' + conds.join(' AND ');
    return (
      this.prepared('sessions:' + where, () => `SELECT ${SESSION_COLUMNS} FROM attack_sessions ${where} ORDER BY started_at DESC, id DESC LIMIT ?`).all(
        ...params,
      ) as SessionDbRow[]
    ).map(sessionRow);
  }

  session(id: number): (SessionRow & { steps: SessionStepRow[] }) | undefined {
    const row = this.prepared('session', () => `SELECT ${SESSION_COLUMNS} FROM attack_sessions WHERE id = ?`).get(id) as SessionDbRow | undefined;
    if (row === undefined) return undefined;
    const steps = this.prepared(
      'session:steps',
      () => 'SELECT event_id, at, kind, value, detail FROM attack_session_steps WHERE session_id = ? ORDER BY event_id LIMIT 10000',
    ).all(id) as SessionStepRow[];
    return { ...sessionRow(row), steps };
  }

  private tagCondition(tag: Tag | undefined, params: unknown[]): string {
    switch (tag) {
      case undefined:
        return '';
      case 'scanner':
        return ' AND scanner IS NOT NULL';
      case 'bruteforce':
        params.push(this.bruteforceMin);
        return ' AND logins_failed >= ?';
      case 'logged_in':
        return ' AND logins_ok > 0';
      case 'downloaded':
        return ' AND downloads > 0';
      case 'ran_commands':
        return ' AND commands > 0';
    }
  }

  intelIps(q: IntelIpQuery): IntelIpRow[] {
    const params: unknown[] = [q.since, q.minCount];
    const tag = this.tagCondition(q.tag, params);
    params.push(q.limit);
    const top = (kind: number) =>
      `(SELECT value FROM attacker_facts f WHERE f.ip = a.ip AND f.kind = ${kind} ORDER BY f.count DESC, f.value LIMIT 1)`;
    const rows = this.prepared(
      'intel:' + (q.tag ?? ''),
      () => `SELECT a.*, ${top(FACT.service)} AS service, ${top(FACT.target)} AS target
             FROM attackers a WHERE last_seen >= ? AND events >= ?${tag} ORDER BY events DESC, ip LIMIT ?`,
    ).all(...params) as (AttackerDbRow & { service: string | null; target: string | null })[];
    return rows.map((r) => intelIpRow(r, this.bruteforceMin));
  }

  indicators(kind: 'url' | 'hash', since: number, until: number, limit: number): IndicatorRow[] {
    const dim = dimensionSource(kind as Dimension).dim;
    const parts = windowParts(since, until, this.dayRollupUntilHour());
    const params: unknown[] = [];
    const selects = parts.map((p) => {
      params.push(dim, p.from, p.to);
      return `SELECT +key AS key, count, bucket * ${p.unit} AS t0, (bucket + 1) * ${p.unit} AS t1 FROM ${p.table} WHERE dim = ? AND bucket >= ? AND bucket < ?`;
    });
    params.push(limit);
    return this.prepared(`ind:${parts.map((p) => p.table).join()}`, () =>
      `SELECT key AS value, sum(count) AS count, min(t0) AS first_seen, max(t1) - 1 AS last_seen FROM (${selects.join(' UNION ALL ')})
       GROUP BY key ORDER BY count DESC, key LIMIT ?`,
    ).all(...params) as IndicatorRow[];
  }

  ignoredCount(since: number, until: number): number {
    return this.prepared('ignored', () => 'SELECT coalesce(sum(count), 0) FROM attack_ignored WHERE bucket >= ? AND bucket < ?')
      .pluck()
      .get(Math.floor(since / HOUR_MS), Math.ceil(until / HOUR_MS)) as number;
  }
}
