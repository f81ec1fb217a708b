import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { runTokenCli, SqliteTokenStore, TokenService, tokenRoutes } from '../../src/access/index.js';
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
    tokens = new TokenService(new SqliteTokenStore(database));
    app = await createHttpServer({ authenticate: (t) => tokens.authenticate(t) });
    await app.register(tokenRoutes, { prefix: '/api/v1', tokens });
    await app.ready();
  });
  after(async () => {
    await app.close();
    database.close();
    dir.cleanup();
  });

  it('stores only a hash and authenticates by the token', async () => {
    const t = await tokens.create('alice', 'operator');
    assert.match(t.token, /^apiary_[A-Za-z0-9_-]{43}$/);
    const raw = readFileSync(dbPath).toString('latin1') + readFileSync(`${dbPath}-wal`).toString('latin1');
    assert.ok(!raw.includes(t.token), 'token must not be stored in clear');
    assert.deepEqual(await tokens.authenticate(t.token), { id: t.id, name: 'alice', role: 'operator', kind: 'token' });
    assert.equal(await tokens.authenticate(`${t.token}x`), undefined);
  });

  it('bootstraps one admin token into a 0600 file, only when no admin exists', async () => {
    const file = join(dir.path, 'admin-token');
    assert.equal(await tokens.bootstrapAdmin(file), file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const token = readFileSync(file, 'utf8').trim();
    assert.equal((await tokens.authenticate(token))?.role, 'admin');
    assert.equal(await tokens.bootstrapAdmin(file), undefined);
  });

  it('bootstrap with a preset token; re-bootstrap only once no active admin is left', async () => {
    const d = tempDir();
    const file = join(d.path, 'admin-token');
    const db2 = openDatabase(join(d.path, 'b.sqlite'));
    try {
      const t2 = new TokenService(new SqliteTokenStore(db2));
      const preset = 'preset-bootstrap-token-0123456789';
      assert.equal(await t2.bootstrapAdmin(file, preset), file);
      assert.equal(readFileSync(file, 'utf8').trim(), preset);
      assert.equal((await t2.authenticate(preset))?.role, 'admin');
      // A second start with another preset changes nothing while the first admin is active.
      assert.equal(await t2.bootstrapAdmin(file, 'another-preset-token-0123456789'), undefined);
      assert.equal(await t2.authenticate('another-preset-token-0123456789'), undefined);
      assert.equal(readFileSync(file, 'utf8').trim(), preset);
      // Every admin revoked: the next start bootstraps a fresh one (the operator is not locked out).
      const bootstrap = (await t2.list()).find((t) => t.role === 'admin')!;
      assert.ok(await t2.revoke(bootstrap.id));
      assert.equal(await t2.bootstrapAdmin(file), file);
      const fresh = readFileSync(file, 'utf8').trim();
      assert.notEqual(fresh, preset);
      assert.equal((await t2.authenticate(fresh))?.role, 'admin');
      assert.equal(await t2.authenticate(preset), undefined, 'the revoked one stays revoked');
    } finally {
      db2.close();
      d.cleanup();
    }
  });

  it('admin routes over HTTP create, list and revoke; a revoked token gets 401 on its next request', async () => {
    const admin = await tokens.create('root', 'admin');
    const auth = { authorization: `Bearer ${admin.token}` };
    const created = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: auth, payload: { name: 'viewer1', role: 'viewer' } });
    assert.equal(created.statusCode, 201);
    const { id, token } = created.json() as { id: string; token: string };
    const list = await app.inject({ url: '/api/v1/tokens', headers: auth });
    assert.ok(!list.body.includes(token));
    assert.ok((list.json() as { id: string }[]).some((t) => t.id === id));
    assert.equal((await app.inject({ url: '/api/v1/tokens', headers: { authorization: `Bearer ${token}` } })).statusCode, 403);
    assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: auth })).statusCode, 204);
    assert.equal(await tokens.authenticate(token), undefined);
    // Through HTTP: the revoked token is now unknown (401), where a moment ago it was merely too weak (403).
    const after = await app.inject({ url: '/api/v1/tokens', headers: { authorization: `Bearer ${token}` } });
    assert.equal(after.statusCode, 401);
    assert.equal(after.json().error, 'unauthorized');
    assert.equal((await app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: auth })).statusCode, 404);
  });

  it('CLI creates a token with a role and refuses a bad role', async () => {
    const ok = capture();
    assert.equal(await runTokenCli(['create', '--role', 'viewer', '--name', 'ci'], ok.io, dbPath), 0);
    const token = /token: (\S+)/.exec(ok.out())![1]!;
    assert.equal((await tokens.authenticate(token))?.role, 'viewer');
    const bad = capture();
    assert.equal(await runTokenCli(['create', '--role', 'root'], bad.io, dbPath), 2);
    assert.match(bad.err(), /--role must be one of/);
    const list = capture();
    assert.equal(await runTokenCli(['list'], list.io, dbPath), 0);
    assert.match(list.out(), /ci\tviewer/);
    assert.ok(!list.out().includes(token));
  });
});
