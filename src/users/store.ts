// What the users domain stores: accounts and their login sessions. The SQL lives in sqlite-store.ts
// behind this interface, so a PostgreSQL implementation can take its place.
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

export interface UserStore {
  insertUser(user: UserRecord): void;
  /** Case-insensitive. */
  userByName(username: string): UserRecord | undefined;
  userById(id: string): UserRecord | undefined;
  listUsers(): UserRecord[];
  /** Returns false when no such user. */
  updateUser(id: string, changes: UserChanges): boolean;
  deleteUser(id: string): boolean;
  setLastLogin(id: string, at: number): void;

  insertSession(session: SessionRecord): void;
  /** The session and its user, whatever their state (the service decides about expiry). */
  sessionByHash(idHash: string): { session: SessionRecord; user: UserRecord } | undefined;
  touchSession(idHash: string, at: number): void;
  deleteSession(idHash: string): boolean;
  /** Deletes the user's sessions except `keep`; returns the deleted id hashes. */
  deleteSessionsOf(userId: string, keep?: string): string[];
  /** Session id hashes of the user, oldest first. */
  sessionsOf(userId: string): string[];
  /** Which of `idHashes` still exist. */
  existingSessions(idHashes: readonly string[]): Set<string>;
  /** Deletes sessions past their absolute end or idle since before `idleCutoff`; returns how many. */
  deleteExpiredSessions(now: number, idleCutoff: number): number;
}
