// Builds the operator console (web/ -> web/dist) with Vite. Run by `npm ci` (prepare), by
// `npm start` (only when web/dist is missing or older than its sources) and by `npm run build:web`.
// Where there is nothing to build with (a production install without dev dependencies, or a
// Docker stage without web/), it says so and succeeds: the core then serves a page explaining it.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const webDir = join(root, 'web');
export const distDir = join(webDir, 'dist');

function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const name of readdirSync(path)) if (name !== 'dist' && name !== 'node_modules') max = Math.max(max, newest(join(path, name)));
  return max;
}

/** True when web/dist is missing or older than web/ sources or the lock file. */
export function consoleStale(): boolean {
  const built = join(distDir, 'index.html');
  if (!existsSync(built)) return true;
  return Math.max(newest(webDir), newest(join(root, 'package-lock.json'))) > statSync(built).mtimeMs;
}

/** Builds the console; returns false (with a note on stderr) when it cannot be built here. */
export async function buildConsole(opts: { ifStale?: boolean; quiet?: boolean } = {}): Promise<boolean> {
  if (!existsSync(join(webDir, 'index.html'))) {
    process.stderr.write('console: no web/ sources here; not building the console\n');
    return false;
  }
  if (opts.ifStale && !consoleStale()) return true;
  let vite: typeof import('vite');
  try {
    vite = await import('vite');
  } catch {
    process.stderr.write('console: vite is not installed (production install?); not building the console\n');
    return false;
  }
  const started = Date.now();
  await vite.build({ configFile: join(webDir, 'vite.config.ts'), logLevel: opts.quiet ? 'error' : 'warn' });
  if (!opts.quiet) process.stderr.write(`console: built web/dist in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildConsole({ ifStale: process.argv.includes('--if-stale') }).then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`console: build failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
