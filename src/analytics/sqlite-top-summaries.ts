// Per-bucket top-K summaries of the rollups, for top-N over windows with many rows. A top-N of a
// high-cardinality dimension (src_ip, credential, command...) summed from the rollups groups every
// (bucket, node, pot type, key) row of the window: hundreds of thousands for 24 h of hour rows,
// millions for 30 days of day rows. Summed from these summaries it groups at most K rows per bucket.
// Two granularities, same rules:
//   - hours (attack_top_hour, K = 300 by default) for windows measured in hours, 24 h above all;
//   - days (attack_top_day, K = 2000) for the whole days of long windows.
// Each summary keeps, per (dim, bucket), the K keys with the highest bucket counts (over all nodes
// and pot types) and `floor`: an upper bound on the bucket count of any key not kept (0 when every
// key of the bucket is kept, which is the case for low-cardinality dimensions). So a merged count is
// never above the true count and at most the sum of the window's floors below it. The query
// (sqlite-top-query.ts) turns that into exact counts for the keys it lists and a stated bound.
//
// Summaries are built by the writer once a bucket is folded (all its hours are below
// `day_rollup_until_hour`), a few (bucket, dim) per write, so the GROUP BY of a bucket never stalls
// the writer for long. Progress is one number per granularity in attack_meta, bucket * 16 + dim:
// (bucket, dim) is summarised iff its number is below it. Late events of a summarised bucket update
// the summary (a kept key exactly, a key not kept raises the floor by its increment), so the bound
// stays true.
import type Database from 'better-sqlite3';
import { ROLLED_DIM_IDS } from './dimensions.js';

/** Keys kept per (dimension, day). */
export const DEFAULT_TOP_KEYS_PER_DAY = 2000;
/** Keys kept per (dimension, hour): 24 h of them is at most 7 200 rows a dimension. */
export const DEFAULT_TOP_KEYS_PER_HOUR = 300;
const DIM_SLOTS = 16;
const LAST_DIM = Math.max(...ROLLED_DIM_IDS);

export interface SummaryGranularity {
  /** Summary table; its floor table is `${table}_floor`. */
  table: 'attack_top_hour' | 'attack_top_day';
  /** Rollup table summarised (same bucket unit). */
  source: 'attack_rollup_hour' | 'attack_rollup_day';
  /** attack_meta key of the progress number. */
  progressKey: 'top_hour_progress' | 'top_day_progress';
  /** Hours per bucket. */
  hours: number;
}

export const HOUR_SUMMARIES: SummaryGranularity = { table: 'attack_top_hour', source: 'attack_rollup_hour', progressKey: 'top_hour_progress', hours: 1 };
export const DAY_SUMMARIES: SummaryGranularity = { table: 'attack_top_day', source: 'attack_rollup_day', progressKey: 'top_day_progress', hours: 24 };

/** Buckets below the returned one are summarised for `dim`, given the progress number. */
export function summarisedUntil(progress: number | null, dim: number): number {
  if (progress === null) return -Infinity;
  const bucket = Math.floor(progress / DIM_SLOTS);
  return progress % DIM_SLOTS > dim ? bucket + 1 : bucket;
}

