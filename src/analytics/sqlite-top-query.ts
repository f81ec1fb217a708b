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
    // s: summary rows, counted per key to know which keys every summary holds.
    return `SELECT +${column} AS k, count AS c, ${s.summary === null ? 0 : 1} AS s FROM ${s.table} WHERE dim = ? AND bucket >= ? AND bucket < ?${f}`;
  });
  const summarised = srcs.filter((s) => s.summary !== null);
  let floor = 0;
  // Summarised buckets with any key: a key held by all of them has its exact count in the merge.
  let buckets = 0;
  for (const s of summarised) {
    const f = c.prepared('floor:' + s.table, () =>
      `SELECT coalesce(sum(floor), 0) AS floor, count(*) AS buckets FROM ${s.table}_floor WHERE dim = ? AND bucket >= ? AND bucket < ? AND n > 0`,
    ).get(dim, s.from, s.to) as { floor: number; buckets: number };
    floor += f.floor;
    buckets += f.buckets;
  }
  const candidates = floor === 0 ? q.limit : Math.min(MAX_CANDIDATES, 2 * q.limit + 10);
  // One more than the candidates: the best merged count outside them bounds every other key.
  params.push(Math.max(q.limit, candidates) + 1);
  const shape = `top:${column}:${srcs.map((s) => s.table).join()}:${q.node !== undefined}:${q.potType !== undefined}`;
  const merged = c.prepared(shape, () =>
    `SELECT k, sum(c) AS c, sum(s) AS s FROM (${selects.join(' UNION ALL ')}) GROUP BY k ORDER BY c DESC, k LIMIT ?`,
  ).all(...params) as { k: string; c: number; s: number }[];

  let rows: { k: string; c: number }[];
  let maxUndercount = 0;
  if (floor === 0) rows = merged.slice(0, q.limit);
  else if (candidates <= q.limit) {
    // Too many keys asked for to read each one's exact count: the summaries' own bound.
    rows = merged.slice(0, q.limit);
    maxUndercount = floor;
  } else {
    const outside = merged.length > candidates ? merged[candidates]!.c : 0;
    // A kept key's summary count is its exact bucket count: only the buckets whose summary left a
    // candidate out are read from the rollups, and only for the candidates missing somewhere.
    const held = merged.slice(0, candidates);
    const missing = missedCounts(c, dim, summarised, held.filter((r) => r.s < buckets).map((r) => r.k));
    const exact = held.map((r) => ({ k: r.k, c: r.c + (missing.get(r.k) ?? 0) }));
    exact.sort((a, b) => b.c - a.c || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
    rows = exact.slice(0, q.limit);
    const last = rows.length === q.limit ? rows.at(-1)!.c : 0;
    maxUndercount = Math.max(0, outside + floor - last);
    // Ties: a key outside the candidates may have exactly the last count (and sort before it).
    if (maxUndercount === 0 && outside + floor === last) return answer(c, q, window, rows, false, 0);
  }
  return answer(c, q, window, rows, maxUndercount === 0, maxUndercount);
}

/**
 * What the summaries of buckets [from, to) say about `keys`: the (key, bucket) counts they hold, and
 * per key the runs of buckets [start, end) whose summary left keys out (floor > 0) and does not
 * hold it, the only buckets where the key's count must be read from the rollup. One summary seek
 * per bucket and key; the rollup is then read per run through its (dim, key, bucket) index.
 */
function summaryLookup(c: TopQueryContext, g: SummaryGranularity, dim: number, from: number, to: number, keys: string[]) {
  const partial = c.prepared('top:partial:' + g.table, () =>
    `SELECT bucket FROM ${g.table}_floor WHERE dim = ? AND bucket >= ? AND bucket < ? AND floor > 0 ORDER BY bucket`,
  ).pluck().all(dim, from, to) as number[];
  const held = c.prepared('top:held:' + g.table, () =>
    `SELECT key AS k, bucket AS b, count AS c FROM ${g.table} WHERE dim = ? AND bucket >= ? AND bucket < ? AND key IN (SELECT value FROM json_each(?))`,
  ).all(dim, from, to, JSON.stringify(keys)) as { k: string; b: number; c: number }[];
  const heldBy = new Map<string, Set<number>>();
  for (const r of held) {
    let set = heldBy.get(r.k);
    if (set === undefined) heldBy.set(r.k, (set = new Set()));
    set.add(r.b);
  }
  const misses = new Map<string, [number, number][]>();
  for (const key of keys) {
    const kept = heldBy.get(key);
    const runs: [number, number][] = [];
    // Partial buckets that miss the key, in a row, make one run unless a bucket between them holds
    // the key (the others between are complete summaries without it: no rows of it there).
    const holdsBetween = (lo: number, hi: number) => {
      if (kept !== undefined) for (const b of kept) if (b > lo && b < hi) return true;
      return false;
    };
    for (let i = 0; i < partial.length; ) {
      if (kept?.has(partial[i]!)) {
        i++;
        continue;
      }
      let j = i;
      while (j + 1 < partial.length && !kept?.has(partial[j + 1]!) && !holdsBetween(partial[j]!, partial[j + 1]!)) j++;
      runs.push([partial[i]!, partial[j]! + 1]);
      i = j + 1;
    }
    if (runs.length > 0) misses.set(key, runs);
  }
  return { held, misses };
}

