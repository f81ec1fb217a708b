export { AuthkeyService, authkeyInputSchema, referenceAuthFileSchema, generateHpfeedsSecret } from './service.js';
export type { AuthkeyInput, AuthkeySummary, AuthkeyServiceOptions } from './service.js';
export type { AuthkeyRecord, AuthkeyStore } from './store.js';
export { authkeyVersion } from './store.js';
export { SqliteAuthkeyStore } from './sqlite-store.js';
export { PgAuthkeyStore } from './pg-store.js';
export { runAuthkeyCli } from './cli.js';
export { authkeyRoutes } from './routes.js';
