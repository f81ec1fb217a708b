// What the users domain stores: accounts and their login sessions. The SQL lives behind this
// interface, in sqlite-store.ts and pg-store.ts. Every method returns a Promise: PostgreSQL answers
// over a socket, and the SQLite store (better-sqlite3 is synchronous) resolves at once.
import type { Role } from '../api/index.js';

export interface UserRecord {
  id: string;
  username: string;
  role: Role;
  passwordHash: string;
  createdAt: number;
  disabledAt: number | null;
  lastLoginAt: number | null;
}

export interface SessionRecord {
  /** SHA-256 (hex) of the cookie value; the value itself is never stored. */
  idHash: string;
  userId: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
  /** Absolute end (epoch ms). */
  expiresAt: number;
  source: string;
}

export interface UserChanges {
  role?: Role;
  passwordHash?: string;
  /** A time disables, null enables. */
  disabledAt?: number | null;
}

/** The unique username index refused an insert (two creations raced past the service's check). */
export class UsernameTakenError extends Error {
  override name = 'UsernameTakenError';
}

export interface UserStore {
  /** Rejects with UsernameTakenError when the name exists (whatever its case). */
  insertUser(user: UserRecord): Promise<void>;
  /** Case-insensitive. */
  userByName(username: string): Promise<UserRecord | undefined>;
  userById(id: string): Promise<UserRecord | undefined>;
  listUsers(): Promise<UserRecord[]>;
  /** Returns false when no such user. */
  updateUser(id: string, changes: UserChanges): Promise<boolean>;
  deleteUser(id: string): Promise<boolean>;
  setLastLogin(id: string, at: number): Promise<void>;

  insertSession(session: SessionRecord): Promise<void>;
  /** The session and its user, whatever their state (the service decides about expiry). */
  sessionByHash(idHash: string): Promise<{ session: SessionRecord; user: UserRecord } | undefined>;
  touchSession(idHash: string, at: number): Promise<void>;
  deleteSession(idHash: string): Promise<boolean>;
  /** Deletes the user's sessions except `keep`; returns the deleted id hashes. */
  deleteSessionsOf(userId: string, keep?: string): Promise<string[]>;
  /** Session id hashes of the user, oldest first. */
  sessionsOf(userId: string): Promise<string[]>;
  /** Which of `idHashes` still exist. */
  existingSessions(idHashes: readonly string[]): Promise<Set<string>>;
  /** Deletes sessions past their absolute end or idle since before `idleCutoff`; returns how many. */
  deleteExpiredSessions(now: number, idleCutoff: number): Promise<number>;
}