/** Per key, the sum of its rollup counts in the summarised buckets whose summary does not hold it. */
function missedCounts(c: TopQueryContext, dim: number, summarised: Source[], keys: string[]): Map<string, number> {
  const out = new Map<string, number>();
  if (keys.length === 0) return out;
  for (const s of summarised) {
    const g = s.summary!;
    const range = c.prepared('top:range:' + g.source, () =>
      `SELECT coalesce(sum(count), 0) FROM ${g.source} INDEXED BY ${g.source}_key_idx WHERE dim = ? AND key = ? AND bucket >= ? AND bucket < ?`,
    ).pluck();
    for (const [key, runs] of summaryLookup(c, g, dim, s.from, s.to, keys).misses) {
      let sum = 0;
      for (const [a, b] of runs) sum += range.get(dim, key, a, b) as number;
      if (sum > 0) out.set(key, (out.get(key) ?? 0) + sum);
    }
  }
  return out;
}

/**
 * Hour-bucket counts of a few keys over hours [from, to), unfiltered: the hour summaries' counts
 * where they hold the key (exact), the rollup elsewhere. For timelines split by a dimension.
 */
export function hourlyKeyCounts(c: TopQueryContext, dim: number, from: number, to: number, keys: string[]): { b: number; k: string; c: number }[] {
  if (keys.length === 0) return [];
  const until = Math.max(from, Math.min(to, summarisedUntil(progressOf(c, HOUR_SUMMARIES), dim)));
  const out: { b: number; k: string; c: number }[] = [];
  const perBucket = c.prepared('tl:keyhours', () =>
    `SELECT bucket AS b, key AS k, sum(count) AS c FROM attack_rollup_hour INDEXED BY attack_rollup_hour_key_idx
     WHERE dim = ? AND key = ? AND bucket >= ? AND bucket < ? GROUP BY bucket`,
  );
  if (until > from) {
    const { held, misses } = summaryLookup(c, HOUR_SUMMARIES, dim, from, until, keys);
    out.push(...held);
    for (const [key, runs] of misses) for (const [a, b] of runs) out.push(...(perBucket.all(dim, key, a, b) as { b: number; k: string; c: number }[]));
  }
  if (to > until) for (const key of keys) out.push(...(perBucket.all(dim, key, until, to) as { b: number; k: string; c: number }[]));
  return out.sort((x, y) => x.b - y.b);
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

/**
 * Events per hour over hours [from, to), unfiltered: the event_type hour summaries hold every event
 * type of an hour (a handful, so their floor is 0) without the node column, a few rows an hour
 * instead of one per node and pot type. Hours not summarised (or, never in practice, summarised
 * with a floor) are summed from the rollup.
 */
export function hourlyTotals(c: TopQueryContext, from: number, to: number): { b: number; k: null; c: number }[] {
  const dim = 0;
  let until = Math.max(from, Math.min(to, summarisedUntil(progressOf(c, HOUR_SUMMARIES), dim)));
  const partial = c.prepared('top:partial:' + HOUR_SUMMARIES.table, () =>
    `SELECT bucket FROM ${HOUR_SUMMARIES.table}_floor WHERE dim = ? AND bucket >= ? AND bucket < ? AND floor > 0 ORDER BY bucket`,
  ).pluck().all(dim, from, until) as number[];
  if (partial.length > 0) until = from;
  return c.prepared('tl:totals', () =>
    `SELECT b, NULL AS k, sum(c) AS c FROM (
       SELECT bucket AS b, count AS c FROM attack_top_hour WHERE dim = 0 AND bucket >= ? AND bucket < ?
       UNION ALL SELECT bucket AS b, count AS c FROM attack_rollup_hour WHERE dim = 0 AND bucket >= ? AND bucket < ?
     ) GROUP BY b ORDER BY b`,
  ).all(from, until, until, to) as { b: number; k: null; c: number }[];
}
