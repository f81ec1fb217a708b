// Serves the operator console (the single-page app built from web/) at `/`: hashed assets cached
// forever, index.html never cached, and every other non-API path answered with index.html so the
// app's own router can show it (history fallback). Nothing here is behind a token: the app logs in
// through the public session API, and everything it shows comes from the documented REST API.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { loadConsoleFiles, type ConsoleFile } from './static.js';

export interface ConsoleRoutesOptions {
  /** The built console (web/dist). When it holds no index.html, `/` explains how to build it. */
  dir: string;
}

/**
 * Paths that belong to the API and the core's other endpoints: an unknown one answers the usual
 * JSON 404, never the console's HTML (a client of the API must not get a 200 page for a typo).
 */
const reserved = /^\/(api|docs|metrics|healthz|readyz|ws)(\/|$|\?)/;

/** A Host header we are willing to echo into the CSP (anything else gets plain 'self'). */
const safeHost = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * Strict CSP: code, styles and data only from this origin, no inline script, no eval, no framing.
 * connect-src names the WebSocket origin explicitly because some browsers do not count ws(s): as
 * 'self' (CSP Level 2).
 */
export function contentSecurityPolicy(host: string | undefined): string {
  const ws = host && safeHost.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${ws}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function send(request: FastifyRequest, reply: FastifyReply, file: ConsoleFile, cache: string) {
  reply
    .header('content-type', file.type)
    .header('cache-control', cache)
    .header('etag', file.etag)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('vary', 'accept-encoding');
  if (file.type.startsWith('text/html')) {
    reply.header('content-security-policy', contentSecurityPolicy(request.headers.host)).header('x-frame-options', 'DENY');
  }
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  const gzip = file.gzip && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
  if (gzip) reply.header('content-encoding', 'gzip');
  return reply.send(gzip ? file.gzip : file.body);
}

export async function consoleRoutes(app: FastifyInstance, opts: ConsoleRoutesOptions): Promise<void> {
  const files = loadConsoleFiles(opts.dir);
  const index = files.get('/index.html');
  if (!index) app.log.warn({ dir: opts.dir }, 'the console is not built; `npm run build:web` builds it (npm ci and npm start do too)');

  const notBuilt = (reply: FastifyReply) =>
    reply
      .code(503)
      .type('text/plain; charset=utf-8')
      .send('The Apiary console is not built. Run `npm run build:web` (npm ci and npm start build it too), then restart.\n');

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!;
    if (reserved.test(path)) {
      return reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${path}` });
    }
    const file = path === '/index.html' ? undefined : files.get(path);
    if (file) return send(request, reply, file, file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    // A missing hashed asset is a stale page asking for an old build: a 404, not the app's HTML.
    if (path.startsWith('/assets/')) return reply.code(404).send({ error: 'not_found', message: `no console asset ${path}` });
    if (!index) return notBuilt(reply);
    return send(request, reply, index, 'no-cache');
  };
  // Static routes (every API route) win over this wildcard in fastify's router.
  app.get('/', { schema: { hide: true } }, handler);
  app.get('/*', { schema: { hide: true } }, handler);
}
