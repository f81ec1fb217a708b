export { TokenService } from './tokens.js';
export type { TokenSummary } from './tokens.js';
export { runTokenCli } from './cli.js';
export { tokenRoutes } from './routes.js';
