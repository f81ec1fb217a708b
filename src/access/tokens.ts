// Operator API tokens. A token is shown once when created; the database keeps only its SHA-256,
// so a leaked database does not leak working credentials.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Operator, Role } from '../api/index.js';
import type { TokenStore } from './store.js';

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
  private readonly revokedListeners = new Set<(id: string) => void>();

  constructor(private readonly store: TokenStore) {}

  /** Creates a token; the returned `token` is the only copy of the secret. */
  async create(name: string, role: Role, token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`): Promise<{ id: string; token: string; role: Role; name: string }> {
    const id = randomUUID();
    await this.store.insert({ id, name, role, tokenHash: hashToken(token), createdAt: Date.now() });
    return { id, token, role, name };
  }

  /** The operator a bearer token belongs to, or undefined for unknown/revoked tokens. */
  async authenticate(token: string): Promise<Operator | undefined> {
    const row = await this.store.activeByHash(hashToken(token));
    if (!row) return undefined;
    const now = Date.now();
    if (row.lastUsedAt === null || now - row.lastUsedAt > LAST_USED_RESOLUTION_MS) await this.store.setLastUsed(row.id, now);
    return { id: row.id, name: row.name, role: row.role, kind: 'token' };
  }

  list(): Promise<TokenSummary[]> {
    return this.store.list();
  }

  async revoke(id: string): Promise<boolean> {
    if (!(await this.store.revoke(id, Date.now()))) return false;
    for (const listener of this.revokedListeners) listener(id);
    return true;
  }

  /** Called after this service revokes a token (revocations by another process: see `revokedAmong`). */
  onRevoked(listener: (id: string) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  /** The ids among `ids` that are no longer active (revoked or deleted, possibly by the CLI). */
  async revokedAmong(ids: readonly string[]): Promise<string[]> {
    const active = await this.store.activeAmong(ids);
    return ids.filter((id) => !active.has(id));
  }

  hasActiveAdmin(): Promise<boolean> {
    return this.store.hasActiveAdmin();
  }

  /**
   * First start: with no active admin token, creates one (from `preset` or random) and writes it
   * to `file` with mode 0600. The token itself is never logged; the caller logs the file path.
   * Returns the file path when a token was created.
   */
  async bootstrapAdmin(file: string, preset?: string): Promise<string | undefined> {
    if (await this.hasActiveAdmin()) return undefined;
    const { token } = await this.create('bootstrap-admin', 'admin', preset);
    mkdirSync(dirname(file), { recursive: true });
    if (existsSync(file)) chmodSync(file, 0o600);
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return file;
  }
}
