// Console users (issue 14): accounts with a role, scrypt password hashes, server-side sessions with
// idle and absolute expiry, login rate limiting, the session and admin routes, and `apiary user`.
export { UserService, UserError, USERNAME_PATTERN } from './service.js';
export type { SessionView, UserSummary, LoginResult, UserServiceOptions } from './service.js';
export type { UserStore, UserRecord, SessionRecord, UserChanges } from './store.js';
export { UsernameTakenError } from './store.js';
export { SqliteUserStore } from './sqlite-store.js';
export { PgUserStore } from './pg-store.js';
export { LoginLimiter, SharedLoginLimiter } from './login-limiter.js';
export type { LoginLimiterOptions, LoginLimits, SharedFailureWindow } from './login-limiter.js';
export { hashPassword, verifyPassword, generatePassword, passwordProblem, DEFAULT_SCRYPT, MIN_PASSWORD_LENGTH } from './password.js';
export type { ScryptParams } from './password.js';
export { sessionRoutes, SESSION_COOKIE } from './session-routes.js';
export type { LoginAttempt, SessionRoutesOptions } from './session-routes.js';
export { userRoutes } from './user-routes.js';
export { runUserCli } from './cli.js';
