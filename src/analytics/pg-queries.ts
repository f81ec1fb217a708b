// Read side of the PostgreSQL AttackStore: the same answers as sqlite-queries.ts from the same
// tables (drizzle/pg), checked by the same contract suite (test/analytics/store-contract.test.ts).
// Top-N is one GROUP BY over the window's rollup rows (hour edges and the whole days between, like
// SQLite), read through the primary key (dim, bucket, ...): PostgreSQL hashes a window's rows in
// parallel, so the per-bucket top-K summaries SQLite keeps (attack_top_hour/day) are not built here
// and every answer is exact. Text is ordered COLLATE "C" (byte order, as SQLite's BINARY), so ties
// break the same way whatever the database's collation.
import type pg from 'pg';
import type { PgDatabaseHandle } from '../db/index.js';
import { DEFAULT_BRUTEFORCE_MIN_FAILURES, dimensionSource, FACT, HOUR_MS, parseCredentialKey, type Dimension, type Tag } from './dimensions.js';
import {
  AnalyticsQueryError,
  attackerProfile,
  intelIpRow,
  sessionRow,
  SESSION_COLUMNS,
  timelineRange,
  timelineResult,
  type AttackerDbRow,
  type SessionDbRow,
} from './query-results.js';
import type { AttackReader } from './reader.js';
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
  TopItem,
  TopQuery,
  TopResult,
} from './store.js';
import { windowParts } from './windows.js';

/** Builds a parameter list: `p(v)` appends v and returns its placeholder. */
function params(): { values: unknown[]; p: (v: unknown) => string } {
  const values: unknown[] = [];
  return { values, p: (v) => `$${values.push(v)}` };
}

export class PgAttackQueries implements AttackReader {
  protected readonly pool: pg.Pool;
  protected readonly bruteforceMin: number;

  constructor(database: PgDatabaseHandle, opts: { bruteforceMinFailures?: number } = {}) {
    this.pool = database.pool;
    this.bruteforceMin = Math.max(1, opts.bruteforceMinFailures ?? DEFAULT_BRUTEFORCE_MIN_FAILURES);
  }

  private async rows<T>(sql: string, values: unknown[]): Promise<T[]> {
    return (await this.pool.query(sql, values)).rows as T[];
  }

  /** Hour buckets below this are also in the day table, or null before any ingest. */
  async dayRollupUntilHour(): Promise<number | null> {
    const r = await this.rows<{ value: number }>("SELECT value FROM attack_meta WHERE key = 'day_rollup_until_hour'", []);
    return r[0]?.value ?? null;
  }

  private filter(q: { node?: string; potType?: string }, p: (v: unknown) => string): string {
    let sql = '';
    if (q.node !== undefined) sql += ` AND node = ${p(q.node)}`;
    if (q.potType !== undefined) sql += ` AND pot_type = ${p(q.potType)}`;
    return sql;
  }

  async top(q: TopQuery): Promise<TopResult> {
    if (q.until <= q.since) throw new AnalyticsQueryError('until must be after since');
    const { dim, column } = dimensionSource(q.by);
    const parts = windowParts(q.since, q.until, await this.dayRollupUntilHour());
    const { values, p } = params();
    const selects = parts.map(
      (r) => `SELECT ${column} AS k, count AS c FROM ${r.table} WHERE dim = ${p(dim)} AND bucket >= ${p(r.from)} AND bucket < ${p(r.to)}${this.filter(q, p)}`,
    );
    const rows = await this.rows<{ k: string; c: number }>(
      `SELECT k, sum(c)::bigint AS c FROM (${selects.join(' UNION ALL ')}) t GROUP BY k ORDER BY c DESC, k COLLATE "C" LIMIT ${p(q.limit)}`,
      values,
    );
    const items: TopItem[] = rows.map((r) => ({ key: r.k, count: r.c }));
    if (q.by === 'asn' && items.length > 0) {
      const orgs = await this.rows<{ asn: number; org: string }>('SELECT asn, org FROM attack_asn WHERE asn = ANY($1::bigint[])', [
        items.map((i) => Number(i.key)).filter(Number.isSafeInteger),
      ]);
      const byAsn = new Map(orgs.map((o) => [o.asn, o.org]));
      for (const it of items) it.as_org = byAsn.get(Number(it.key)) ?? null;
    } else if (q.by === 'credential') {
      for (const it of items) Object.assign(it, parseCredentialKey(it.key));
    }
    const first = parts[0]!;
    const last = parts.at(-1)!;
    return { by: q.by, since: first.from * first.unit, until: last.to * last.unit, exact: true, max_undercount: 0, items };
  }

