// What operator tokens store and how they are read back. The SQL lives behind this interface, in
// sqlite-store.ts and pg-store.ts. Every method returns a Promise: PostgreSQL answers over a socket,
// and the SQLite store (better-sqlite3 is synchronous) resolves at once with the same results.
import type { Role } from '../api/index.js';

export interface TokenRecord {
  id: string;
  name: string;
  role: Role;
  /** SHA-256 (hex) of the token: the token itself is never stored. */
  tokenHash: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** What authentication needs of an active (not revoked) token. */
export interface ActiveToken {
  id: string;
  name: string;
  role: Role;
  lastUsedAt: number | null;
}

export interface TokenStore {
  insert(token: Omit<TokenRecord, 'lastUsedAt' | 'revokedAt'>): Promise<void>;
  /** The active token with this hash, or undefined (unknown or revoked). */
  activeByHash(tokenHash: string): Promise<ActiveToken | undefined>;
  setLastUsed(id: string, at: number): Promise<void>;
  /** Every token, revoked ones too, oldest first (ties by id). */
  list(): Promise<Omit<TokenRecord, 'tokenHash'>[]>;
  /** Marks an active token revoked at `at`; false when it is unknown or already revoked. */
  revoke(id: string, at: number): Promise<boolean>;
  /** The ids among `ids` that are active (present and not revoked). */
  activeAmong(ids: readonly string[]): Promise<Set<string>>;
  hasActiveAdmin(): Promise<boolean>;
}
