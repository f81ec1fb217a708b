// Operator tokens in PostgreSQL (table api_tokens, drizzle/pg/): the same behaviour as
// sqlite-store.ts, checked by the same contract tests (test/access/store-contract.test.ts).
import type pg from 'pg';
import type { PgDatabaseHandle } from '../db/index.js';
import type { ActiveToken, TokenRecord, TokenStore } from './store.js';

// ORDER BY on text uses COLLATE "C" (byte order), as SQLite does.
const SUMMARY = 'id, name, role, created_at AS "createdAt", last_used_at AS "lastUsedAt", revoked_at AS "revokedAt"';

export class PgTokenStore implements TokenStore {
  private readonly pool: pg.Pool;

  constructor(database: PgDatabaseHandle) {
    this.pool = database.pool;
  }

  async insert(t: Omit<TokenRecord, 'lastUsedAt' | 'revokedAt'>): Promise<void> {
    await this.pool.query('INSERT INTO api_tokens (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)', [t.id, t.name, t.role, t.tokenHash, t.createdAt]);
  }

  async activeByHash(tokenHash: string): Promise<ActiveToken | undefined> {
    const { rows } = await this.pool.query<ActiveToken>(
      'SELECT id, name, role, last_used_at AS "lastUsedAt" FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL',
      [tokenHash],
    );
    return rows[0];
  }

  async setLastUsed(id: string, at: number): Promise<void> {
    await this.pool.query('UPDATE api_tokens SET last_used_at = $1 WHERE id = $2', [at, id]);
  }

  async list(): Promise<Omit<TokenRecord, 'tokenHash'>[]> {
    return (await this.pool.query<Omit<TokenRecord, 'tokenHash'>>(`SELECT ${SUMMARY} FROM api_tokens ORDER BY created_at, id COLLATE "C"`)).rows;
  }

  async revoke(id: string, at: number): Promise<boolean> {
    return ((await this.pool.query('UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id])).rowCount ?? 0) > 0;
  }

  async activeAmong(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM api_tokens WHERE id = ANY($1::text[]) AND revoked_at IS NULL', [ids]);
    return new Set(rows.map((r) => r.id));
  }

  async hasActiveAdmin(): Promise<boolean> {
    return (await this.pool.query("SELECT 1 FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1")).rowCount! > 0;
  }
}
