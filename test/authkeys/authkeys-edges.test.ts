// hpfeeds authkeys edge by edge (found by mutation testing of src/authkeys): defaults of a new key,
// channel lists stored by other tools, the exact errors of a bad reference auth file, the change
// feed (own changes, other processes' changes, stopping), and the exact answers and OpenAPI
// description of every authkey route.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { SqliteTokenStore, TokenService } from '../../src/access/index.js';
import { createHttpServer } from '../../src/api/index.js';
import { AuthkeyService, SqliteAuthkeyStore, authkeyRoutes } from '../../src/authkeys/index.js';
import { AuthkeyInputError } from '../../src/authkeys/service.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { tempDir } from '../helpers/tmp.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('hpfeeds authkeys: edges', () => {
  const dir = tempDir('apiary-authkeys-');
  const opened: { close(): void }[] = [];
  let n = 0;
  after(() => {
    for (const o of opened.reverse()) o.close();
    dir.cleanup();
  });

  /** A fresh database with a service on it, and a second service on another connection (another process). */
  function fresh(pollIntervalMs = 50): { path: string; database: DatabaseHandle; keys: AuthkeyService; other: AuthkeyService } {
    const path = join(dir.path, `k${n++}.sqlite`);
    const database = openDatabase(path);
    const otherDb = openDatabase(path);
    const keys = new AuthkeyService({ store: new SqliteAuthkeyStore(database), pollIntervalMs });
    const other = new AuthkeyService({ store: new SqliteAuthkeyStore(otherDb) });
    opened.push(otherDb, database, keys);
    return { path, database, keys, other };
  }

  it('a key created with only an ident has an empty owner and no channels', async () => {
    const { keys } = fresh();
    const k = await keys.put({ ident: 'bare' });
    assert.deepEqual({ ...k, secret: '' }, { ident: 'bare', owner: '', secret: '', pubchans: [], subchans: [] });
    assert.deepEqual(await keys.get('bare'), { ident: 'bare', owner: '', secret: k.secret, pubchans: [], subchans: [] });
    const s = (await keys.summary('bare'))!;
    assert.deepEqual({ ...s, createdAt: 0, updatedAt: 0 }, { ident: 'bare', owner: '', pubchans: [], subchans: [], createdAt: 0, updatedAt: 0 });
  });

  it('channel lists written by other tools: non-strings dropped, non-arrays and bad JSON read as no channels', async () => {
    const { database, keys } = fresh();
    const insert = database.sqlite.prepare(
      'INSERT INTO authkeys (ident, owner, secret, pubchans, subchans, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, 1)',
    );
    insert.run('mixed', 'o', 'secret-1', '["a", 1, null, "b", {"c": 1}]', '[2, "s"]');
    insert.run('object', 'o', 'secret-2', '{"a": "b"}', '"chan"');
    insert.run('broken', 'o', 'secret-3', '["a",', 'not json');
    assert.deepEqual(await keys.get('mixed'), { ident: 'mixed', owner: 'o', secret: 'secret-1', pubchans: ['a', 'b'], subchans: ['s'] });
    assert.deepEqual(await keys.get('object'), { ident: 'object', owner: 'o', secret: 'secret-2', pubchans: [], subchans: [] });
    assert.deepEqual(await keys.get('broken'), { ident: 'broken', owner: 'o', secret: 'secret-3', pubchans: [], subchans: [] });
    assert.deepEqual(
      (await keys.list()).map((k) => [k.ident, k.pubchans, k.subchans]),
      [
        ['broken', [], []],
        ['mixed', ['a', 'b'], ['s']],
        ['object', [], []],
      ],
    );
  });

  it('a bad reference auth file is refused as a whole, each problem named by ident and field', async () => {
    const { keys } = fresh();
    const refused = async (json: unknown, message: string) => {
      await assert.rejects(
        async () => keys.importReference(json),
        (err: unknown) => {
          assert.ok(err instanceof AuthkeyInputError, `an AuthkeyInputError, not ${String(err)}`);
          assert.equal(err.name, 'AuthkeyInputError');
          assert.equal(err.message, message);
          return true;
        },
      );
    };
    // Not an object at all: no ident to name.
    await refused('x', 'Invalid input: expected record, received string');
    // The entry itself is wrong: the ident, no field.
    await refused({ c: 'x' }, "ident 'c': Invalid input: expected object, received string");
    // A field, and a field inside a field, of two entries: all problems, joined.
    await refused(
      { c: { owner: 'no secret' }, d: { secret: 'dddddddd', pubchans: ['ok', 7] } },
      "ident 'c' field secret: Invalid input: expected string, received undefined; ident 'd' field pubchans.1: Invalid input: expected string, received number",
    );
    // Valid in the reference format but not as an apiary authkey (secrets of 8+ characters, owner
    // up to 255): named the same way; nothing is written, not even the good entries.
    await refused(
      { good: { secret: 'good-secret' }, s: { secret: 'short' }, t: { secret: 'long-enough', owner: 'o'.repeat(256) } },
      "ident 's' field secret: Too small: expected string to have >=8 characters; ident 't' field owner: Too big: expected string to have <=255 characters",
    );
    assert.deepEqual(await keys.list(), []);
    assert.equal(await keys.importReference({ good: { secret: 'good-secret' } }), 1);
  });

  it('own changes are announced to watchers at once, one ident at a time; removing an unknown ident is not', async () => {
    const { keys } = fresh();
    const seen: (readonly string[] | undefined)[] = [];
    const stop = keys.watch((idents) => seen.push(idents));
    await keys.put({ ident: 'k1' });
    assert.ok(await keys.update('k1', { owner: 'x' }));
    assert.ok(await keys.rotate('k1'));
    assert.equal(await keys.remove('nobody'), false);
    assert.equal(await keys.remove('k1'), true);
    assert.equal(await keys.remove('k1'), false);
    assert.deepEqual(seen, [['k1'], ['k1'], ['k1'], ['k1']]);
    stop();
    await keys.put({ ident: 'k2' });
    assert.equal(seen.length, 4, 'a stopped watcher hears nothing more');
  });

  it("another process's change is announced for exactly the idents it touched", async () => {
    const { keys, other } = fresh();
    await keys.put({ ident: 'a' });
    await keys.put({ ident: 'b' });
    await keys.put({ ident: 'c' });
    const seen: string[] = [];
    const stop = keys.watch((idents) => seen.push(...(idents ?? [])));
    try {
      await other.update('a', { owner: 'changed' });
      await other.remove('b');
      await other.put({ ident: 'd' });
      await waitFor(() => seen.includes('a') && seen.includes('b') && seen.includes('d'), 'a, b and d');
      await sleep(150);
      assert.deepEqual([...seen].sort(), ['a', 'b', 'd'], 'c did not change');
    } finally {
      stop();
    }
  });

  it('a second watcher does not swallow a change the first has not been told about yet', async () => {
    const { keys, other } = fresh(200);
    const first: string[] = [];
    const second: string[] = [];
    const stopFirst = keys.watch((idents) => first.push(...(idents ?? [])));
    try {
      await other.put({ ident: 'early' });
      const stopSecond = keys.watch((idents) => second.push(...(idents ?? [])));
      try {
        await waitFor(() => first.includes('early'), 'the first watcher to hear of early');
        assert.deepEqual(second, ['early']);
      } finally {
        stopSecond();
      }
    } finally {
      stopFirst();
    }
  });

  it('when one of two watchers stops, the other still hears of other processes', async () => {
    const { keys, other } = fresh();
    const kept: string[] = [];
    const stopKept = keys.watch((idents) => kept.push(...(idents ?? [])));
    const stopGone = keys.watch(() => {});
    stopGone();
    try {
      await other.put({ ident: 'later' });
      await waitFor(() => kept.includes('later'), 'the remaining watcher to hear of later');
    } finally {
      stopKept();
    }
  });

  it('after the last watcher stops, polling stops: a new watcher is told only of changes after it started', async () => {
    const { keys, other } = fresh(200);
    keys.watch(() => {})();
    await other.put({ ident: 'while-nobody-watched' });
    const seen: string[] = [];
    const stop = keys.watch((idents) => seen.push(...(idents ?? [])));
    try {
      await sleep(500);
      assert.equal(seen.length, 0, `heard ${seen.join(',')}`);
      await other.put({ ident: 'after' });
      await waitFor(() => seen.includes('after'), 'after');
      assert.deepEqual(seen, ['after']);
    } finally {
      stop();
    }
  });

  it('a watcher left on a closed database does not crash the process', async () => {
    const path = join(dir.path, 'closed.sqlite');
    const database = openDatabase(path);
    const keys = new AuthkeyService({ store: new SqliteAuthkeyStore(database), pollIntervalMs: 20 });
    const stop = keys.watch(() => {});
    database.close();
    await sleep(120);
    stop();
  });
});

