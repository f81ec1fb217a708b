import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AuthkeyService, SqliteAuthkeyStore, runAuthkeyCli } from '../../src/authkeys/index.js';
import { openDatabase } from '../../src/db/index.js';
import { Broker, HpfeedsClient } from '../../src/hpfeeds/index.js';
import { captureIo as capture } from '../helpers/cli-io.js';
import { tempDir } from '../helpers/tmp.js';

describe('hpfeeds authkeys in SQLite', () => {
  const dir = tempDir();
  const dbPath = join(dir.path, 'apiary.sqlite');
  const database = openDatabase(dbPath);
  const keys = new AuthkeyService({ store: new SqliteAuthkeyStore(database), pollIntervalMs: 50 });
  after(() => {
    keys.close();
    database.close();
    dir.cleanup();
  });

  it('stores keys in the reference shape; lists never show secrets', async () => {
    const k = await keys.put({ ident: 'sensor-1', owner: 'ops', pubchans: ['cowrie.sessions'], subchans: [] });
    assert.ok(k.secret.length >= 24);
    assert.deepEqual(await keys.get('sensor-1'), { ident: 'sensor-1', owner: 'ops', secret: k.secret, pubchans: ['cowrie.sessions'], subchans: [] });
    const row = database.sqlite.prepare('SELECT pubchans FROM authkeys WHERE ident = ?').get('sensor-1') as { pubchans: string };
    assert.equal(row.pubchans, '["cowrie.sessions"]');
    assert.ok(!JSON.stringify(await keys.list()).includes(k.secret));
    assert.equal(await keys.create({ ident: 'sensor-1' }), undefined, 'create refuses an existing ident');
    await assert.rejects(async () => keys.put({ ident: 'x'.repeat(256) }));
  });

  it('measures idents and channels in UTF-8 bytes, as the wire does', async () => {
    // '€' is 3 bytes: 85 of them fit a 255-byte field, 100 (300 bytes, 100 characters) do not.
    assert.equal((await keys.put({ ident: '€'.repeat(85), subchans: ['€'.repeat(85)] })).ident, '€'.repeat(85));
    await assert.rejects(async () => keys.put({ ident: '€'.repeat(100) }), /255 bytes of UTF-8/);
    await assert.rejects(async () => keys.put({ ident: 'sensor-utf8', pubchans: ['€'.repeat(100)] }), /255 bytes of UTF-8/);
    assert.equal(await keys.get('€'.repeat(100)), undefined);
  });

  it('imports the reference JSON auth file format', async () => {
    const n = await keys.importReference({ a: { owner: 'o', secret: 's3cr3t-aaa', pubchans: ['p'], subchans: ['s'] }, b: { secret: 'bbbbbbbbb' } });
    assert.equal(n, 2);
    assert.deepEqual(await keys.get('b'), { ident: 'b', owner: '', secret: 'bbbbbbbbb', pubchans: [], subchans: [] });
    await assert.rejects(async () => keys.importReference({ c: { owner: 'no secret' } }));
  });

  it('reports changes made by another connection (another process) to watchers', async () => {
    const seen: string[] = [];
    const stop = keys.watch((idents) => seen.push(...(idents ?? [])));
    const other = openDatabase(dbPath);
    const otherKeys = new AuthkeyService({ store: new SqliteAuthkeyStore(other) });
    await otherKeys.remove('a');
    await otherKeys.put({ ident: 'new-one' });
    const deadline = Date.now() + 3000;
    while ((!seen.includes('a') || !seen.includes('new-one')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    stop();
    other.close();
    assert.ok(seen.includes('a') && seen.includes('new-one'), `saw ${seen.join(',')}`);
  });

  it('CLI add/list/rotate/rm/import, and rm in another process disconnects a live client', async () => {
    const broker = new Broker({ authStore: keys });
    const addr = await broker.listen('tcp:port=0:interface=127.0.0.1');
    try {
      const add = capture();
      assert.equal(await runAuthkeyCli(['add', 'cli-key', '--owner', 'me', '--sub', 'chan.a', '--pub', 'chan.a'], add.io, dbPath), 0);
      const secret = /secret: (\S+)/.exec(add.out())![1]!;
      const list = capture();
      assert.equal(await runAuthkeyCli(['list'], list.io, dbPath), 0);
      assert.match(list.out(), /cli-key\tme\tchan\.a\tchan\.a/);
      assert.ok(!list.out().includes(secret));

      const client = new HpfeedsClient({ host: '127.0.0.1', port: addr.port, ident: 'cli-key', secret, reconnect: false });
      client.on('error', () => {});
      const gone = new Promise<string>((r) => client.once('disconnect', r));
      await client.connect();
      client.subscribe('chan.a');
      await new Promise((r) => setTimeout(r, 100));
      const rm = capture();
      assert.equal(await runAuthkeyCli(['rm', 'cli-key'], rm.io, dbPath), 0);
      await gone;
      await client.close();

      const missing = capture();
      assert.equal(await runAuthkeyCli(['rm', 'cli-key'], missing.io, dbPath), 1);
      assert.match(missing.err(), /no authkey cli-key/);

      const file = join(dir.path, 'auth.json');
      writeFileSync(file, JSON.stringify({ imported: { owner: 'x', secret: 'imported-secret', pubchans: [], subchans: ['c'] } }));
      const imp = capture();
      assert.equal(await runAuthkeyCli(['import', file], imp.io, dbPath), 0);
      assert.equal((await keys.get('imported'))?.secret, 'imported-secret');
      const rot = capture();
      assert.equal(await runAuthkeyCli(['rotate', 'imported'], rot.io, dbPath), 0);
      assert.notEqual((await keys.get('imported'))?.secret, 'imported-secret');
      const bad = capture();
      assert.equal(await runAuthkeyCli(['frobnicate'], bad.io, dbPath), 2);
    } finally {
      await broker.close();
    }
  });
});
