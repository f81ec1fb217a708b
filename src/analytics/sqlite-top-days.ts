// Per-day top-K summaries of the day rollups, for top-N over long windows. A 30-day top-N of a
// high-cardinality dimension (src_ip, credential, command...) summed from the day rollups groups
// millions of (day, node, pot type, key) rows; summed from these summaries it groups at most K rows
// per day. Each summary keeps, per (dim, day), the K keys with the highest day counts (over all nodes
// and pot types) and `floor`: an upper bound on the day count of any key not kept (0 when every key
// of the day is kept, which is the case for low-cardinality dimensions). So a merged count is never
// above the true count and at most the sum of the window's floors below it: the answer states that
// bound, and is exact when it is 0.
//
// Summaries are built by the writer, one (day, dim) per write call once the day is folded, so the
// GROUP BY of a day never stalls the writer for more than one dimension. Progress is one number in
// attack_meta, `top_day_progress` = day * 16 + dim: (day, dim) is summarised iff its number is
// below it. Late events of a summarised day update the summary (a kept key exactly, a key not kept
// raises the floor by its increment), so the bound stays true.
import type Database from 'better-sqlite3';
import { ROLLED_DIM_IDS } from './dimensions.js';

/** Keys kept per (dimension, day). */
export const DEFAULT_TOP_KEYS_PER_DAY = 2000;
/** Windows with fewer whole days than this are answered from the rollups, exactly. */
export const SUMMARY_MIN_DAYS = 2;
const DIM_SLOTS = 16;
const LAST_DIM = Math.max(...ROLLED_DIM_IDS);

export class TopDaySummaries {
  private statements: ReturnType<typeof prepareWrites> | undefined;
  private progressCache: number | null | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly keysPerDay: number,
  ) {}

  /** (day, dim) pairs below this number are summarised; null before the first summary. */
  progress(): number | null {
    const v = this.db.prepare("SELECT value FROM attack_meta WHERE key = 'top_day_progress'").pluck().get() as number | undefined;
    return v ?? null;
  }

  /** Days below the returned day are summarised for `dim`. */
  static summarisedUntilDay(progress: number | null, dim: number): number {
    if (progress === null) return -Infinity;
    const day = Math.floor(progress / DIM_SLOTS);
    return progress % DIM_SLOTS > dim ? day + 1 : day;
  }

  private writes() {
    return (this.statements ??= prepareWrites(this.db));
  }

  /**
   * Summarises the next (day, dim) if its day is folded completely (`foldedUntilHour`). Called
   * once per write; the first call starts at the oldest day of the day rollups (a database that had
   * day rows before summaries existed gets them all, one step at a time).
   */
  step(foldedUntilHour: number): boolean {
    const s = this.writes();
    let progress = (this.progressCache ??= this.progress());
    if (progress === null) {
      const first = s.firstDay.get() as number | null;
      if (first === null) return false;
      progress = first * DIM_SLOTS;
    }
    const day = Math.floor(progress / DIM_SLOTS);
    if ((day + 1) * 24 > foldedUntilHour) return false;
    const dim = progress % DIM_SLOTS;
    const rows = s.dayKeys.all(dim, day, this.keysPerDay + 1) as { key: string; c: number }[];
    s.clearTop.run(dim, day);
    const kept = Math.min(rows.length, this.keysPerDay);
    for (let i = 0; i < kept; i++) s.insertTop.run(dim, day, rows[i]!.key, rows[i]!.c);
    s.setFloor.run(dim, day, rows.length > this.keysPerDay ? rows[this.keysPerDay]!.c : 0, kept);
    const next = dim >= LAST_DIM ? (day + 1) * DIM_SLOTS : progress + 1;
    s.setProgress.run(next);
    this.progressCache = next;
    return true;
  }

  /** A late increment of a day already folded: keeps the summary (and its bound) true. */
  late(dim: number, day: number, key: string, count: number): void {
    const progress = (this.progressCache ??= this.progress());
    if (day >= TopDaySummaries.summarisedUntilDay(progress, dim)) return;
    const s = this.writes();
    if (s.bumpTop.run(count, dim, day, key).changes > 0) return;
    const f = s.getFloor.get(dim, day) as { floor: number; n: number } | undefined;
    if (f === undefined) return;
    // A complete list stays complete (and exact) while it has room.
    if (f.floor === 0 && f.n < this.keysPerDay) {
      s.insertTop.run(dim, day, key, count);
      s.setFloor.run(dim, day, 0, f.n + 1);
    } else s.setFloor.run(dim, day, f.floor + count, f.n);
  }

  /** Forget the cached progress (another connection may have written). */
  reset(): void {
    this.progressCache = undefined;
  }
}

function prepareWrites(db: Database.Database) {
  return {
    firstDay: db.prepare('SELECT min(bucket) FROM attack_rollup_day WHERE dim = 0').pluck(),
    // +key: grouping through key_idx (dim, key, bucket) would avoid a sort but scan every day of the dim.
    dayKeys: db.prepare(
      'SELECT +key AS key, sum(count) AS c FROM attack_rollup_day WHERE dim = ? AND bucket = ? GROUP BY +key ORDER BY c DESC, key LIMIT ?',
    ),
    clearTop: db.prepare('DELETE FROM attack_top_day WHERE dim = ? AND bucket = ?'),
    insertTop: db.prepare(
      'INSERT INTO attack_top_day (dim, bucket, key, count) VALUES (?, ?, ?, ?) ON CONFLICT (dim, bucket, key) DO UPDATE SET count = count + excluded.count',
    ),
    bumpTop: db.prepare('UPDATE attack_top_day SET count = count + ? WHERE dim = ? AND bucket = ? AND key = ?'),
    getFloor: db.prepare('SELECT floor, n FROM attack_top_day_floor WHERE dim = ? AND bucket = ?'),
    setFloor: db.prepare(
      'INSERT INTO attack_top_day_floor (dim, bucket, floor, n) VALUES (?, ?, ?, ?) ON CONFLICT (dim, bucket) DO UPDATE SET floor = excluded.floor, n = excluded.n',
    ),
    setProgress: db.prepare(
      "INSERT INTO attack_meta (key, value) VALUES ('top_day_progress', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
  };
}
