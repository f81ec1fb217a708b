// Issue 10, composed core: the data directory is private (row 8), and revoking or deleting a node
// takes its hpfeeds authkey and connections with it (row 7). Real core, real sockets, its own
// redis-server.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildCore, type Core } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { openDatabase } from '../../src/db/index.js';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { tempDir } from '../helpers/tmp.js';

const mode = (p: string) => statSync(p).mode & 0o777;

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('data directory permissions (fresh files)', () => {
  it('creates the SQLite file and its WAL/shm 0600 and its directory 0700', () => {
    const tmp = tempDir('apiary-perm-');
    const dir = join(tmp.path, 'data');
    const db = openDatabase(join(dir, 'apiary.sqlite'));
    try {
      db.sqlite.prepare("INSERT INTO node_log (node_name, kind, message, at) VALUES ('n', 'k', NULL, 1)").run();
      assert.equal(mode(dir), 0o700);
      for (const f of ['apiary.sqlite', 'apiary.sqlite-wal', 'apiary.sqlite-shm']) {
        assert.ok(existsSync(join(dir, f)), f);
        assert.equal(mode(join(dir, f)), 0o600, `${f} is 0${mode(join(dir, f)).toString(8)}`);
      }
    } finally {
      db.close();
      tmp.cleanup();
    }
  });
});

describe('composed core: private data directory, total revocation', () => {
  const tmp = tempDir('apiary-hard-');
  const dir = join(tmp.path, 'data');
  let core: Core;
  let base: string;
  let admin: string;
  const output: string[] = [];
  const clients: HpfeedsClient[] = [];

  const api = async (method: string, path: string, body?: unknown, token = admin) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  before(async () => {
    // A data directory as an older version left it: world-readable directory and database.
    mkdirSync(join(dir, 'redis'), { recursive: true });
    openDatabase(join(dir, 'apiary.sqlite')).close();
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'redis'), 0o755);
    chmodSync(join(dir, 'apiary.sqlite'), 0o644);
    const config = loadConfig(
      ['--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'],
      { APIARY_DATA_DIR: dir, LOG_LEVEL: 'warn', ENROLLMENT_MODE: 'provisioned' },
    );
    // The core logs to stdout; keep its lines to check the warnings.
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      if (text.startsWith('{')) {
        output.push(text);
        return true;
      }
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write;
    try {
      core = await buildCore(config);
    } finally {
      process.stdout.write = write;
    }
    base = `http://127.0.0.1:${core.addresses.api.port}`;
    admin = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await core?.close();
    tmp.cleanup();
  });

  it('restricts an existing data directory, database and redis dir at start, with a warning each (row 8)', () => {
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(join(dir, 'redis')), 0o700);
    assert.equal(mode(join(dir, 'admin-token')), 0o600);
    for (const f of ['apiary.sqlite', 'apiary.sqlite-wal', 'apiary.sqlite-shm']) {
      assert.equal(mode(join(dir, f)), 0o600, `${f} is 0${mode(join(dir, f)).toString(8)}`);
    }
    const warnings = output.map((l) => JSON.parse(l) as { msg: string; path?: string }).filter((l) => /permissions restricted/.test(l.msg));
    assert.deepEqual(warnings.map((w) => w.path).sort(), [dir, join(dir, 'apiary.sqlite'), join(dir, 'redis')].sort());
  });

  async function connectAs(ident: string): Promise<{ client: HpfeedsClient; disconnected: Promise<void> }> {
    const key = await core.authkeys.get(ident);
    assert.ok(key, `authkey ${ident} exists`);
    const client = new HpfeedsClient({ host: '127.0.0.1', port: core.addresses.hpfeeds[0]!.port, ident, secret: key.secret, reconnect: false });
    clients.push(client);
    client.on('error', () => {});
    const disconnected = new Promise<void>((resolve) => client.once('disconnect', () => resolve()));
    await client.connect();
    return { client, disconnected };
  }

  for (const action of ['revoke', 'delete'] as const) {
    it(`${action} a node: its hpfeeds authkey stops working and its connections close (row 7)`, async () => {
      const name = `edge-${action}`;
      assert.equal((await api('POST', '/api/v1/nodes', { name })).status, 201);
      await waitFor(async () => (await core.authkeys.get(name)) !== undefined, 5000, 'authkey of the enrolled node');
      const secret = (await core.authkeys.get(name))!.secret;
      const { disconnected } = await connectAs(name);
      const res = action === 'revoke' ? await api('POST', `/api/v1/nodes/${name}/revoke`) : await api('DELETE', `/api/v1/nodes/${name}`);
      assert.ok(res.status === 200 || res.status === 204, `${action}: ${res.status}`);
      await Promise.race([disconnected, new Promise((_, reject) => setTimeout(() => reject(new Error('hpfeeds connection still open')), 5000).unref())]);
      assert.equal(await core.authkeys.get(name), undefined);
      const again = new HpfeedsClient({ host: '127.0.0.1', port: core.addresses.hpfeeds[0]!.port, ident: name, secret, reconnect: false });
      clients.push(again);
      again.on('error', () => {});
      // hpfeeds has no AUTH answer: the broker closes a connection whose AUTH fails.
      const closed = new Promise<void>((resolve) => again.once('disconnect', () => resolve()));
      const refused = again.connect().then(
        () => closed,
        () => undefined,
      );
      await Promise.race([refused, new Promise((_, reject) => setTimeout(() => reject(new Error('the old secret still works')), 5000).unref())]);
    });
  }

  it('bulk reject of pending nodes is an admin route in OpenAPI (row 10)', async () => {
    const spec = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, unknown> };
    assert.ok(spec.paths['/api/v1/enrollment/pending/reject']);
    assert.ok(spec.paths['/api/v1/enrollment/unknown-registrations']);
    const viewer = (await core.tokens.create('v', 'viewer')).token;
    assert.equal((await api('POST', '/api/v1/enrollment/pending/reject', { olderThanSeconds: 0 }, viewer)).status, 403);
    assert.equal((await api('POST', '/api/v1/enrollment/pending/reject', { olderThanSeconds: 0 })).status, 200);
  });
});
