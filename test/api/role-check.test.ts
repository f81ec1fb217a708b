// The role check of the shared HTTP server, edge by edge (found by mutation testing of
// src/api/http.ts): the role order, how a bearer token is read, the exact 401/403 answers, the
// operator handed to the handler, and what OpenAPI says each route needs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { ApiError, createHttpServer, redactUrl, roleAllows, roles, type Operator } from '../../src/api/index.js';

describe('role check', () => {
  let app: FastifyInstance;
  const seen: (Operator | undefined)[] = [];
  before(async () => {
    const tokens: Record<string, Operator> = {
      vt: { id: '1', name: 'view', role: 'viewer' },
      ot: { id: '2', name: 'op', role: 'operator' },
      at: { id: '3', name: 'adm', role: 'admin' },
    };
    // Async on purpose: a store lookup may be async.
    app = await createHttpServer({ authenticate: async (t) => tokens[t] });
    for (const role of roles) {
      app.get(`/${role}`, { config: { role } }, async (req) => {
        seen.push(req.operator);
        return { ok: role };
      });
    }
    app.get('/open', async (req) => ({ operator: req.operator ?? null }));
    app.get('/item/:id', { config: { role: 'viewer' } }, async (req) => ({ id: (req.params as { id: string }).id }));
    await app.ready();
  });
  after(() => app.close());

  const get = (url: string, authorization?: string) => app.inject({ url, headers: authorization === undefined ? {} : { authorization } });

  it('roleAllows is the order viewer < operator < admin, nothing else', () => {
    const rank = { viewer: 0, operator: 1, admin: 2 } as const;
    for (const have of roles) for (const need of roles) assert.equal(roleAllows(have, need), rank[have] >= rank[need], `${have} for ${need}`);
  });

  it('every role against every route over HTTP', async () => {
    const token = { viewer: 'vt', operator: 'ot', admin: 'at' } as const;
    for (const have of roles) {
      for (const need of roles) {
        const res = await get(`/${need}`, `Bearer ${token[have]}`);
        if (roleAllows(have, need)) {
          assert.equal(res.statusCode, 200, `${have} on ${need}`);
          assert.deepEqual(res.json(), { ok: need });
        } else {
          assert.equal(res.statusCode, 403, `${have} on ${need}`);
          assert.deepEqual(res.json(), { error: 'forbidden', message: `role ${have} may not do this (needs ${need})` });
        }
      }
    }
  });

  it('the handler gets the operator the token belongs to', async () => {
    seen.length = 0;
    await get('/viewer', 'Bearer ot');
    assert.deepEqual(seen, [{ id: '2', name: 'op', role: 'operator' }]);
  });

  it('401 answers say whether the token was missing or not valid; only "Bearer <token>" is read', async () => {
    const missing = { error: 'unauthorized', message: 'missing bearer token' };
    const invalid = { error: 'unauthorized', message: 'invalid or revoked token' };
    assert.deepEqual((await get('/viewer')).json(), missing);
    assert.deepEqual((await get('/viewer', 'Basic dnQ6')).json(), missing);
    assert.deepEqual((await get('/viewer', 'vt')).json(), missing);
    assert.deepEqual((await get('/viewer', 'Bearer nope')).json(), invalid);
    assert.equal((await get('/viewer', 'Bearer nope')).statusCode, 401);
    assert.equal((await get('/viewer', 'Bearer   vt  ')).statusCode, 200, 'blanks around the token are not part of it');
    assert.deepEqual((await get('/viewer', 'xBearer vt')).json(), missing, 'the scheme starts the header');
    assert.deepEqual((await get('/viewer', 'Bearer vt extra')).json(), missing, 'one token, nothing after it');
    assert.deepEqual((await get('/viewer?other=1')).json(), missing);
    // A header token is used as it is; a query token beside it is not looked at.
    assert.equal((await get('/viewer?access_token=nope', 'Bearer vt')).statusCode, 200);
    // A token-looking text in the path is not a query parameter.
    assert.deepEqual((await get('/item/x&access_token=vt')).json(), missing);
  });

  it('routes without a role are public and get no operator, even with a token', async () => {
    assert.deepEqual((await get('/open')).json(), { operator: null });
    assert.deepEqual((await get('/open', 'Bearer nope')).json(), { operator: null });
  });

  it('OpenAPI: x-role on guarded operations, an empty security list on public ones', () => {
    const spec = app.swagger() as { paths: Record<string, { get: { 'x-role'?: string; security?: unknown[] } }> };
    for (const role of roles) {
      assert.equal(spec.paths[`/${role}`]!.get['x-role'], role);
      assert.equal(spec.paths[`/${role}`]!.get.security, undefined, 'guarded: the document-wide bearer requirement applies');
    }
    assert.equal(spec.paths['/open']!.get['x-role'], undefined);
    assert.deepEqual(spec.paths['/open']!.get.security, []);
  });

  it('ApiError names itself', () => {
    const err = new ApiError(418, 'teapot', 'short and stout');
    assert.equal(err.name, 'ApiError');
    assert.equal(err.statusCode, 418);
    assert.equal(err.code, 'teapot');
  });

  it('redacts the values of token-, secret-, password-, auth- and key-like query parameters, and only those', () => {
    assert.equal(redactUrl('/x?token=abc'), '/x?token=[redacted]');
    assert.equal(redactUrl('/x?a=1&token=abc&b=2'), '/x?a=1&token=[redacted]&b=2');
    assert.equal(redactUrl('/x?access_token=abc'), '/x?access_token=[redacted]');
    // Names are compared after percent-decoding and in any case; anything token-like is hidden.
    assert.equal(redactUrl('/x?access%5Ftoken=abc&ACCESS_TOKEN=d'), '/x?access%5Ftoken=[redacted]&ACCESS_TOKEN=[redacted]');
    assert.equal(redactUrl('/x?mytoken=abc&token_type=x'), '/x?mytoken=[redacted]&token_type=[redacted]');
    assert.equal(redactUrl('/x?secret=s&password=p&apikey=k'), '/x?secret=[redacted]&password=[redacted]&apikey=[redacted]');
    assert.equal(redactUrl('/x?node=edge-1&limit=10'), '/x?node=edge-1&limit=10');
    assert.equal(redactUrl('/x/token=abc'), '/x/token=abc');
    // A parameter without a value is judged by its whole name; a value without a name is not a secret's.
    assert.equal(redactUrl('/x?passw&a=1'), '/x?passw=[redacted]&a=1');
    assert.equal(redactUrl('/x?=secret'), '/x?=secret');
  });
});
