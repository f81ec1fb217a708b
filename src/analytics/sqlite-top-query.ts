// Top-N of the SQLite AttackStore. An unfiltered top-N of a dimension with its own rollup keys
// (src_ip, credential, command...) is answered in two short steps instead of one GROUP BY over every
// (bucket, node, pot type, key) row of the window:
//   1. candidates: the per-hour and per-day top-K summaries (sqlite-top-summaries.ts) of the
//      window's summarised buckets, plus the rollup rows of the buckets not summarised yet (the
//      current hour), merged: at most K rows per bucket. A merged count is never above the true
//      count, and at most F (the sum of the summarised buckets' floors) below it.
//   2. exact counts of the best 2 x limit + 10 candidates, read through the rollups' (dim, key,
//      bucket) index: a few rows per key and bucket.
// The listed items are the best candidates by exact count. A key that is not a candidate has a true
// count of at most U = (best merged count outside the candidates) + F; the answer is exact when U
// is below the last listed count, and otherwise states max_undercount = U - last listed count.
// Filtered queries (node, pot_type) and node / pot_type dimensions group the rollup rows, exactly.
import type Database from 'better-sqlite3';
import { dimensionSource, parseCredentialKey } from './dimensions.js';
import { DAY_SUMMARIES, HOUR_SUMMARIES, summarisedUntil, type SummaryGranularity } from './sqlite-top-summaries.js';
import type { TopItem, TopQuery, TopResult } from './store.js';
import { windowParts } from './windows.js';

/** Most candidates whose exact counts are read; a larger limit is answered from the summaries alone. */
const MAX_CANDIDATES = 2000;

export interface TopQueryContext {
  prepared(key: string, sql: () => string): Database.Statement;
  dayRollupUntilHour(): number | null;
}

interface Source {
  table: string;
  from: number;
  to: number;
  summary: SummaryGranularity | null;
}

function progressOf(c: TopQueryContext, g: SummaryGranularity): number | null {
  const v = c.prepared('meta:' + g.progressKey, () => 'SELECT value FROM attack_meta WHERE key = ?').pluck().get(g.progressKey) as number | undefined;
  return v ?? null;
}

/**
 * Where each bucket range of the window is read: a summary where built, else the rollup. Days not
 * summarised yet are read as their hours (whose summaries are built within the hour).
 */
function sources(c: TopQueryContext, dim: number, parts: ReturnType<typeof windowParts>): Source[] {
  const out: Source[] = [];
  const hourUntil = summarisedUntil(progressOf(c, HOUR_SUMMARIES), dim);
  const hours = (from: number, to: number) => {
    const until = Math.max(from, Math.min(to, hourUntil));
    if (until > from) out.push({ table: HOUR_SUMMARIES.table, from, to: until, summary: HOUR_SUMMARIES });
    if (to > until) out.push({ table: 'attack_rollup_hour', from: until, to, summary: null });
  };
  for (const p of parts) {
    if (p.table === 'attack_rollup_hour') {
      hours(p.from, p.to);
      continue;
    }
    const until = Math.max(p.from, Math.min(p.to, summarisedUntil(progressOf(c, DAY_SUMMARIES), dim)));
    if (until > p.from) out.push({ table: DAY_SUMMARIES.table, from: p.from, to: until, summary: DAY_SUMMARIES });
    if (p.to > until) hours(until * 24, p.to * 24);
  }
  return out;
}

