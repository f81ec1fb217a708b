// The audit log in SQLite (table audit_log, migration drizzle/0007_audit_log.sql). Writes are one
// prepared INSERT per mutating API request: operator actions are rare next to node traffic.
import type { DatabaseHandle } from '../db/index.js';
import type { AuditEntry, AuditQuery, AuditStore, NewAuditEntry } from './store.js';

interface Row {
  id: number;
  at: number;
  actor_id: string | null;
  actor_name: string | null;
  actor_role: string | null;
  actor_kind: string | null;
  source: string;
  action: string;
  method: string;
  route: string;
  target: string | null;
  status: number;
  changes: string | null;
}

function fromRow(r: Row): AuditEntry {
  return {
    id: r.id,
    at: r.at,
    actorId: r.actor_id,
    actorName: r.actor_name,
    actorRole: r.actor_role,
    actorKind: r.actor_kind,
    source: r.source,
    action: r.action,
    method: r.method,
    route: r.route,
    target: r.target,
    status: r.status,
    changes: r.changes,
  };
}

/** `tokens.*` -> LIKE 'tokens.%' with the LIKE metacharacters of the prefix escaped. */
function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export class SqliteAuditStore implements AuditStore {
  private readonly insert;
  private readonly deleteOld;

  constructor(private readonly database: DatabaseHandle) {
    this.insert = database.sqlite.prepare<[number, string | null, string | null, string | null, string | null, string, string, string, string, string | null, number, string | null]>(
      `INSERT INTO audit_log (at, actor_id, actor_name, actor_role, actor_kind, source, action, method, route, target, status, changes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.deleteOld = database.sqlite.prepare<[number, number]>(
      'DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY id LIMIT ?)',
    );
  }

  async append(e: NewAuditEntry): Promise<number> {
    const res = this.insert.run(e.at, e.actorId, e.actorName, e.actorRole, e.actorKind, e.source, e.action, e.method, e.route, e.target, e.status, e.changes);
    return Number(res.lastInsertRowid);
  }

  async list(q: AuditQuery): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.actor !== undefined) {
      where.push('(actor_name = ? OR actor_id = ?)');
      params.push(q.actor, q.actor);
    }
    if (q.action !== undefined) {
      if (q.action.endsWith('*')) {
        where.push("action LIKE ? ESCAPE '\\'");
        params.push(likePrefix(q.action.slice(0, -1)));
      } else {
        where.push('action = ?');
        params.push(q.action);
      }
    }
    if (q.target !== undefined) {
      where.push('target = ?');
      params.push(q.target);
    }
    if (q.since !== undefined) {
      where.push('at >= ?');
      params.push(q.since);
    }
    if (q.until !== undefined) {
      where.push('at < ?');
      params.push(q.until);
    }
    if (q.before !== undefined) {
      where.push('id < ?');
      params.push(q.before);
    }
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    params.push(q.limit);
    return (this.database.sqlite.prepare(sql).all(...params) as Row[]).map(fromRow);
  }

  async deleteOlderThan(cutoff: number, limit: number): Promise<number> {
    return this.deleteOld.run(cutoff, limit).changes;
  }
}