  async timeline(q: TimelineQuery): Promise<TimelineResult> {
    const { unit, from, to } = timelineRange(q);
    const { values, p } = params();
    if (q.bucket === 'minute') {
      const col = q.by ?? null;
      const sql = `SELECT bucket AS b, ${col ?? 'NULL::text'} AS k, sum(count)::bigint AS c FROM attack_minute
        WHERE bucket >= ${p(from)} AND bucket < ${p(to)}${this.filter(q, p)}
        GROUP BY bucket${col ? `, ${col}` : ''} ORDER BY bucket${col ? `, ${col} COLLATE "C"` : ''}`;
      return timelineResult(q, unit, from, to, null, await this.rows(sql, values));
    }
    const { dim, column } = dimensionSource(q.by ?? 'event_type');
    let keys: string[] | null = null;
    if (q.by !== undefined) {
      keys = (await this.top({ by: q.by, since: from * unit, until: to * unit, node: q.node, potType: q.potType, limit: q.limit })).items.map((i) => i.key);
      if (keys.length === 0) return timelineResult(q, unit, from, to, keys, []);
    }
    // Day buckets: folded days from the day table, the rest summed from hour rows.
    const ranges: { table: string; from: number; to: number; div: number }[] = [];
    if (q.bucket === 'hour') ranges.push({ table: 'attack_rollup_hour', from, to, div: 1 });
    else {
      const folded = Math.floor(((await this.dayRollupUntilHour()) ?? 0) / 24);
      if (from < Math.min(to, folded)) ranges.push({ table: 'attack_rollup_day', from, to: Math.min(to, folded), div: 1 });
      const rest = Math.max(from, folded);
      if (rest < to) ranges.push({ table: 'attack_rollup_hour', from: rest * 24, to: to * 24, div: 24 });
    }
    if (ranges.length === 0) return timelineResult(q, unit, from, to, keys, []);
    const selects = ranges.map((r) => {
      const keyFilter = keys === null ? '' : ` AND ${column} = ANY(${p(keys)}::text[])`;
      return `SELECT bucket / ${r.div} AS b, ${keys === null ? 'NULL::text' : column} AS k, count AS c FROM ${r.table}
              WHERE dim = ${p(dim)} AND bucket >= ${p(r.from)} AND bucket < ${p(r.to)}${this.filter(q, p)}${keyFilter}`;
    });
    const rows = await this.rows<{ b: number; k: string | null; c: number }>(
      `SELECT b, k, sum(c)::bigint AS c FROM (${selects.join(' UNION ALL ')}) t GROUP BY b, k ORDER BY b, k COLLATE "C"`,
      values,
    );
    return timelineResult(q, unit, from, to, keys, rows);
  }

  async attacker(ip: string, listLimit: number): Promise<AttackerProfile | undefined> {
    const facts = (kind: number, limit: number) =>
      this.rows<FactRow>(
        'SELECT value, count, first_seen, last_seen FROM attacker_facts WHERE ip = $1 AND kind = $2 ORDER BY count DESC, value COLLATE "C" LIMIT $3',
        [ip, kind, limit],
      );
    const [attacker, targets, services, credentials, commands, urls, hashes, sessions] = await Promise.all([
      this.rows<AttackerDbRow>('SELECT * FROM attackers WHERE ip = $1', [ip]),
      facts(FACT.target, 100_000),
      facts(FACT.service, 100_000),
      facts(FACT.credential, listLimit),
      facts(FACT.command, listLimit),
      facts(FACT.url, listLimit),
      facts(FACT.hash, listLimit),
      this.rows<SessionDbRow>(`SELECT ${SESSION_COLUMNS} FROM attack_sessions WHERE src_ip = $1 ORDER BY started_at DESC, id DESC LIMIT $2`, [ip, listLimit]),
    ]);
    if (attacker[0] === undefined) return undefined;
    return attackerProfile({ attacker: attacker[0], targets, services, credentials, commands, urls, hashes, sessions }, listLimit, this.bruteforceMin);
  }

