// Operator tokens in SQLite (table api_tokens). Authentication is one prepared lookup by hash per
// API request.
import type { Role } from '../api/index.js';
import type { DatabaseHandle } from '../db/index.js';
import type { ActiveToken, TokenRecord, TokenStore } from './store.js';

interface Row {
  id: string;
  name: string;
  role: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export class SqliteTokenStore implements TokenStore {
  private readonly stmt;

  constructor(database: DatabaseHandle) {
    const s = database.sqlite;
    this.stmt = {
      insert: s.prepare<[string, string, string, string, number]>('INSERT INTO api_tokens (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)'),
      byHash: s.prepare<[string], { id: string; name: string; role: Role; last_used_at: number | null }>(
        'SELECT id, name, role, last_used_at FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL',
      ),
      touch: s.prepare<[number, string]>('UPDATE api_tokens SET last_used_at = ? WHERE id = ?'),
      list: s.prepare<[], Row>('SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at, id'),
      revoke: s.prepare<[number, string]>('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      isActive: s.prepare<[string], { one: number }>('SELECT 1 AS one FROM api_tokens WHERE id = ? AND revoked_at IS NULL'),
      activeAdmin: s.prepare<[], { one: number }>("SELECT 1 AS one FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1"),
    };
  }

  async insert(t: Omit<TokenRecord, 'lastUsedAt' | 'revokedAt'>): Promise<void> {
    this.stmt.insert.run(t.id, t.name, t.role, t.tokenHash, t.createdAt);
  }

  async activeByHash(tokenHash: string): Promise<ActiveToken | undefined> {
    const row = this.stmt.byHash.get(tokenHash);
    return row && { id: row.id, name: row.name, role: row.role, lastUsedAt: row.last_used_at };
  }

  async setLastUsed(id: string, at: number): Promise<void> {
    this.stmt.touch.run(at, id);
  }

  async list(): Promise<Omit<TokenRecord, 'tokenHash'>[]> {
    return this.stmt.list.all().map((r) => ({ id: r.id, name: r.name, role: r.role as Role, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at }));
  }

  async revoke(id: string, at: number): Promise<boolean> {
    return this.stmt.revoke.run(at, id).changes > 0;
  }

  async activeAmong(ids: readonly string[]): Promise<Set<string>> {
    return new Set(ids.filter((id) => this.stmt.isActive.get(id) !== undefined));
  }

  async hasActiveAdmin(): Promise<boolean> {
    return this.stmt.activeAdmin.get() !== undefined;
  }
}
