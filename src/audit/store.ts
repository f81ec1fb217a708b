// What the audit log stores and how it is read back. The SQL lives in sqlite-store.ts behind this
// interface, so a PostgreSQL implementation can take its place.

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
  append(entry: NewAuditEntry): number;
  /** Newest first. */
  list(query: AuditQuery): AuditEntry[];
  /** Deletes up to `limit` entries older than `cutoff`; returns how many. */
  deleteOlderThan(cutoff: number, limit: number): number;
}
