// Operator tokens edge by edge (found by mutation testing of src/access): the token format, only a
// hash stored, last_used_at written at most once a minute, revocation, what counts as an active
// admin, the bootstrap file's directory and mode, and the exact answers of the token routes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { SqliteTokenStore, TokenService, tokenRoutes } from '../../src/access/index.js';
import { createHttpServer } from '../../src/api/index.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { tempDir } from '../helpers/tmp.js';

describe('operator tokens: edges', () => {
  const dir = tempDir('apiary-tokens-');
  let database: DatabaseHandle;
  let tokens: TokenService;
  let app: FastifyInstance;
  let adminToken: string;

  before(async () => {
    database = openDatabase(join(dir.path, 't.sqlite'));
    tokens = new TokenService(new SqliteTokenStore(database));
    app = await createHttpServer({ authenticate: (t) => tokens.authenticate(t) });
    await app.register(tokenRoutes, { prefix: '/api/v1', tokens });
    await app.ready();
    adminToken = (await tokens.create('root', 'admin')).token;
  });
  after(async () => {
    await app.close();
    database.close();
    dir.cleanup();
  });

  const row = (id: string) => database.sqlite.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id) as Record<string, unknown>;

  it('tokens are apiary_ + 32 random bytes (base64url); only their SHA-256 is stored', async () => {
    const a = await tokens.create('a', 'viewer');
    const b = await tokens.create('b', 'viewer');
    assert.match(a.token, /^apiary_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.token, b.token);
    assert.deepEqual({ id: a.id, name: a.name, role: a.role }, { id: a.id, name: 'a', role: 'viewer' });
    const stored = row(a.id);
    assert.equal(stored.token_hash, createHash('sha256').update(a.token).digest('hex'));
    assert.ok(!JSON.stringify(database.sqlite.prepare('SELECT * FROM api_tokens').all()).includes(a.token));
  });

  it('last_used_at: written on first use, not again within a minute, again after it', async () => {
    const t = await tokens.create('usage', 'operator');
    assert.equal(row(t.id).last_used_at, null);
    const before = Date.now();
    assert.deepEqual(await tokens.authenticate(t.token), { id: t.id, name: 'usage', role: 'operator', kind: 'token' });
    const first = row(t.id).last_used_at as number;
    assert.ok(first >= before && first <= Date.now());
    database.sqlite.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(first - 30_000, t.id);
    await tokens.authenticate(t.token);
    assert.equal(row(t.id).last_used_at, first - 30_000, 'not rewritten within the minute');
    database.sqlite.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(first - 61_000, t.id);
    await tokens.authenticate(t.token);
    assert.ok((row(t.id).last_used_at as number) >= first, 'rewritten after it');
    assert.equal(await tokens.authenticate(`${t.token}x`), undefined);
  });

  it('revoke: once, then false; unknown ids false; a revoked token no longer authenticates', async () => {
    const t = await tokens.create('gone', 'viewer');
    assert.equal(await tokens.revoke(t.id), true);
    const revokedAt = row(t.id).revoked_at;
    assert.equal(typeof revokedAt, 'number');
    assert.equal(await tokens.revoke(t.id), false);
    assert.equal(row(t.id).revoked_at, revokedAt, 'a second revoke does not move the time');
    assert.equal(await tokens.revoke('no-such-id'), false);
    assert.equal(await tokens.authenticate(t.token), undefined);
  });

  it('an active admin is an unrevoked token with role admin, and nothing else', async () => {
    const d = tempDir('apiary-tokens-admin-');
    const db2 = openDatabase(join(d.path, 'a.sqlite'));
    try {
      const t2 = new TokenService(new SqliteTokenStore(db2));
      assert.equal(await t2.hasActiveAdmin(), false);
      await t2.create('v', 'viewer');
      await t2.create('o', 'operator');
      assert.equal(await t2.hasActiveAdmin(), false);
      const a = await t2.create('a', 'admin');
      assert.equal(await t2.hasActiveAdmin(), true);
      await t2.revoke(a.id);
      assert.equal(await t2.hasActiveAdmin(), false);
    } finally {
      db2.close();
      d.cleanup();
    }
  });

  it('bootstrap creates the token file directory and makes an existing file 0600', async () => {
    const d = tempDir('apiary-tokens-boot-');
    const db2 = openDatabase(join(d.path, 'b.sqlite'));
    try {
      const nested = join(d.path, 'not', 'yet', 'admin-token');
      const t2 = new TokenService(new SqliteTokenStore(db2));
      assert.equal(await t2.bootstrapAdmin(nested), nested);
      assert.match(readFileSync(nested, 'utf8'), /^apiary_\S+\n$/);
      assert.deepEqual((await t2.list()).map((t) => [t.name, t.role]), [['bootstrap-admin', 'admin']]);

      const db3 = openDatabase(join(d.path, 'c.sqlite'));
      try {
        const existing = join(d.path, 'existing-token');
        writeFileSync(existing, 'old\n');
        chmodSync(existing, 0o644);
        assert.equal(await new TokenService(new SqliteTokenStore(db3)).bootstrapAdmin(existing), existing);
        assert.equal(statSync(existing).mode & 0o777, 0o600);
        assert.notEqual(readFileSync(existing, 'utf8'), 'old\n');
      } finally {
        db3.close();
      }
    } finally {
      db2.close();
      d.cleanup();
    }
  });

  it('routes: list in creation order without secrets, create 201, bad input 400, unknown revoke 404', async () => {
    const auth = { authorization: `Bearer ${adminToken}` };
    const created = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: auth, payload: { name: 'via-api', role: 'operator' } });
    assert.equal(created.statusCode, 201);
    const body = created.json();
    assert.deepEqual(Object.keys(body).sort(), ['id', 'name', 'role', 'token']);
    assert.equal(body.name, 'via-api');
    assert.equal(body.role, 'operator');
    assert.equal((await tokens.authenticate(body.token))?.role, 'operator');

    const list = (await app.inject({ url: '/api/v1/tokens', headers: auth })).json() as { id: string; name: string; createdAt: number; lastUsedAt: number | null; revokedAt: number | null }[];
    // Oldest first; tokens made in the same millisecond (root and b, in before()) go by id.
    assert.equal(list[0]!.createdAt, list.find((t) => t.name === 'root')!.createdAt, 'oldest first');
    assert.deepEqual(list.map((t) => t.createdAt), [...list.map((t) => t.createdAt)].sort((x, y) => x - y));
    const mine = list.find((t) => t.id === body.id)!;
    assert.deepEqual(Object.keys(mine).sort(), ['createdAt', 'id', 'lastUsedAt', 'name', 'revokedAt', 'role']);
    assert.equal(mine.revokedAt, null);
    assert.ok(!JSON.stringify(list).includes(body.token));

    for (const payload of [{ name: '', role: 'viewer' }, { name: 'x', role: 'root' }, { name: 'x'.repeat(101), role: 'viewer' }, { role: 'viewer' }]) {
      const bad = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: auth, payload });
      assert.equal(bad.statusCode, 400, JSON.stringify(payload));
    }
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: auth, payload: { name: 'x'.repeat(100), role: 'viewer' } })).statusCode, 201);

    const missing = await app.inject({ method: 'DELETE', url: '/api/v1/tokens/nope', headers: auth });
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json(), { error: 'not_found', message: 'no active token nope' });
    const del = await app.inject({ method: 'DELETE', url: `/api/v1/tokens/${body.id}`, headers: auth });
    assert.equal(del.statusCode, 204);
    assert.equal(del.body, '');
    const after = (await app.inject({ url: '/api/v1/tokens', headers: auth })).json() as { id: string; revokedAt: number | null }[];
    assert.equal(typeof after.find((t) => t.id === body.id)!.revokedAt, 'number');
  });

  it('OpenAPI documents every token route: tag, summary, responses', async () => {
    const spec = app.swagger() as { paths: Record<string, Record<string, { tags?: string[]; summary?: string; responses?: Record<string, unknown> }>> };
    const want: [string, string, string[]][] = [
      ['/api/v1/tokens', 'get', ['200']],
      ['/api/v1/tokens', 'post', ['201']],
      ['/api/v1/tokens/{id}', 'delete', ['204', '404']],
    ];
    for (const [path, method, codes] of want) {
      const op = spec.paths[path]?.[method];
      assert.ok(op, `${method} ${path}`);
      assert.deepEqual(op.tags, ['tokens']);
      assert.ok((op.summary ?? '').length > 10, `${method} ${path} has a summary`);
      for (const code of codes) assert.ok(op.responses?.[code], `${method} ${path} documents ${code}`);
    }
  });
});
