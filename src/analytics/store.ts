// The storage seam of attack analytics. AttackStore is the SQLite store's (sqlite-store.ts): every
// method is synchronous so the events writer thread (write) and read workers (queries) can call it
// without an event loop of their own. AttackWriteStore is the asynchronous write side that the
// PostgreSQL store (pg-store.ts) implements and the SQLite store adapts to; the asynchronous read
// side of both is AttackReader (reader.ts).
import type { BatchAggregate } from './aggregate.js';
import type { Dimension, Tag } from './dimensions.js';
import type { GeoInfo } from './geo.js';

export type TimelineBucket = 'minute' | 'hour' | 'day';

export interface WindowFilter {
  /** Epoch ms, inclusive (widened down to the bucket start). */
  since: number;
  /** Epoch ms, exclusive (widened up to the next bucket start). */
  until: number;
  node?: string;
  potType?: string;
}

export interface TopQuery extends WindowFilter {
  by: Dimension;
  limit: number;
}

export interface TopItem {
  key: string;
  count: number;
  /** by=asn */
  as_org?: string | null;
  /** by=credential */
  username?: string;
  password?: string;
}

export interface TopResult {
  by: Dimension;
  since: number;
  until: number;
  /**
   * true: every count is the exact count of the (widened) window and the items are the true top.
   * false (long windows of high-cardinality dimensions, answered from per-day top-K summaries):
   * each count is at most `max_undercount` below the true count, never above it, and a key not
   * listed has a true count of at most the last listed count + `max_undercount`.
   */
  exact: boolean;
  max_undercount: number;
  items: TopItem[];
}

export interface TimelineQuery extends WindowFilter {
  bucket: TimelineBucket;
  by?: Dimension;
  /** Series when `by` is set: the top `limit` keys of the window. */
  limit: number;
}

export interface TimelineSeries {
  /** null when the timeline is not split by a dimension. */
  key: string | null;
  /** Buckets with events only, ascending; `start` is epoch ms. */
  points: { start: number; count: number }[];
}

export interface TimelineResult {
  bucket: TimelineBucket;
  by: Dimension | null;
  since: number;
  until: number;
  series: TimelineSeries[];
}

export interface FactRow {
  value: string;
  count: number;
  first_seen: number;
  last_seen: number;
}

export interface SessionRow {
  id: number;
  node: string;
  pot_id: string;
  pot_type: string;
  session: string;
  src_ip: string | null;
  src_port: number | null;
  dest_ip: string | null;
  dest_port: number | null;
  protocol: string | null;
  started_at: number;
  last_seen: number;
  closed: boolean;
  events: number;
  logins_failed: number;
  username: string | null;
  password: string | null;
}

export interface SessionStepRow {
  event_id: number;
  at: number;
  kind: string;
  value: string;
  detail: string | null;
}

export interface AttackerProfile {
  ip: string;
  first_seen: number;
  last_seen: number;
  events: number;
  geo: GeoInfo;
  scanner: string | null;
  tags: Tag[];
  logins_failed: number;
  logins_ok: number;
  nodes: FactRow[];
  pots: FactRow[];
  pot_types: FactRow[];
  ports: FactRow[];
  protocols: FactRow[];
  credentials: (FactRow & { username: string; password: string })[];
  commands: FactRow[];
  urls: FactRow[];
  hashes: FactRow[];
  sessions: SessionRow[];
}

export interface SessionListQuery {
  since?: number;
  until?: number;
  srcIp?: string;
  node?: string;
  limit: number;
  /** Keyset paging, newest first: sessions that sort after this one (started_at, then id, descending). */
  after?: { startedAt: number; id: number };
}

export interface IntelIpQuery {
  since: number;
  minCount: number;
  tag?: Tag;
  limit: number;
}

export interface IntelIpRow {
  ip: string;
  events: number;
  first_seen: number;
  last_seen: number;
  country: string | null;
  asn: number | null;
  as_org: string | null;
  tags: Tag[];
  /** Port and protocol of the address's most frequent service; pot type of its most frequent target. */
  port: number | null;
  pot_type: string | null;
  protocol: string | null;
}

export interface IndicatorRow {
  value: string;
  count: number;
  first_seen: number;
  last_seen: number;
}

export interface RetentionResult {
  deleted: number;
  /** false when the chunk budget ran out before everything old was deleted. */
  done: boolean;
}

export interface AttackStore {
  /**
   * Applies the increments of one or more writer batches (the buffered ingest folds batches) and
   * records `agg.lastEventId` as the ingest's watermark, in the caller's transaction.
   */
  write(agg: BatchAggregate): void;
  /** Highest event id whose increments are written (the watermark), or null before any write. */
  ingestedUntil(): number | null;
  top(q: TopQuery): TopResult;
  timeline(q: TimelineQuery): TimelineResult;
  attacker(ip: string, listLimit: number): AttackerProfile | undefined;
  sessions(q: SessionListQuery): SessionRow[];
  session(id: number): (SessionRow & { steps: SessionStepRow[] }) | undefined;
  intelIps(q: IntelIpQuery): IntelIpRow[];
  /** URLs or file hashes seen since, with counts and first/last seen (hour precision). */
  indicators(kind: 'url' | 'hash', since: number, until: number, limit: number): IndicatorRow[];
  /** Events from IGNORE_CIDRS sources in [since, until), hour precision. */
  ignoredCount(since: number, until: number): number;
  /** Deletes rollups, attackers, facts and sessions older than `cutoff` (epoch ms), at most `maxRows` rows. */
  deleteOlderThan(cutoff: number, maxRows: number): RetentionResult;
}

/**
 * The write side as a store that answers over a socket offers it: what the PostgreSQL ingest
 * (pg-ingest.ts) and retention use. The SQLite writer thread keeps the synchronous AttackStore.
 */
export interface AttackWriteStore {
  /**
   * Applies the increments of `agg` and records `agg.lastEventId` as the watermark, in one
   * transaction of the store's own: all of it or nothing.
   */
  write(agg: BatchAggregate): Promise<void>;
  /** Highest event id whose increments are written (the watermark), or null before any write. */
  ingestedUntil(): Promise<number | null>;
  /** As AttackStore.deleteOlderThan. */
  deleteOlderThan(cutoff: number, maxRows: number): Promise<RetentionResult>;
}
