// The built console (web/dist) held in memory: a few hundred KB of files, read once at start, each
// kept with its gzip form and ETag so a request costs a map lookup and a write.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';

export interface ConsoleFile {
  body: Buffer;
  gzip?: Buffer;
  type: string;
  etag: string;
  /** Vite names files under assets/ by their content hash: they never change, so they cache forever. */
  immutable: boolean;
}

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};
const compressible = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg', '.txt', '.map']);

/** Every file under `dir` by its URL path (`/index.html`, `/assets/index-3f9a.js`); empty when the console is not built. */
export function loadConsoleFiles(dir: string): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  if (!existsSync(join(dir, 'index.html'))) return files;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      // .vite/manifest.json is build metadata, not part of the app.
      if (name.startsWith('.')) continue;
      const full = join(d, name);
      if (statSync(full).isDirectory()) {
        walk(full);
        continue;
      }
      const ext = extname(name).toLowerCase();
      const path = '/' + relative(dir, full).split(sep).join('/');
      const body = readFileSync(full);
      files.set(path, {
        body,
        // Only worth it past a packet or so; gzip of a tiny file can be larger than the file.
        gzip: compressible.has(ext) && body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined,
        type: types[ext] ?? 'application/octet-stream',
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
        immutable: path.startsWith('/assets/'),
      });
    }
  };
  walk(dir);
  return files;
}
