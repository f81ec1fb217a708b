// What the hpfeeds authkeys store and how they are read back. The SQL lives behind this interface,
// in sqlite-store.ts and pg-store.ts. Every method returns a Promise: PostgreSQL answers over a
// socket, and the SQLite store (better-sqlite3 is synchronous) resolves at once with the same results.
import { createHash } from 'node:crypto';

/** One authkey as stored (channels are JSON arrays of names in the database). */
export interface AuthkeyRecord {
  ident: string;
  owner: string;
  secret: string;
  pubchans: string[];
  subchans: string[];
  createdAt: number;
  updatedAt: number;
}

export interface AuthkeyStore {
  get(ident: string): Promise<AuthkeyRecord | undefined>;
  /** Every key, by ident (byte order). */
  list(): Promise<AuthkeyRecord[]>;
  /**
   * Creates or replaces each key, all in one transaction. A replaced key keeps its created_at;
   * every other field, updated_at too, is taken from the record.
   */
  upsert(records: readonly AuthkeyRecord[]): Promise<void>;
  /** Creates the key unless its ident exists (atomically); false when it existed. */
  insertIfAbsent(record: AuthkeyRecord): Promise<boolean>;
  remove(ident: string): Promise<boolean>;
  /** ident -> authkeyVersion() of every key: what change detection compares. */
  versions(): Promise<Map<string, string>>;
  /**
   * A cheap value that differs from the previous one when the table may have been changed by
   * another connection (another process or core); only then are the versions read again.
   */
  changeMarker(): Promise<string>;
}

/** Channel lists written by other tools: non-strings dropped, non-arrays and bad JSON read as none. */
export function parseChannels(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((c): c is string => typeof c === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * A key's version for change detection: it moves with any change of owner, secret, channels or
 * updated_at. (updated_at alone has millisecond resolution: a change made by another process in
 * the millisecond of the previous one would go unseen.)
 */
export function authkeyVersion(r: AuthkeyRecord): string {
  return createHash('sha1').update(JSON.stringify([r.updatedAt, r.owner, r.secret, r.pubchans, r.subchans])).digest('base64');
}
