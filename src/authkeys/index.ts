export { AuthkeyService, authkeyInputSchema, referenceAuthFileSchema, generateHpfeedsSecret } from './service.js';
export type { AuthkeyInput, AuthkeySummary, AuthkeyServiceOptions } from './service.js';
export { runAuthkeyCli } from './cli.js';
export { authkeyRoutes } from './routes.js';
