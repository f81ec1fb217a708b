// The audit log in PostgreSQL (table audit_log, drizzle/pg/0000_init.sql): the same behaviour as
// sqlite-store.ts, checked by the same contract tests (test/audit/store-contract.test.ts).
import type { PgDatabaseHandle } from '../db/index.js';
import type { AuditEntry, AuditQuery, AuditStore, NewAuditEntry } from './store.js';

const COLUMNS = 'id, at, actor_id AS "actorId", actor_name AS "actorName", actor_role AS "actorRole", actor_kind AS "actorKind", source, action, method, route, target, status, changes';

/** `tokens.*` -> LIKE 'tokens.%' with the LIKE metacharacters of the prefix escaped. */
function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export class PgAuditStore implements AuditStore {
  constructor(private readonly database: PgDatabaseHandle) {}

  async append(e: NewAuditEntry): Promise<number> {
    const { rows } = await this.database.pool.query<{ id: number }>(
      `INSERT INTO audit_log (at, actor_id, actor_name, actor_role, actor_kind, source, action, method, route, target, status, changes)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
      [e.at, e.actorId, e.actorName, e.actorRole, e.actorKind, e.source, e.action, e.method, e.route, e.target, e.status, e.changes],
    );
    return rows[0]!.id;
  }

  async list(q: AuditQuery): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const param = (v: string | number) => `$${params.push(v)}`;
    if (q.actor !== undefined) {
      const p = param(q.actor);
      where.push(`(actor_name = ${p} OR actor_id = ${p})`);
    }
    if (q.action !== undefined) {
      if (q.action.endsWith('*')) where.push(`action LIKE ${param(likePrefix(q.action.slice(0, -1)))} ESCAPE '\\'`);
      else where.push(`action = ${param(q.action)}`);
    }
    if (q.target !== undefined) where.push(`target = ${param(q.target)}`);
    if (q.since !== undefined) where.push(`at >= ${param(q.since)}`);
    if (q.until !== undefined) where.push(`at < ${param(q.until)}`);
    if (q.before !== undefined) where.push(`id < ${param(q.before)}`);
    const sql = `SELECT ${COLUMNS} FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${param(q.limit)}`;
    return (await this.database.pool.query<AuditEntry>(sql, params)).rows;
  }

  async deleteOlderThan(cutoff: number, limit: number): Promise<number> {
    const res = await this.database.pool.query('DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY id LIMIT $2)', [cutoff, limit]);
    return res.rowCount ?? 0;
  }
}
