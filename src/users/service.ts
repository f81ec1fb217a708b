// Console users and their login sessions: accounts with a role (as for tokens), scrypt password
// hashes, and server-side sessions with idle and absolute expiry. Anything that changes what a
// user may do (disable, role, password, delete) ends their sessions at once; listeners close the
// WebSockets those sessions opened.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Operator, Role } from '../api/index.js';
import { KdfGate } from './kdf-gate.js';
import { DEFAULT_SCRYPT, generatePassword, hashPassword, passwordProblem, verifyPassword, type ScryptParams } from './password.js';
import { UsernameTakenError, type SessionRecord, type UserRecord, type UserStore } from './store.js';

/** ASCII, so case-insensitive uniqueness is exact; no spaces or characters that need quoting. */
export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** The prefix of a session's key in OperatorSockets (token ids are UUIDs: no clash). */
const SOCKET_KEY_PREFIX = 'session:';

export interface UserSummary {
  id: string;
  username: string;
  role: Role;
  createdAt: number;
  disabledAt: number | null;
  lastLoginAt: number | null;
}

/** What a resolved session says about itself (the session id is never in it). */
export interface SessionView {
  user: { id: string; username: string; role: Role };
  csrfToken: string;
  expiresAt: number;
  idleExpiresAt: number;
  /** Key of the session's WebSockets in OperatorSockets. */
  socketKey: string;
  idHash: string;
}

export type LoginResult =
  | { ok: true; sessionId: string; session: SessionView }
  | { ok: false; reason: 'unknown_user' | 'wrong_password' | 'disabled' };