describe('hpfeeds authkey routes: answers, roles and OpenAPI', () => {
  const dir = tempDir('apiary-authkey-routes-');
  let database: DatabaseHandle;
  let keys: AuthkeyService;
  let app: FastifyInstance;
  let admin: string;
  let operator: string;

  before(async () => {
    database = openDatabase(join(dir.path, 'r.sqlite'));
    const tokens = new TokenService(new SqliteTokenStore(database));
    keys = new AuthkeyService({ store: new SqliteAuthkeyStore(database) });
    app = await createHttpServer({ authenticate: (t) => tokens.authenticate(t) });
    await app.register(authkeyRoutes, { prefix: '/api/v1', authkeys: keys });
    await app.ready();
    admin = (await tokens.create('root', 'admin')).token;
    operator = (await tokens.create('ops', 'operator')).token;
  });
  after(async () => {
    await app.close();
    keys.close();
    database.close();
    dir.cleanup();
  });

  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, token = admin) => {
    const res = await app.inject({ method, url: `/api/v1/hpfeeds/authkeys${url}`, headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { payload: body as object }) });
    return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as unknown) : undefined, raw: res.body };
  };
  const notFound = (ident: string) => ({ error: 'not_found', message: `no authkey ${ident}` });

  it('create, read, list, patch, rotate and delete answer exactly', async () => {
    const created = await call('POST', '', { ident: 'r1', owner: 'team', secret: 'first-secret', pubchans: ['p'], subchans: ['s'] });
    assert.deepEqual(created, { status: 201, body: { ident: 'r1', owner: 'team', secret: 'first-secret', pubchans: ['p'], subchans: ['s'] }, raw: created.raw });
    const generated = await call('POST', '', { ident: 'r2' });
    assert.equal(generated.status, 201);
    const g = generated.body as { secret: string };
    assert.match(g.secret, /^[A-Za-z0-9_-]{32}$/);
    assert.deepEqual(generated.body, { ident: 'r2', owner: '', secret: g.secret, pubchans: [], subchans: [] });
    assert.deepEqual(await call('POST', '', { ident: 'r1', secret: 'other-secret' }), {
      status: 409,
      body: { error: 'conflict', message: 'authkey r1 exists' },
      raw: (await call('POST', '', { ident: 'r1' })).raw,
    });
    assert.equal((await keys.get('r1'))?.secret, 'first-secret', 'a conflict changes nothing');

    const one = await call('GET', '/r1');
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, await keys.summary('r1'));
    assert.ok(!one.raw.includes('first-secret'));
    const list = await call('GET', '');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, await keys.list());
    assert.deepEqual((list.body as { ident: string }[]).map((k) => k.ident), ['r1', 'r2']);
    assert.ok(!list.raw.includes('first-secret') && !list.raw.includes(g.secret));

    const patched = await call('PATCH', '/r1', { subchans: ['s', 't'] });
    assert.equal(patched.status, 200);
    assert.deepEqual(patched.body, await keys.summary('r1'));
    assert.deepEqual((patched.body as { owner: string; subchans: string[] }).subchans, ['s', 't']);

    const rotated = await call('POST', '/r1/rotate');
    assert.equal(rotated.status, 200);
    const secret = (rotated.body as { secret: string }).secret;
    assert.notEqual(secret, 'first-secret');
    assert.deepEqual(rotated.body, { ident: 'r1', owner: 'team', secret, pubchans: ['p'], subchans: ['s', 't'] });
    assert.equal((await keys.get('r1'))?.secret, secret);

    const deleted = await call('DELETE', '/r1');
    assert.deepEqual({ status: deleted.status, raw: deleted.raw }, { status: 204, raw: '' });
    assert.equal(await keys.get('r1'), undefined);
  });

  it('every route that names an unknown ident answers 404 not_found naming it', async () => {
    assert.deepEqual((await call('GET', '/ghost')).body, notFound('ghost'));
    assert.equal((await call('GET', '/ghost')).status, 404);
    for (const [method, url, body] of [
      ['PATCH', '/ghost', { owner: 'x' }],
      ['POST', '/ghost/rotate', undefined],
      ['DELETE', '/ghost', undefined],
    ] as const) {
      const res = await call(method, url, body);
      assert.deepEqual({ status: res.status, body: res.body }, { status: 404, body: notFound('ghost') }, `${method} ${url}`);
    }
    assert.equal(await keys.get('ghost'), undefined, 'rotate or patch of an unknown ident creates nothing');
  });

  it('every route is for admins only', async () => {
    await keys.put({ ident: 'guarded', secret: 'guarded-secret' });
    for (const [method, url, body] of [
      ['GET', '', undefined],
      ['GET', '/guarded', undefined],
      ['POST', '', { ident: 'new-one' }],
      ['PATCH', '/guarded', { owner: 'x' }],
      ['POST', '/guarded/rotate', undefined],
      ['DELETE', '/guarded', undefined],
    ] as const) {
      const res = await call(method, url, body, operator);
      assert.deepEqual(
        { status: res.status, body: res.body },
        { status: 403, body: { error: 'forbidden', message: 'role operator may not do this (needs admin)' } },
        `${method} ${url}`,
      );
    }
    assert.equal((await keys.get('guarded'))?.secret, 'guarded-secret');
    assert.equal(await keys.get('new-one'), undefined);
  });

  it('OpenAPI: tag, summary, role, responses and their schemas of every authkey route', async () => {
    type Schema = { type?: string; items?: Schema; properties?: Record<string, Schema>; required?: string[]; description?: string; default?: unknown };
    type Op = {
      tags?: string[];
      summary?: string;
      'x-role'?: string;
      parameters?: { name: string; in: string }[];
      requestBody?: { content: { 'application/json': { schema: Schema } } };
      responses: Record<string, { content?: { 'application/json': { schema: Schema } } }>;
    };
    const spec = app.swagger() as unknown as { paths: Record<string, Record<string, Op>> };
    const base = '/api/v1/hpfeeds/authkeys';
    const summaryFields = ['ident', 'owner', 'pubchans', 'subchans', 'createdAt', 'updatedAt'];
    const secretFields = ['ident', 'owner', 'secret', 'pubchans', 'subchans'];
    const errorFields = ['error', 'message'];
    const want: [string, string, string, Record<string, string[] | 'array' | null>][] = [
      [base, 'get', 'List hpfeeds authkeys (without secrets)', { 200: 'array' }],
      [`${base}/{ident}`, 'get', 'One hpfeeds authkey (without its secret)', { 200: summaryFields, 404: errorFields }],
      [base, 'post', 'Create an hpfeeds authkey; the secret (generated unless given) is shown only in this answer', { 201: secretFields, 409: errorFields }],
      [`${base}/{ident}`, 'patch', 'Change owner or channels; live connections of the ident are re-checked at once', { 200: summaryFields, 404: errorFields }],
      [`${base}/{ident}/rotate`, 'post', 'New secret; live connections using the old one are closed', { 200: secretFields, 404: errorFields }],
      [`${base}/{ident}`, 'delete', 'Revoke: delete the key and close its live connections', { 204: null, 404: errorFields }],
    ];
    for (const [path, method, summary, responses] of want) {
      const what = `${method} ${path}`;
      const op = spec.paths[path]?.[method];
      assert.ok(op, what);
      assert.deepEqual(op.tags, ['hpfeeds'], what);
      assert.equal(op.summary, summary, what);
      assert.equal(op['x-role'], 'admin', what);
      assert.deepEqual(Object.keys(op.responses).sort(), Object.keys(responses).sort(), what);
      for (const [code, fields] of Object.entries(responses)) {
        const schema = op.responses[code]?.content?.['application/json'].schema;
        if (fields === null) continue;
        assert.ok(schema, `${what} ${code} has a schema`);
        if (fields === 'array') {
          assert.equal(schema.type, 'array', what);
          assert.deepEqual(schema.items?.required, summaryFields, what);
        } else {
          assert.deepEqual(schema.required, fields, `${what} ${code}`);
        }
      }
      if (path.includes('{ident}')) assert.deepEqual(op.parameters?.map((p) => [p.in, p.name]), [['path', 'ident']], what);
    }
    const create = spec.paths[base]!.post!.requestBody!.content['application/json'].schema;
    assert.deepEqual(create.required, ['ident']);
    assert.equal(create.properties?.secret?.description, 'generated when omitted');
    assert.deepEqual([create.properties?.owner?.default, create.properties?.pubchans?.default, create.properties?.subchans?.default], ['', [], []]);
    const patch = spec.paths[`${base}/{ident}`]!.patch!.requestBody!.content['application/json'].schema;
    assert.deepEqual(Object.keys(patch.properties ?? {}), ['owner', 'pubchans', 'subchans']);
  });
});
