import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { once } from 'node:events';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { ApiError, createHttpServer, limitConnections, redactUrl } from '../../src/api/index.js';

describe('http server: roles, errors, OpenAPI', () => {
  let app: FastifyInstance;
  before(async () => {
    const tokens: Record<string, 'viewer' | 'operator' | 'admin'> = { v: 'viewer', o: 'operator', a: 'admin' };
    app = await createHttpServer({
      authenticate: (t) => (tokens[t] ? { id: t, name: t, role: tokens[t] } : undefined),
    });
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get('/public', async () => ({ ok: true }));
    r.get(
      '/things/:n',
      { schema: { params: z.object({ n: z.coerce.number().int() }), response: { 200: z.object({ n: z.number(), by: z.string() }) } }, config: { role: 'viewer' } },
      async (req) => ({ n: req.params.n, by: req.operator!.name }),
    );
    r.post('/things', { schema: { body: z.object({ name: z.string().min(1) }) }, config: { role: 'operator' } }, async (req, reply) =>
      reply.code(201).send({ name: req.body.name }),
    );
    r.delete('/things/:n', { config: { role: 'admin' } }, async () => {
      throw new ApiError(404, 'not_found', 'no such thing');
    });
    await app.ready();
  });
  after(() => app.close());

  it('public routes need no token', async () => {
    const res = await app.inject({ url: '/public' });
    assert.equal(res.statusCode, 200);
  });
  it('answers 401 without or with a bad token, 403 with too low a role', async () => {
    assert.equal((await app.inject({ url: '/things/1' })).json().error, 'unauthorized');
    assert.equal((await app.inject({ url: '/things/1', headers: { authorization: 'Bearer nope' } })).statusCode, 401);
    const res = await app.inject({ method: 'POST', url: '/things', headers: { authorization: 'Bearer v' }, payload: { name: 'x' } });
    assert.equal(res.statusCode, 403);
    assert.match(res.json().message, /needs operator/);
  });
  it('higher roles include lower ones; a query token is refused outside WebSocket upgrades', async () => {
    const res = await app.inject({ url: '/things/7', headers: { authorization: 'bearer a' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { n: 7, by: 'a' });
    const query = await app.inject({ url: '/things/7?access_token=a' });
    assert.equal(query.statusCode, 401);
    assert.match(query.json().message, /only on WebSocket upgrades/);
    const post = await app.inject({ method: 'POST', url: '/things', headers: { authorization: 'Bearer a' }, payload: { name: 'x' } });
    assert.equal(post.statusCode, 201);
  });
  it('validation errors are 400 with a precise message', async () => {
    const res = await app.inject({ method: 'POST', url: '/things', headers: { authorization: 'Bearer o' }, payload: { name: '' } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, 'bad_request');
    assert.match(res.json().message, /body\/name/);
  });
  it('ApiError becomes {error, message} with its status; unknown routes 404', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/things/1', headers: { authorization: 'Bearer a' } });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { error: 'not_found', message: 'no such thing' });
    assert.equal((await app.inject({ url: '/missing?x=1' })).json().message, 'no route GET /missing');
  });
  it('OpenAPI is generated from the zod schemas', () => {
    const spec = app.swagger() as { paths: Record<string, Record<string, { parameters?: { name: string }[] }>> };
    assert.ok(spec.paths['/things/{n}']?.get);
    assert.equal(spec.paths['/things/{n}']!.get!.parameters![0]!.name, 'n');
  });
  it('token query parameters are redacted from logged URLs', () => {
    assert.equal(redactUrl('/x?a=1&access_token=secret&b=2'), '/x?a=1&access_token=[redacted]&b=2');
    for (const name of ['access%5Ftoken', 'access%5ftoken', 'ACCESS_TOKEN', '%61ccess_token', 'access_token%00', 'token', 'api%5Fkey', 'secret']) {
      const logged = redactUrl(`/x?${name}=s3cr3t&b=2`);
      assert.ok(!logged.includes('s3cr3t'), `${name}: ${logged}`);
      assert.match(logged, /&b=2$/);
    }
    assert.equal(redactUrl('/x?access_token=%zz&y'), '/x?access_token=[redacted]&y');
    assert.equal(redactUrl('/x?%zz=1'), '/x?%zz=1');
    assert.equal(redactUrl('/plain'), '/plain');
  });
});

describe('http server: connection cap', () => {
  it('refuses connections beyond maxConnections, counts them and keeps serving the others', async () => {
    const app = await createHttpServer({ maxConnections: 2 });
    const registry = new Registry();
    limitConnections(app, registry);
    app.get('/ok', async () => ({ ok: true }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = connect(port, '127.0.0.1');
        await once(s, 'connect');
        held.push(s);
      }
      const extra = connect(port, '127.0.0.1');
      held.push(extra);
      extra.on('error', () => {});
      await Promise.race([once(extra, 'close'), new Promise((_, rej) => setTimeout(() => rej(new Error('extra connection not refused')), 5000))]);
      const dropped = (await registry.getSingleMetric('apiary_http_connections_dropped_total')!.get()).values.find((v) => v.labels.cap === 'total')!.value;
      assert.equal(dropped, 1);
      held[0]!.destroy();
      await once(held[0]!, 'close');
      const deadline = Date.now() + 5000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        status = await fetch(`http://127.0.0.1:${port}/ok`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
      }
      assert.equal(status, 200);
    } finally {
      for (const s of held) s.destroy();
      await app.close();
    }
  });

  it('caps connections per remote address', async () => {
    const app = await createHttpServer();
    const registry = new Registry();
    limitConnections(app, registry, { maxPerAddress: 3 });
    app.get('/ok', async () => ({ ok: true }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = connect(port, '127.0.0.1');
        await once(s, 'connect');
        held.push(s);
      }
      const extra = connect(port, '127.0.0.1');
      held.push(extra);
      extra.on('error', () => {});
      await Promise.race([once(extra, 'close'), new Promise((_, rej) => setTimeout(() => rej(new Error('extra connection not refused')), 5000))]);
      const values = (await registry.getSingleMetric('apiary_http_connections_dropped_total')!.get()).values;
      assert.equal(values.find((v) => v.labels.cap === 'address')!.value, 1);
      held[0]!.destroy();
      const deadline = Date.now() + 5000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        status = await fetch(`http://127.0.0.1:${port}/ok`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
      }
      assert.equal(status, 200, 'a freed slot is usable again');
    } finally {
      for (const s of held) s.destroy();
      await app.close();
    }
  });
});