  async sessions(q: SessionListQuery): Promise<SessionRow[]> {
    const { values, p } = params();
    const conds: string[] = [];
    if (q.since !== undefined) conds.push(`started_at >= ${p(q.since)}`);
    if (q.until !== undefined) conds.push(`started_at < ${p(q.until)}`);
    if (q.srcIp !== undefined) conds.push(`src_ip = ${p(q.srcIp)}`);
    if (q.node !== undefined) conds.push(`node = ${p(q.node)}`);
    if (q.after !== undefined) {
      const at = p(q.after.startedAt);
      conds.push(`(started_at < ${at} OR (started_at = ${at} AND id < ${p(q.after.id)}))`);
    }
    const where = conds.length === 0 ? '' : 'WHERE ' + conds.join(' AND ');
    const rows = await this.rows<SessionDbRow>(`SELECT ${SESSION_COLUMNS} FROM attack_sessions ${where} ORDER BY started_at DESC, id DESC LIMIT ${p(q.limit)}`, values);
    return rows.map(sessionRow);
  }

  async session(id: number): Promise<(SessionRow & { steps: SessionStepRow[] }) | undefined> {
    const [rows, steps] = await Promise.all([
      this.rows<SessionDbRow>(`SELECT ${SESSION_COLUMNS} FROM attack_sessions WHERE id = $1`, [id]),
      this.rows<SessionStepRow>('SELECT event_id, at, kind, value, detail FROM attack_session_steps WHERE session_id = $1 ORDER BY event_id LIMIT 10000', [id]),
    ]);
    if (rows[0] === undefined) return undefined;
    return { ...sessionRow(rows[0]), steps };
  }

  private tagCondition(tag: Tag | undefined, p: (v: unknown) => string): string {
    switch (tag) {
      case undefined:
        return '';
      case 'scanner':
        return ' AND scanner IS NOT NULL';
      case 'bruteforce':
        return ` AND logins_failed >= ${p(this.bruteforceMin)}`;
      case 'logged_in':
        return ' AND logins_ok > 0';
      case 'downloaded':
        return ' AND downloads > 0';
      case 'ran_commands':
        return ' AND commands > 0';
    }
  }

  async intelIps(q: IntelIpQuery): Promise<IntelIpRow[]> {
    const { values, p } = params();
    const top = (kind: number) =>
      `(SELECT value FROM attacker_facts f WHERE f.ip = a.ip AND f.kind = ${kind} ORDER BY f.count DESC, f.value COLLATE "C" LIMIT 1)`;
    const rows = await this.rows<AttackerDbRow & { service: string | null; target: string | null }>(
      `SELECT a.*, ${top(FACT.service)} AS service, ${top(FACT.target)} AS target FROM attackers a
       WHERE last_seen >= ${p(q.since)} AND events >= ${p(q.minCount)}${this.tagCondition(q.tag, p)}
       ORDER BY events DESC, ip COLLATE "C" LIMIT ${p(q.limit)}`,
      values,
    );
    return rows.map((r) => intelIpRow(r, this.bruteforceMin));
  }

  async indicators(kind: 'url' | 'hash', since: number, until: number, limit: number): Promise<IndicatorRow[]> {
    const dim = dimensionSource(kind as Dimension).dim;
    const parts = windowParts(since, until, await this.dayRollupUntilHour());
    const { values, p } = params();
    const selects = parts.map(
      (r) => `SELECT key, count, bucket * ${r.unit} AS t0, (bucket + 1) * ${r.unit} AS t1 FROM ${r.table}
              WHERE dim = ${p(dim)} AND bucket >= ${p(r.from)} AND bucket < ${p(r.to)}`,
    );
    return this.rows<IndicatorRow>(
      `SELECT key AS value, sum(count)::bigint AS count, min(t0) AS first_seen, max(t1) - 1 AS last_seen FROM (${selects.join(' UNION ALL ')}) t
       GROUP BY key ORDER BY sum(count) DESC, key COLLATE "C" LIMIT ${p(limit)}`,
      values,
    );
  }

  async ignoredCount(since: number, until: number): Promise<number> {
    const r = await this.rows<{ n: number }>('SELECT coalesce(sum(count), 0)::bigint AS n FROM attack_ignored WHERE bucket >= $1 AND bucket < $2', [
      Math.floor(since / HOUR_MS),
      Math.ceil(until / HOUR_MS),
    ]);
    return r[0]!.n;
  }
}
