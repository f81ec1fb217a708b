#!/usr/bin/env node
// Entry point of the `apiary` command. Runs the compiled CLI when `npm run build` produced dist/
// and no file under src/ changed since, otherwise the TypeScript sources through tsx: a fresh
// checkout works without a build step, and a build left behind never runs older code than the
// sources beside it (an install without src/, like the container image, always runs dist/).
import { existsSync, readdirSync, statSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
const sources = new URL('../src/', import.meta.url);

/** Newest modification time of a file under dir (a few ms for the ~250 files of src/). */
function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs);
  }
  return newest;
}

function compiledIsCurrent() {
  if (!existsSync(compiled)) return false;
  if (!existsSync(sources)) return true;
  return statSync(compiled).mtimeMs >= newestMtime(sources);
}

if (compiledIsCurrent()) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