export function topQuery(c: TopQueryContext, q: TopQuery): TopResult {
  const { dim, column } = dimensionSource(q.by);
  const parts = windowParts(q.since, q.until, c.dayRollupUntilHour());
  const window = { since: parts[0]!.from * parts[0]!.unit, until: parts.at(-1)!.to * parts.at(-1)!.unit };
  const summarisable = column === 'key' && q.node === undefined && q.potType === undefined;
  const srcs: Source[] = summarisable ? sources(c, dim, parts) : parts.map((p) => ({ table: p.table, from: p.from, to: p.to, summary: null }));

  const params: unknown[] = [];
  const selects = srcs.map((s) => {
    params.push(dim, s.from, s.to);
    let f = '';
    if (s.summary === null) {
      if (q.node !== undefined) (f += ' AND node = ?'), params.push(q.node);
      if (q.potType !== undefined) (f += ' AND pot_type = ?'), params.push(q.potType);
    }
    // +column: a flattened GROUP BY on key would otherwise walk key_idx over every bucket of the dim.
    return `SELECT +${column} AS k, count AS c FROM ${s.table} WHERE dim = ? AND bucket >= ? AND bucket < ?${f}`;
  });
  const summarised = srcs.filter((s) => s.summary !== null);
  let floor = 0;
  for (const s of summarised) {
    floor += c.prepared('floor:' + s.table, () => `SELECT coalesce(sum(floor), 0) FROM ${s.table}_floor WHERE dim = ? AND bucket >= ? AND bucket < ?`)
      .pluck()
      .get(dim, s.from, s.to) as number;
  }
  const candidates = floor === 0 ? q.limit : Math.min(MAX_CANDIDATES, 2 * q.limit + 10);
  // One more than the candidates: the best merged count outside them bounds every other key.
  params.push(Math.max(q.limit, candidates) + 1);
  const shape = `top:${column}:${srcs.map((s) => s.table).join()}:${q.node !== undefined}:${q.potType !== undefined}`;
  const merged = c.prepared(shape, () =>
    `SELECT k, sum(c) AS c FROM (${selects.join(' UNION ALL ')}) GROUP BY k ORDER BY c DESC, k LIMIT ?`,
  ).all(...params) as { k: string; c: number }[];

  let rows: { k: string; c: number }[];
  let maxUndercount = 0;
  if (floor === 0) rows = merged.slice(0, q.limit);
  else if (candidates <= q.limit) {
    // Too many keys asked for to read each one's exact count: the summaries' own bound.
    rows = merged.slice(0, q.limit);
    maxUndercount = floor;
  } else {
    const outside = merged.length > candidates ? merged[candidates]!.c : 0;
    const exact = exactCounts(c, dim, parts, merged.slice(0, candidates).map((r) => r.k));
    rows = exact.slice(0, q.limit);
    const last = rows.length === q.limit ? rows.at(-1)!.c : 0;
    maxUndercount = Math.max(0, outside + floor - last);
    // Ties: a key outside the candidates may have exactly the last count (and sort before it).
    if (maxUndercount === 0 && outside + floor === last) return answer(c, q, window, rows, false, 0);
  }
  return answer(c, q, window, rows, maxUndercount === 0, maxUndercount);
}

/** Exact window counts of `keys`, best first (count, then key). */
function exactCounts(c: TopQueryContext, dim: number, parts: ReturnType<typeof windowParts>, keys: string[]): { k: string; c: number }[] {
  if (keys.length === 0) return [];
  const params: unknown[] = [];
  const json = JSON.stringify(keys);
  const selects = parts.map((p) => {
    params.push(dim, json, p.from, p.to);
    return `SELECT key AS k, count AS c FROM ${p.table} INDEXED BY ${p.table}_key_idx
            WHERE dim = ? AND key IN (SELECT value FROM json_each(?)) AND bucket >= ? AND bucket < ?`;
  });
  return c.prepared(`top:exact:${parts.map((p) => p.table).join()}`, () =>
    `SELECT k, sum(c) AS c FROM (${selects.join(' UNION ALL ')}) GROUP BY k ORDER BY c DESC, k`,
  ).all(...params) as { k: string; c: number }[];
}

function answer(
  c: TopQueryContext,
  q: TopQuery,
  window: { since: number; until: number },
  rows: { k: string; c: number }[],
  exact: boolean,
  maxUndercount: number,
): TopResult {
  const items: TopItem[] = rows.map((r) => ({ key: r.k, count: r.c }));
  if (q.by === 'asn') {
    const org = c.prepared('asn', () => 'SELECT org FROM attack_asn WHERE asn = ?').pluck();
    for (const it of items) it.as_org = (org.get(Number(it.key)) as string | undefined) ?? null;
  } else if (q.by === 'credential') {
    for (const it of items) Object.assign(it, parseCredentialKey(it.key));
  }
  return { by: q.by, since: window.since, until: window.until, exact, max_undercount: maxUndercount, items };
}
