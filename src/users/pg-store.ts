// Users and sessions in PostgreSQL (tables users and user_sessions, drizzle/pg/0000_init.sql): the
// same behaviour as sqlite-store.ts, checked by the same contract tests
// (test/users/store-contract.test.ts).
import type pg from 'pg';
import type { PgDatabaseHandle } from '../db/index.js';
import { UsernameTakenError, type SessionRecord, type UserChanges, type UserRecord, type UserStore } from './store.js';

const USER = 'id, username, role, password_hash AS "passwordHash", created_at AS "createdAt", disabled_at AS "disabledAt", last_login_at AS "lastLoginAt"';
/** SQLSTATE of a unique violation. */
const UNIQUE_VIOLATION = '23505';
// ORDER BY on text uses COLLATE "C" (byte order), as SQLite does: the database's own collation
// (en_US, ...) would order names differently from one server to the next.

export class PgUserStore implements UserStore {
  private readonly pool: pg.Pool;

  constructor(database: PgDatabaseHandle) {
    this.pool = database.pool;
  }

  async insertUser(u: UserRecord): Promise<void> {
    try {
      await this.pool.query('INSERT INTO users (id, username, role, password_hash, created_at, disabled_at, last_login_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        u.id,
        u.username,
        u.role,
        u.passwordHash,
        u.createdAt,
        u.disabledAt,
        u.lastLoginAt,
      ]);
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new UsernameTakenError(`a user named ${u.username} exists`);
      throw err;
    }
  }

  async userByName(username: string): Promise<UserRecord | undefined> {
    return (await this.pool.query<UserRecord>(`SELECT ${USER} FROM users WHERE lower(username) = lower($1)`, [username])).rows[0];
  }

  async userById(id: string): Promise<UserRecord | undefined> {
    return (await this.pool.query<UserRecord>(`SELECT ${USER} FROM users WHERE id = $1`, [id])).rows[0];
  }

  async listUsers(): Promise<UserRecord[]> {
    return (await this.pool.query<UserRecord>(`SELECT ${USER} FROM users ORDER BY created_at, username COLLATE "C"`)).rows;
  }

  async updateUser(id: string, changes: UserChanges): Promise<boolean> {
    const sets: string[] = [];
    const params: (string | number | null)[] = [];
    const set = (column: string, value: string | number | null) => sets.push(`${column} = $${params.push(value)}`);
    if (changes.role !== undefined) set('role', changes.role);
    if (changes.passwordHash !== undefined) set('password_hash', changes.passwordHash);
    if (changes.disabledAt !== undefined) set('disabled_at', changes.disabledAt);
    if (sets.length === 0) return (await this.userById(id)) !== undefined;
    const res = await this.pool.query(`UPDATE users SET ${sets.join(', ')} WHERE id = $${params.push(id)}`, params);
    return (res.rowCount ?? 0) > 0;
  }

  async deleteUser(id: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM users WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async setLastLogin(id: string, at: number): Promise<void> {
    await this.pool.query('UPDATE users SET last_login_at = $1 WHERE id = $2', [at, id]);
  }

  async insertSession(s: SessionRecord): Promise<void> {
    await this.pool.query('INSERT INTO user_sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, source) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      s.idHash,
      s.userId,
      s.csrfToken,
      s.createdAt,
      s.lastSeenAt,
      s.expiresAt,
      s.source,
    ]);
  }

  async sessionByHash(idHash: string): Promise<{ session: SessionRecord; user: UserRecord } | undefined> {
    // One round trip: the session and its user as two JSON objects (bigints fit JSON numbers here).
    const { rows } = await this.pool.query<{ session: SessionRecord; user: UserRecord }>(
      `SELECT json_build_object('idHash', s.id_hash, 'userId', s.user_id, 'csrfToken', s.csrf_token, 'createdAt', s.created_at,
                                'lastSeenAt', s.last_seen_at, 'expiresAt', s.expires_at, 'source', s.source) AS session,
              json_build_object('id', u.id, 'username', u.username, 'role', u.role, 'passwordHash', u.password_hash,
                                'createdAt', u.created_at, 'disabledAt', u.disabled_at, 'lastLoginAt', u.last_login_at) AS user
       FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1`,
      [idHash],
    );
    return rows[0];
  }

  async touchSession(idHash: string, at: number): Promise<void> {
    await this.pool.query('UPDATE user_sessions SET last_seen_at = $1 WHERE id_hash = $2', [at, idHash]);
  }

  async deleteSession(idHash: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM user_sessions WHERE id_hash = $1', [idHash])).rowCount ?? 0) > 0;
  }

  async deleteSessionsOf(userId: string, keep?: string): Promise<string[]> {
    // Oldest first, as sessionsOf() lists them (RETURNING alone has no order).
    const { rows } = await this.pool.query<{ idHash: string }>(
      `WITH gone AS (DELETE FROM user_sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2 RETURNING id_hash, created_at)
       SELECT id_hash AS "idHash" FROM gone ORDER BY created_at, id_hash COLLATE "C"`,
      [userId, keep ?? null],
    );
    return rows.map((r) => r.idHash);
  }

  async sessionsOf(userId: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ idHash: string }>('SELECT id_hash AS "idHash" FROM user_sessions WHERE user_id = $1 ORDER BY created_at, id_hash COLLATE "C"', [userId]);
    return rows.map((r) => r.idHash);
  }

  async existingSessions(idHashes: readonly string[]): Promise<Set<string>> {
    if (idHashes.length === 0) return new Set();
    const { rows } = await this.pool.query<{ idHash: string }>('SELECT id_hash AS "idHash" FROM user_sessions WHERE id_hash = ANY($1::text[])', [idHashes]);
    return new Set(rows.map((r) => r.idHash));
  }

  async deleteExpiredSessions(now: number, idleCutoff: number): Promise<number> {
    return (await this.pool.query('DELETE FROM user_sessions WHERE expires_at <= $1 OR last_seen_at < $2', [now, idleCutoff])).rowCount ?? 0;
  }
}
