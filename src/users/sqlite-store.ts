// Users and sessions in SQLite (tables users and user_sessions, migration drizzle/0010_users.sql).
import type { Role } from '../api/index.js';
import type { DatabaseHandle } from '../db/index.js';
import { UsernameTakenError, type SessionRecord, type UserChanges, type UserRecord, type UserStore } from './store.js';

interface UserRow {
  id: string;
  username: string;
  role: string;
  password_hash: string;
  created_at: number;
  disabled_at: number | null;
  last_login_at: number | null;
}

interface SessionRow {
  id_hash: string;
  user_id: string;
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  source: string;
}

const user = (r: UserRow): UserRecord => ({
  id: r.id,
  username: r.username,
  role: r.role as Role,
  passwordHash: r.password_hash,
  createdAt: r.created_at,
  disabledAt: r.disabled_at,
  lastLoginAt: r.last_login_at,
});

const session = (r: SessionRow): SessionRecord => ({
  idHash: r.id_hash,
  userId: r.user_id,
  csrfToken: r.csrf_token,
  createdAt: r.created_at,
  lastSeenAt: r.last_seen_at,
  expiresAt: r.expires_at,
  source: r.source,
});

export class SqliteUserStore implements UserStore {
  private readonly sqlite;
  private readonly stmt;

  constructor(database: DatabaseHandle) {
    const db = (this.sqlite = database.sqlite);
    this.stmt = {
      insertUser: db.prepare('INSERT INTO users (id, username, role, password_hash, created_at, disabled_at, last_login_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      byName: db.prepare<[string], UserRow>('SELECT * FROM users WHERE lower(username) = lower(?)'),
      byId: db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?'),
      list: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY created_at, username'),
      deleteUser: db.prepare<[string]>('DELETE FROM users WHERE id = ?'),
      lastLogin: db.prepare<[number, string]>('UPDATE users SET last_login_at = ? WHERE id = ?'),
      insertSession: db.prepare('INSERT INTO user_sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, source) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      sessionByHash: db.prepare<[string], SessionRow & { u_id: string; u_username: string; u_role: string; u_password_hash: string; u_created_at: number; u_disabled_at: number | null; u_last_login_at: number | null }>(
        `SELECT s.*, u.id AS u_id, u.username AS u_username, u.role AS u_role, u.password_hash AS u_password_hash,
                u.created_at AS u_created_at, u.disabled_at AS u_disabled_at, u.last_login_at AS u_last_login_at
         FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?`,
      ),
      touch: db.prepare<[number, string]>('UPDATE user_sessions SET last_seen_at = ? WHERE id_hash = ?'),
      deleteSession: db.prepare<[string]>('DELETE FROM user_sessions WHERE id_hash = ?'),
      sessionsOf: db.prepare<[string], { id_hash: string }>('SELECT id_hash FROM user_sessions WHERE user_id = ? ORDER BY created_at, id_hash'),
      sessionExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM user_sessions WHERE id_hash = ?'),
      deleteExpired: db.prepare<[number, number]>('DELETE FROM user_sessions WHERE expires_at <= ? OR last_seen_at < ?'),
    };
  }

  async insertUser(u: UserRecord): Promise<void> {
    try {
      this.stmt.insertUser.run(u.id, u.username, u.role, u.passwordHash, u.createdAt, u.disabledAt, u.lastLoginAt);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new UsernameTakenError(`a user named ${u.username} exists`);
      throw err;
    }
  }

  async userByName(username: string): Promise<UserRecord | undefined> {
    const r = this.stmt.byName.get(username);
    return r && user(r);
  }

  async userById(id: string): Promise<UserRecord | undefined> {
    const r = this.stmt.byId.get(id);
    return r && user(r);
  }

  async listUsers(): Promise<UserRecord[]> {
    return this.stmt.list.all().map(user);
  }

  async updateUser(id: string, changes: UserChanges): Promise<boolean> {
    const sets: string[] = [];
    const params: (string | number | null)[] = [];
    if (changes.role !== undefined) sets.push('role = ?'), params.push(changes.role);
    if (changes.passwordHash !== undefined) sets.push('password_hash = ?'), params.push(changes.passwordHash);
    if (changes.disabledAt !== undefined) sets.push('disabled_at = ?'), params.push(changes.disabledAt);
    if (sets.length === 0) return (await this.userById(id)) !== undefined;
    return this.sqlite.prepare(`UPDATE users SET ${sets.join(', ')} WHERE id = ?`).run(...params, id).changes > 0;
  }

  async deleteUser(id: string): Promise<boolean> {
    return this.stmt.deleteUser.run(id).changes > 0;
  }

  async setLastLogin(id: string, at: number): Promise<void> {
    this.stmt.lastLogin.run(at, id);
  }

  async insertSession(s: SessionRecord): Promise<void> {
    this.stmt.insertSession.run(s.idHash, s.userId, s.csrfToken, s.createdAt, s.lastSeenAt, s.expiresAt, s.source);
  }

  async sessionByHash(idHash: string): Promise<{ session: SessionRecord; user: UserRecord } | undefined> {
    const r = this.stmt.sessionByHash.get(idHash);
    if (!r) return undefined;
    return {
      session: session(r),
      user: user({ id: r.u_id, username: r.u_username, role: r.u_role, password_hash: r.u_password_hash, created_at: r.u_created_at, disabled_at: r.u_disabled_at, last_login_at: r.u_last_login_at }),
    };
  }

  async touchSession(idHash: string, at: number): Promise<void> {
    this.stmt.touch.run(at, idHash);
  }

  async deleteSession(idHash: string): Promise<boolean> {
    return this.stmt.deleteSession.run(idHash).changes > 0;
  }

  async deleteSessionsOf(userId: string, keep?: string): Promise<string[]> {
    const gone = (await this.sessionsOf(userId)).filter((h) => h !== keep);
    const tx = this.sqlite.transaction(() => {
      for (const h of gone) this.stmt.deleteSession.run(h);
    });
    tx();
    return gone;
  }

  async sessionsOf(userId: string): Promise<string[]> {
    return this.stmt.sessionsOf.all(userId).map((r) => r.id_hash);
  }

  async existingSessions(idHashes: readonly string[]): Promise<Set<string>> {
    return new Set(idHashes.filter((h) => this.stmt.sessionExists.get(h) !== undefined));
  }

  async deleteExpiredSessions(now: number, idleCutoff: number): Promise<number> {
    return this.stmt.deleteExpired.run(now, idleCutoff).changes;
  }
}
