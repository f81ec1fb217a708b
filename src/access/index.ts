export { TokenService } from './tokens.js';
export type { TokenSummary } from './tokens.js';
export type { ActiveToken, TokenRecord, TokenStore } from './store.js';
export { SqliteTokenStore } from './sqlite-store.js';
export { PgTokenStore } from './pg-store.js';
export { runTokenCli } from './cli.js';
export { tokenRoutes } from './routes.js';
