// What the audit log stores and how it is read back. The SQL lives behind this interface, in
// sqlite-store.ts and pg-store.ts. Every method returns a Promise: PostgreSQL answers over a socket,
// and the SQLite store (better-sqlite3 is synchronous) resolves at once with the same results.

/** One operator action as recorded. */
export interface AuditEntry {
  id: number;
  /** Epoch ms at which the answer was sent. */
  at: number;
  actorId: string | null;
  actorName: string | null;
  actorRole: string | null;
  /** token | user (a console login) | cli; null in entries from before console users existed (tokens). */
  actorKind: string | null;
  /** Remote address of the request. */
  source: string;
  /** e.g. tokens.create, nodes.approve, alerts.rules.update (see action.ts). */
  action: string;
  method: string;
  /** Route pattern, e.g. /api/v1/nodes/:name/approve (never the raw URL: no query strings). */
  route: string;
  target: string | null;
  /** HTTP status of the answer: failed attempts are recorded too. */
  status: number;
  /** The request body with secrets masked, as JSON text (cut at a bound), or null. */
  changes: string | null;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;

export interface AuditQuery {
  /** Token name or token id. */
  actor?: string;
  /** Exact action, or a prefix ending in `*` (e.g. `tokens.*`). */
  action?: string;
  target?: string;
  /** at >= since (epoch ms). */
  since?: number;
  /** at < until (epoch ms). */
  until?: number;
  /** Keyset cursor: entries with id < before (newest first). */
  before?: number;
  limit: number;
}

export interface AuditStore {
  /** Resolves with the new entry's id. */
  append(entry: NewAuditEntry): Promise<number>;
  /** Newest first. */
  list(query: AuditQuery): Promise<AuditEntry[]>;
  /** Deletes up to `limit` entries older than `cutoff`; resolves with how many. */
  deleteOlderThan(cutoff: number, limit: number): Promise<number>;
}