export class TopSummaries {
  private statements: ReturnType<typeof prepareWrites> | undefined;
  private progressCache: number | null | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly g: SummaryGranularity,
    private readonly keysPerBucket: number,
  ) {}

  /** (bucket, dim) pairs below this number are summarised; null before the first summary. */
  progress(): number | null {
    const v = this.db.prepare('SELECT value FROM attack_meta WHERE key = ?').pluck().get(this.g.progressKey) as number | undefined;
    return v ?? null;
  }

  private writes() {
    return (this.statements ??= prepareWrites(this.db, this.g));
  }

  /**
   * Summarises the next (bucket, dim) if its bucket is folded completely (`foldedUntilHour`). The
   * first call starts at the oldest bucket of the source rollup (a database that had rows before
   * summaries existed gets them all, one step at a time). Returns false when there was nothing to do.
   */
  step(foldedUntilHour: number): boolean {
    const s = this.writes();
    let progress = (this.progressCache ??= this.progress());
    if (progress === null) {
      const first = s.firstBucket.get() as number | null;
      if (first === null) return false;
      progress = first * DIM_SLOTS;
    }
    const bucket = Math.floor(progress / DIM_SLOTS);
    if ((bucket + 1) * this.g.hours > foldedUntilHour) return false;
    const dim = progress % DIM_SLOTS;
    const rows = s.bucketKeys.all(dim, bucket, this.keysPerBucket + 1) as { key: string; c: number }[];
    s.clearTop.run(dim, bucket);
    const kept = Math.min(rows.length, this.keysPerBucket);
    for (let i = 0; i < kept; i++) s.insertTop.run(dim, bucket, rows[i]!.key, rows[i]!.c);
    s.setFloor.run(dim, bucket, rows.length > this.keysPerBucket ? rows[this.keysPerBucket]!.c : 0, kept);
    // Skip empty stretches (a quiet night, a gap in a database) in one jump instead of 16 steps an hour.
    let next = dim >= LAST_DIM ? (bucket + 1) * DIM_SLOTS : progress + 1;
    if (dim >= LAST_DIM) {
      const nextBucket = s.nextBucket.get(bucket) as number | null;
      if (nextBucket !== null) next = Math.max(next, nextBucket * DIM_SLOTS);
    }
    s.setProgress.run(this.g.progressKey, next);
    this.progressCache = next;
    return true;
  }

  /** Steps until caught up, or `budgetMs` has passed (at least one step). Returns the steps done. */
  catchUp(foldedUntilHour: number, budgetMs: number): number {
    const t0 = performance.now();
    let n = 0;
    while (this.step(foldedUntilHour)) {
      n++;
      if (performance.now() - t0 >= budgetMs) break;
    }
    return n;
  }

  /** A late increment of a bucket already folded: keeps the summary (and its bound) true. */
  late(dim: number, bucket: number, key: string, count: number): void {
    const progress = (this.progressCache ??= this.progress());
    if (bucket >= summarisedUntil(progress, dim)) return;
    const s = this.writes();
    if (s.bumpTop.run(count, dim, bucket, key).changes > 0) return;
    const f = s.getFloor.get(dim, bucket) as { floor: number; n: number } | undefined;
    if (f === undefined) {
      // A bucket skipped as empty: its summary is this key alone, complete.
      s.insertTop.run(dim, bucket, key, count);
      s.setFloor.run(dim, bucket, 0, 1);
      return;
    }
    // A complete list stays complete (and exact) while it has room.
    if (f.floor === 0 && f.n < this.keysPerBucket) {
      s.insertTop.run(dim, bucket, key, count);
      s.setFloor.run(dim, bucket, 0, f.n + 1);
    } else s.setFloor.run(dim, bucket, f.floor + count, f.n);
  }

  /** Forget the cached progress (another connection may have written). */
  reset(): void {
    this.progressCache = undefined;
  }
}

function prepareWrites(db: Database.Database, g: SummaryGranularity) {
  const { table, source } = g;
  return {
    firstBucket: db.prepare(`SELECT min(bucket) FROM ${source} WHERE dim = 0`).pluck(),
    nextBucket: db.prepare(`SELECT min(bucket) FROM ${source} WHERE dim = 0 AND bucket > ?`).pluck(),
    // +key: grouping through key_idx (dim, key, bucket) would avoid a sort but scan every bucket of the dim.
    bucketKeys: db.prepare(
      `SELECT +key AS key, sum(count) AS c FROM ${source} WHERE dim = ? AND bucket = ? GROUP BY +key ORDER BY c DESC, key LIMIT ?`,
    ),
    clearTop: db.prepare(`DELETE FROM ${table} WHERE dim = ? AND bucket = ?`),
    insertTop: db.prepare(
      `INSERT INTO ${table} (dim, bucket, key, count) VALUES (?, ?, ?, ?) ON CONFLICT (dim, bucket, key) DO UPDATE SET count = count + excluded.count`,
    ),
    bumpTop: db.prepare(`UPDATE ${table} SET count = count + ? WHERE dim = ? AND bucket = ? AND key = ?`),
    getFloor: db.prepare(`SELECT floor, n FROM ${table}_floor WHERE dim = ? AND bucket = ?`),
    setFloor: db.prepare(
      `INSERT INTO ${table}_floor (dim, bucket, floor, n) VALUES (?, ?, ?, ?) ON CONFLICT (dim, bucket) DO UPDATE SET floor = excluded.floor, n = excluded.n`,
    ),
    setProgress: db.prepare('INSERT INTO attack_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  };
}
