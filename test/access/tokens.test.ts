import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { runTokenCli, TokenService, tokenRoutes } from '../../src/access/index.js';
import { createHttpServer } from '../../src/api/index.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { captureIo as capture } from '../helpers/cli-io.js';
import { tempDir } from '../helpers/tmp.js';

describe('operator tokens', () => {
  const dir = tempDir();
  const dbPath = join(dir.path, 'apiary.sqlite');
  let database: DatabaseHandle;
  let tokens: TokenService;
  let app: FastifyInstance;

  before(async () => {
    database = openDatabase(dbPath);
    tokens = new TokenService(database);
    app = await createHttpServer({ authenticate: (t) => tokens.authenticate(t) });
    await app.register(tokenRoutes, { prefix: '/api/v1', tokens });
    await app.ready();
  });
  after(async () => {
    await app.close();
    database.close();
    dir.cleanup();
  });

  it('stores only a hash and authenticates by the token', () => {
    const t = tokens.create('alice', 'operator');
    assert.match(t.token, /^apiary_[A-Za-z0-9_-]{43}$/);
    const raw = readFileSync(dbPath).toString('latin1') + readFileSync(`${dbPath}-wal`).toString('latin1');
    assert.ok(!raw.includes(t.token), 'token must not be stored in clear');
    assert.deepEqual(tokens.authenticate(t.token), { id: t.id, name: 'alice', role: 'operator' });
    assert.equal(tokens.authenticate(`${t.token}x`), undefined);
  });

  it('bootstraps one admin token into a 0600 file, only when no admin exists', () => {
    const file = join(dir.path, 'admin-token');
    assert.equal(tokens.bootstrapAdmin(file), file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const token = readFileSync(file, 'utf8').trim();
    assert.equal(tokens.authenticate(token)?.role, 'admin');
    assert.equal(tokens.bootstrapAdmin(file), undefined);
  });

  it('admin routes create, list and revoke; revocation is effective on the next request', async () => {
    const admin = tokens.create('root', 'admin');
    const auth = { authorization: `Bearer ${admin.token}` };
    const created = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: auth, payload: { name: 'viewer1', role: 'viewer' } });
    assert.equal(created.statusCode, 201);
    const { id, token } = created.json() as { id: string; token: string };
    const list = await app.inject({ url: '/api/v1/tokens', headers: auth });
    assert.ok(!list.body.includes(token));
    assert.ok((list.json() as { id: string }[]).some((t) => t.id === id));
    assert.equal((await app.inject({ url: '/api/v1/tokens', headers: { authorization: `Bearer ${token}` } })).statusCode, 403);
    assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: auth })).statusCode, 204);
    assert.equal(tokens.authenticate(token), undefined);
    assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: auth })).statusCode, 404);
  });

  it('CLI creates a token with a role and refuses a bad role', async () => {
    const ok = capture();
    assert.equal(await runTokenCli(['create', '--role', 'viewer', '--name', 'ci'], ok.io, dbPath), 0);
    const token = /token: (\S+)/.exec(ok.out())![1]!;
    assert.equal(tokens.authenticate(token)?.role, 'viewer');
    const bad = capture();
    assert.equal(await runTokenCli(['create', '--role', 'root'], bad.io, dbPath), 2);
    assert.match(bad.err(), /--role must be one of/);
    const list = capture();
    assert.equal(await runTokenCli(['list'], list.io, dbPath), 0);
    assert.match(list.out(), /ci\tviewer/);
    assert.ok(!list.out().includes(token));
  });
});
