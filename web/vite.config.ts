// Build of the operator console: `npm run build:web` writes web/dist, which the core serves at `/`
// (src/console). Everything is bundled: no CDN, no runtime fetch outside this origin.
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  // React 19's automatic JSX runtime, transformed by Vite's own oxc (no React plugin needed: the
  // console has no dev-server hot reload to speak of, only production builds are served).
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The preload polyfill would be an inline script, which the CSP forbids; every browser the
    // console targets supports modulepreload.
    modulePreload: { polyfill: false },
    // Inlined assets become data: URLs; fine for img-src, but keep fonts/images as files.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    // dist/.vite/manifest.json: the chunk graph, read by bench/console-size.ts (not served).
    manifest: true,
    chunkSizeWarningLimit: 600,
    rolldownOptions: {
      // React Query marks its modules "use client" for server-component bundlers; meaningless here.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
  },
  server: {
    // `npm run dev:web` against a core on :8080 (cookies are same-origin through the proxy).
    proxy: {
      '/api': { target: 'http://127.0.0.1:8080', ws: true },
      '/docs': 'http://127.0.0.1:8080',
      '/metrics': 'http://127.0.0.1:8080',
    },
  },
});
