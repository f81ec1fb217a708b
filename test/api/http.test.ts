import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, createHttpServer, redactUrl } from '../../src/api/index.js';

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
  it('higher roles include lower ones; token also accepted as access_token query parameter', async () => {
    const res = await app.inject({ url: '/things/7?access_token=a' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { n: 7, by: 'a' });
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
  });
});
