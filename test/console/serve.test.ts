// The console's static serving: hashed assets cached forever, index.html never, the history
// fallback for app paths only, a strict CSP, gzip and ETags; API paths keep their JSON 404.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createHttpServer } from '../../src/api/index.js';
import { consoleRoutes, contentSecurityPolicy } from '../../src/console/index.js';
import { tempDir } from '../helpers/tmp.js';

const dist = tempDir('apiary-console-');
const indexHtml = '<!doctype html><title>console</title><script type="module" src="/assets/index-AbC123.js"></script>';
const bigJs = `console.log(${JSON.stringify('x'.repeat(5000))});`;

async function server(dir: string): Promise<FastifyInstance> {
  const app = await createHttpServer({ logger: false, authenticate: () => undefined });
  app.get('/api/v1/things', { config: { role: 'viewer' } }, async () => ({ things: [] }));
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.register(consoleRoutes, { dir });
  await app.ready();
  return app;
}

describe('console static serving', () => {
  let app: FastifyInstance;
  before(async () => {
    mkdirSync(join(dist.path, 'assets'), { recursive: true });
    writeFileSync(join(dist.path, 'index.html'), indexHtml);
    writeFileSync(join(dist.path, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    writeFileSync(join(dist.path, 'assets', 'index-AbC123.js'), bigJs);
    app = await server(dist.path);
  });
  after(async () => {
    await app?.close();
    dist.cleanup();
  });

  it('serves index.html at / with no-cache and a strict CSP naming the WebSocket origin', async () => {
    const res = await app.inject({ method: 'GET', url: '/', headers: { host: 'core.example:8080' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, indexHtml);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /img-src 'self' data:/);
    assert.match(csp, /connect-src 'self' ws:\/\/core\.example:8080 wss:\/\/core\.example:8080/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  });

  it('answers app paths with index.html (history fallback), also with a query', async () => {
    for (const url of ['/nodes', '/nodes/edge-1', '/events?mode=search&node=a', '/attackers/81.2.69.142']) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.equal(res.body, indexHtml, url);
      assert.equal(res.headers['cache-control'], 'no-cache', url);
    }
  });

  it('serves hashed assets immutable for a year, gzipped when asked, with a working ETag', async () => {
    const plain = await app.inject({ method: 'GET', url: '/assets/index-AbC123.js' });
    assert.equal(plain.statusCode, 200);
    assert.equal(plain.body, bigJs);
    assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.match(String(plain.headers['content-type']), /^text\/javascript/);
    assert.equal(plain.headers['content-encoding'], undefined);
    const gz = await app.inject({ method: 'GET', url: '/assets/index-AbC123.js', headers: { 'accept-encoding': 'gzip, br' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(gz.rawPayload.length < bigJs.length / 10);
    assert.equal(gunzipSync(gz.rawPayload).toString(), bigJs);
    const again = await app.inject({ method: 'GET', url: '/assets/index-AbC123.js', headers: { 'if-none-match': String(plain.headers.etag) } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
  });

  it('serves other root files uncached and answers a missing asset 404 (not the HTML)', async () => {
    const icon = await app.inject({ method: 'GET', url: '/favicon.svg' });
    assert.equal(icon.statusCode, 200);
    assert.equal(icon.headers['content-type'], 'image/svg+xml');
    assert.equal(icon.headers['cache-control'], 'no-cache');
    const missing = await app.inject({ method: 'GET', url: '/assets/index-old999.js' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error, 'not_found');
  });

  it('leaves API and health routes alone and keeps JSON 404s for unknown API paths', async () => {
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).json().status, 'ok');
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/things' })).statusCode, 401);
    for (const url of ['/api/v1/nope', '/api', '/metrics/x', '/ws/other', '/docs/nope/x']) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().error, 'not_found', url);
    }
    const post = await app.inject({ method: 'POST', url: '/nodes' });
    assert.equal(post.statusCode, 404);
    assert.equal(post.json().error, 'not_found');
  });

  it('never echoes an odd Host header into the CSP', () => {
    assert.equal(contentSecurityPolicy('evil.example; script-src *').includes('evil'), false);
    assert.match(contentSecurityPolicy('[::1]:8080'), /ws:\/\/\[::1\]:8080/);
  });

  it('explains how to build the console when web/dist is empty, and still serves the API', async () => {
    const empty = tempDir('apiary-console-empty-');
    const bare = await server(empty.path);
    try {
      const res = await bare.inject({ method: 'GET', url: '/' });
      assert.equal(res.statusCode, 503);
      assert.match(res.body, /npm run build:web/);
      assert.equal((await bare.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    } finally {
      await bare.close();
      empty.cleanup();
    }
  });
});
