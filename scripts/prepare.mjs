// npm's prepare step (npm ci / npm install): builds the operator console when it can. Plain
// JavaScript, because it may run where tsx is absent (npm install --package-lock-only, a
// production install); then it says so and succeeds, and the core serves a "not built" page.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const missing = ['tsx', 'vite'].filter((name) => {
  try {
    require.resolve(`${name}/package.json`);
    return false;
  } catch {
    return true;
  }
});
if (missing.length > 0) {
  process.stderr.write(`console: ${missing.join(' and ')} not installed; not building the console (npm run build:web builds it)\n`);
  process.exit(0);
}
const build = spawnSync(process.execPath, ['--import', 'tsx', new URL('./build-console.ts', import.meta.url).pathname, '--if-stale'], { stdio: 'inherit' });
process.exit(build.status ?? 1);
