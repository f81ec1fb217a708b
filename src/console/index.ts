import { fileURLToPath } from 'node:url';

export { consoleRoutes, contentSecurityPolicy, type ConsoleRoutesOptions } from './routes.js';

/** Where `npm run build:web` puts the console: web/dist at the package root (from src/ or dist/ alike). */
export const defaultConsoleDir = fileURLToPath(new URL('../../web/dist/', import.meta.url));