export class UserError extends Error {
  constructor(
    readonly code: 'bad_request' | 'conflict' | 'not_found',
    message: string,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

export interface UserServiceOptions {
  store: UserStore;
  /** A session unused this long ends. */
  idleMs: number;
  /** A session ends this long after login, used or not. */
  maxAgeMs: number;
  now?: () => number;
  scrypt?: ScryptParams;
  /** Sessions one user may hold; the oldest end beyond it. Default 20. */
  maxSessionsPerUser?: number;
  /** Password checks at once, and waiting (more: login refused with KdfBusyError). Default 2 / 64. */
  kdfConcurrency?: { running: number; waiting: number };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function summary(u: UserRecord): UserSummary {
  return { id: u.id, username: u.username, role: u.role, createdAt: u.createdAt, disabledAt: u.disabledAt, lastLoginAt: u.lastLoginAt };
}

export class UserService {
  readonly idleMs: number;
  readonly maxAgeMs: number;
  private readonly store: UserStore;
  private readonly now: () => number;
  private readonly scrypt: ScryptParams;
  private readonly maxSessions: number;
  /** Writing last_seen_at on every request would turn reads into writes; idle expiry is minutes. */
  private readonly touchResolutionMs: number;
  private readonly endedListeners = new Set<(socketKeys: string[]) => void>();
  /** Verified against for unknown usernames, so they take as long as a wrong password. */
  private dummyHash?: Promise<string>;
  private readonly kdf: KdfGate;

  constructor(opts: UserServiceOptions) {
    this.store = opts.store;
    this.idleMs = opts.idleMs;
    this.maxAgeMs = opts.maxAgeMs;
    this.now = opts.now ?? Date.now;
    this.scrypt = opts.scrypt ?? DEFAULT_SCRYPT;
    this.maxSessions = opts.maxSessionsPerUser ?? 20;
    this.touchResolutionMs = Math.min(60_000, Math.floor(opts.idleMs / 10));
    this.kdf = new KdfGate(opts.kdfConcurrency?.running ?? 2, opts.kdfConcurrency?.waiting ?? 64);
  }

  static usernameProblem(username: string): string | undefined {
    return USERNAME_PATTERN.test(username) ? undefined : 'a username is 1-64 characters: letters, digits and . _ @ - (starting with a letter or digit)';
  }

  /** Creates a user; without `password` one is generated and returned (the only copy). */
  async create(username: string, role: Role, password?: string): Promise<{ user: UserSummary; generatedPassword?: string }> {
    const nameProblem = UserService.usernameProblem(username);
    if (nameProblem) throw new UserError('bad_request', nameProblem);
    const generated = password === undefined ? generatePassword() : undefined;
    const plain = password ?? generated!;
    const problem = passwordProblem(plain);
    if (problem) throw new UserError('bad_request', problem);
    if (await this.store.userByName(username)) throw new UserError('conflict', `a user named ${username} exists (names are compared case-insensitively)`);
    const record: UserRecord = { id: randomUUID(), username, role, passwordHash: await hashPassword(plain, this.scrypt), createdAt: this.now(), disabledAt: null, lastLoginAt: null };
    try {
      await this.store.insertUser(record);
    } catch (err) {
      // Two creations raced past the check above: the unique index decides.
      if (err instanceof UsernameTakenError) throw new UserError('conflict', `a user named ${username} exists (names are compared case-insensitively)`);
      throw err;
    }
    return { user: summary(record), ...(generated ? { generatedPassword: generated } : {}) };
  }

  async list(): Promise<UserSummary[]> {
    return (await this.store.listUsers()).map(summary);
  }

  async get(id: string): Promise<UserSummary | undefined> {
    const u = await this.store.userById(id);
    return u && summary(u);
  }

  async byName(username: string): Promise<UserSummary | undefined> {
    const u = await this.store.userByName(username);
    return u && summary(u);
  }

  /**
   * Changes role, password and/or disabled state. Any effective change ends all the user's
   * sessions (they log in again with what now applies). Undefined when there is no such user.
   */
  async update(id: string, changes: { role?: Role; password?: string; disabled?: boolean }): Promise<UserSummary | undefined> {
    const before = await this.store.userById(id);
    if (!before) return undefined;
    if (changes.password !== undefined) {
      const problem = passwordProblem(changes.password);
      if (problem) throw new UserError('bad_request', problem);
    }
    const passwordHash = changes.password === undefined ? undefined : await hashPassword(changes.password, this.scrypt);
    const disabledAt = changes.disabled === undefined ? undefined : changes.disabled ? (before.disabledAt ?? this.now()) : null;
    if (!(await this.store.updateUser(id, { role: changes.role, passwordHash, disabledAt }))) return undefined;
    const after = (await this.store.userById(id))!;
    const endsSessions = after.role !== before.role || passwordHash !== undefined || (after.disabledAt !== null && before.disabledAt === null);
    if (endsSessions) this.endSessions(await this.store.deleteSessionsOf(id));
    return summary(after);
  }

  /** Deletes the user and their sessions. */
  async delete(id: string): Promise<boolean> {
    const sessions = await this.store.sessionsOf(id);
    if (!(await this.store.deleteUser(id))) return false;
    // The foreign key deleted the rows; their sockets still need closing.
    this.endSessions(sessions);
    return true;
  }

  /**
   * Checks a username and password and opens a session. Unknown names, wrong passwords and
   * disabled accounts each cost one KDF run, so their answers take the same time.
   */
  async login(username: string, password: string, source: string): Promise<LoginResult> {
    const user = USERNAME_PATTERN.test(username) ? await this.store.userByName(username) : undefined;
    if (!user) {
      const dummy = await (this.dummyHash ??= hashPassword(generatePassword(), this.scrypt));
      await this.kdf.run(() => verifyPassword(password, dummy, this.scrypt));
      return { ok: false, reason: 'unknown_user' };
    }
    const { ok, needsRehash } = await this.kdf.run(() => verifyPassword(password, user.passwordHash, this.scrypt));
    if (!ok) return { ok: false, reason: 'wrong_password' };
    if (user.disabledAt !== null) return { ok: false, reason: 'disabled' };
    // Raised KDF parameters reach old hashes at their owner's next login.
    if (needsRehash) await this.store.updateUser(user.id, { passwordHash: await hashPassword(password, this.scrypt) });
    const now = this.now();
    await this.store.setLastLogin(user.id, now);
    const existing = await this.store.sessionsOf(user.id);
    if (existing.length >= this.maxSessions) {
      const oldest = existing.slice(0, existing.length - this.maxSessions + 1);
      for (const h of oldest) await this.store.deleteSession(h);
      this.endSessions(oldest);
    }
    const sessionId = randomBytes(32).toString('base64url');
    const record: SessionRecord = {
      idHash: sha256(sessionId),
      userId: user.id,
      csrfToken: randomBytes(32).toString('base64url'),
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + this.maxAgeMs,
      source,
    };
    await this.store.insertSession(record);
    return { ok: true, sessionId, session: this.view(record, user) };
  }

  /** The live session a cookie value names (its idle clock restarted), or undefined. */
  async resolveSession(sessionId: string): Promise<SessionView | undefined> {
    const idHash = sha256(sessionId);
    const found = await this.store.sessionByHash(idHash);
    if (!found) return undefined;
    const { session, user } = found;
    const now = this.now();
    if (now >= session.expiresAt || now - session.lastSeenAt >= this.idleMs || user.disabledAt !== null) {
      await this.store.deleteSession(idHash);
      this.endSessions([idHash]);
      return undefined;
    }
    if (now - session.lastSeenAt >= this.touchResolutionMs) {
      await this.store.touchSession(idHash, now);
      session.lastSeenAt = now;
    }
    return this.view(session, user);
  }

  /** Ends the session a cookie value names, if any (a new login replaces the browser's old one). */
  logoutCookie(sessionId: string): Promise<boolean> {
    return this.logout(sha256(sessionId));
  }

  /** Ends one session (logout). */
  async logout(idHash: string): Promise<boolean> {
    const gone = await this.store.deleteSession(idHash);
    if (gone) this.endSessions([idHash]);
    return gone;
  }

  /**
   * A logged-in user changes their own password: the current one must be right. Their other
   * sessions end; this one stays.
   */
  async changeOwnPassword(session: SessionView, current: string, next: string): Promise<'changed' | 'wrong_password'> {
    const user = await this.store.userById(session.user.id);
    if (!user) return 'wrong_password';
    const problem = passwordProblem(next);
    if (problem) throw new UserError('bad_request', problem);
    const { ok } = await this.kdf.run(() => verifyPassword(current, user.passwordHash, this.scrypt));
    if (!ok) return 'wrong_password';
    await this.store.updateUser(user.id, { passwordHash: await hashPassword(next, this.scrypt) });
    this.endSessions(await this.store.deleteSessionsOf(user.id, session.idHash));
    return 'changed';
  }

  /** Called with the socket keys of sessions this service ended. */
  onSessionsEnded(listener: (socketKeys: string[]) => void): () => void {
    this.endedListeners.add(listener);
    return () => this.endedListeners.delete(listener);
  }

  static isSocketKey(key: string): boolean {
    return key.startsWith(SOCKET_KEY_PREFIX);
  }

  /**
   * Among socket keys of open WebSockets, those whose session has ended: deleted (possibly by the
   * CLI in another process), expired, or its user disabled.
   */
  async endedAmong(socketKeys: readonly string[]): Promise<string[]> {
    const now = this.now();
    const ended: string[] = [];
    for (const key of socketKeys) {
      const found = await this.store.sessionByHash(key.slice(SOCKET_KEY_PREFIX.length));
      if (!found || now >= found.session.expiresAt || now - found.session.lastSeenAt >= this.idleMs || found.user.disabledAt !== null) ended.push(key);
    }
    return ended;
  }

  /** Deletes expired sessions; returns how many. */
  sweepExpired(): Promise<number> {
    const now = this.now();
    return this.store.deleteExpiredSessions(now, now - this.idleMs);
  }

  /** The operator a session acts as: every route's role check applies to it unchanged. */
  static operatorOf(session: SessionView): Operator {
    return { id: session.user.id, name: session.user.username, role: session.user.role, kind: 'user' };
  }

  private view(session: SessionRecord, user: UserRecord): SessionView {
    return {
      user: { id: user.id, username: user.username, role: user.role },
      csrfToken: session.csrfToken,
      expiresAt: session.expiresAt,
      idleExpiresAt: Math.min(session.lastSeenAt + this.idleMs, session.expiresAt),
      socketKey: SOCKET_KEY_PREFIX + session.idHash,
      idHash: session.idHash,
    };
  }

  private endSessions(idHashes: string[]): void {
    if (idHashes.length === 0) return;
    const keys = idHashes.map((h) => SOCKET_KEY_PREFIX + h);
    for (const listener of this.endedListeners) listener(keys);
  }
}
