#!/usr/bin/env node
// Entry point of the `apiary` command. Runs the compiled CLI when `npm run build` produced dist/,
// otherwise the TypeScript sources through tsx, so a fresh checkout works without a build step.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
