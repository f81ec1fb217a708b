// Operator API tokens. A token is shown once when created; the database keeps only its SHA-256,
// so a leaked database does not leak working credentials.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { and, asc, eq, isNull } from 'drizzle-orm';
import type { Operator, Role } from '../api/index.js';
import type { DatabaseHandle } from '../db/index.js';
import { tables } from '../db/index.js';

export interface TokenSummary {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

const TOKEN_PREFIX = 'apiary_';
/** last_used_at is informative; writing it on every request would turn reads into writes. */
const LAST_USED_RESOLUTION_MS = 60_000;

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class TokenService {
  private readonly db;
  private readonly byHash;
  private readonly touch;
  private readonly isActive;
  private readonly revokedListeners = new Set<(id: string) => void>();

  constructor(database: DatabaseHandle) {
    this.db = database.db;
    this.byHash = database.sqlite.prepare<[string], { id: string; name: string; role: Role; last_used_at: number | null }>(
      'SELECT id, name, role, last_used_at FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL',
    );
    this.touch = database.sqlite.prepare<[number, string]>('UPDATE api_tokens SET last_used_at = ? WHERE id = ?');
    this.isActive = database.sqlite.prepare<[string], { one: number }>('SELECT 1 AS one FROM api_tokens WHERE id = ? AND revoked_at IS NULL');
  }

  /** Creates a token; the returned `token` is the only copy of the secret. */
  create(name: string, role: Role, token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`): { id: string; token: string; role: Role; name: string } {
    const id = randomUUID();
    this.db.insert(tables.apiTokens).values({ id, name, role, tokenHash: hashToken(token), createdAt: Date.now() }).run();
    return { id, token, role, name };
  }

  /** The operator a bearer token belongs to, or undefined for unknown/revoked tokens. */
  authenticate(token: string): Operator | undefined {
    const row = this.byHash.get(hashToken(token));
    if (!row) return undefined;
    const now = Date.now();
    if (row.last_used_at === null || now - row.last_used_at > LAST_USED_RESOLUTION_MS) this.touch.run(now, row.id);
    return { id: row.id, name: row.name, role: row.role, kind: 'token' };
  }

  list(): TokenSummary[] {
    return this.db
      .select()
      .from(tables.apiTokens)
      .orderBy(asc(tables.apiTokens.createdAt))
      .all()
      .map((r) => ({ id: r.id, name: r.name, role: r.role as Role, createdAt: r.createdAt, lastUsedAt: r.lastUsedAt, revokedAt: r.revokedAt }));
  }

  revoke(id: string): boolean {
    const res = this.db
      .update(tables.apiTokens)
      .set({ revokedAt: Date.now() })
      .where(and(eq(tables.apiTokens.id, id), isNull(tables.apiTokens.revokedAt)))
      .run();
    if (res.changes === 0) return false;
    for (const listener of this.revokedListeners) listener(id);
    return true;
  }

  /** Called after this service revokes a token (revocations by another process: see `revokedAmong`). */
  onRevoked(listener: (id: string) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  /** The ids among `ids` that are no longer active (revoked or deleted, possibly by the CLI). */
  revokedAmong(ids: readonly string[]): string[] {
    return ids.filter((id) => this.isActive.get(id) === undefined);
  }

  hasActiveAdmin(): boolean {
    return Boolean(
      this.db
        .select({ id: tables.apiTokens.id })
        .from(tables.apiTokens)
        .where(and(eq(tables.apiTokens.role, 'admin'), isNull(tables.apiTokens.revokedAt)))
        .get(),
    );
  }

  /**
   * First start: with no active admin token, creates one (from `preset` or random) and writes it
   * to `file` with mode 0600. The token itself is never logged; the caller logs the file path.
   * Returns the file path when a token was created.
   */
  bootstrapAdmin(file: string, preset?: string): string | undefined {
    if (this.hasActiveAdmin()) return undefined;
    const { token } = this.create('bootstrap-admin', 'admin', preset);
    mkdirSync(dirname(file), { recursive: true });
    if (existsSync(file)) chmodSync(file, 0o600);
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return file;
  }
}
