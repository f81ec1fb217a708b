// First-load size of the operator console: builds web/ (production), then sums the gzipped
// JavaScript and CSS a browser must fetch before it can show (a) the login page / app shell and
// (b) the Overview page (the page at `/`, with the world map). The budget is 300 KB of gzipped JS.
// Run: npm run bench:console-size   (prints the build time too: median of 3 builds)
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildConsole, distDir } from '../scripts/build-console.js';

const BUDGET_GZ_JS = 300 * 1024;

interface Chunk {
  file: string;
  src?: string;
  isEntry?: boolean;
  imports?: string[];
  dynamicImports?: string[];
  css?: string[];
}

const builds: number[] = [];
for (let i = 0; i < 3; i++) {
  const started = performance.now();
  await buildConsole({ quiet: true });
  builds.push(performance.now() - started);
}
const manifest = JSON.parse(readFileSync(join(distDir, '.vite', 'manifest.json'), 'utf8')) as Record<string, Chunk>;
const gz = (file: string) => gzipSync(readFileSync(join(distDir, file)), { level: 9 }).length;
const raw = (file: string) => statSync(join(distDir, file)).size;

/** A chunk and everything it imports statically (what the browser fetches before running it). */
function closure(keys: string[], seen = new Set<string>()): Set<string> {
  for (const k of keys) {
    if (seen.has(k)) continue;
    seen.add(k);
    closure(manifest[k]?.imports ?? [], seen);
  }
  return seen;
}
const keyOf = (srcSuffix: string) => {
  const k = Object.keys(manifest).find((key) => key.endsWith(srcSuffix));
  if (!k) throw new Error(`no chunk for ${srcSuffix}`);
  return k;
};

function measure(label: string, keys: Set<string>) {
  const js = [...keys].map((k) => manifest[k]!.file);
  const css = [...new Set([...keys].flatMap((k) => manifest[k]!.css ?? []))];
  const jsGz = js.reduce((s, f) => s + gz(f), 0);
  const jsRaw = js.reduce((s, f) => s + raw(f), 0);
  const cssGz = css.reduce((s, f) => s + gz(f), 0);
  console.log(`${label.padEnd(34)} JS ${(jsGz / 1024).toFixed(1).padStart(6)} KB gzip (${(jsRaw / 1024).toFixed(0)} KB raw, ${js.length} files)  CSS ${(cssGz / 1024).toFixed(1)} KB gzip`);
  return jsGz;
}

const entry = Object.keys(manifest).find((k) => manifest[k]!.isEntry)!;
const shell = closure([entry]);
const overview = closure([keyOf('pages/overview/overview-page.tsx'), keyOf('components/world-map.tsx')], new Set(shell));
const events = closure([keyOf('pages/events/events-page.tsx')], new Set(shell));
console.log(`console build: median ${(builds.sort((a, b) => a - b)[1]! / 1000).toFixed(2)} s of 3`);
measure('login page / app shell', shell);
const first = measure('first load of / (overview + map)', overview);
measure('first load of /events', events);
let all = 0;
for (const c of Object.values(manifest)) if (c.file.endsWith('.js')) all += gz(c.file);
console.log(`${'all pages'.padEnd(34)} JS ${(all / 1024).toFixed(1).padStart(6)} KB gzip`);
console.log(`budget: ${(BUDGET_GZ_JS / 1024).toFixed(0)} KB gzipped JS for the first load: ${first <= BUDGET_GZ_JS ? 'within' : 'OVER'}`);
if (first > BUDGET_GZ_JS) process.exitCode = 1;
