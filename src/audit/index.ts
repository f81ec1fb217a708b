// Audit log: every operator action through the API (who, when, from where, what, on what, with
// the request body's secrets masked), recorded by one fastify hook, read by admins, kept for
// AUDIT_RETENTION_DAYS.
export type { AuditEntry, AuditQuery, AuditStore, NewAuditEntry } from './store.js';
export { SqliteAuditStore } from './sqlite-store.js';
export { PgAuditStore } from './pg-store.js';
export { installAuditRecorder } from './recorder.js';
export type { AuditRecorderOptions } from './recorder.js';
export { AuditRetention } from './retention.js';
export type { AuditRetentionOptions } from './retention.js';
export { auditRoutes, MAX_AUDIT_PAGE } from './routes.js';
export { actionFor, targetFor, maskedChanges, MASK, SECRET_KEY } from './describe.js';
