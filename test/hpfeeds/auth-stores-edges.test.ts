// hpfeeds auth stores edge by edge (mutation testing of src/hpfeeds/auth-stores.ts): the exact
// error of each broken reference-file entry, owner defaults, change notifications of the memory
// and composite stores (and stopping them), fall-through of the composite, and what a reload of
// the JSON file reports.
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CompositeAuthStore, EnvAuthStore, JsonFileAuthStore, MemoryAuthStore, parseAuthKeysJson } from '../../src/hpfeeds/auth-stores.js';
import type { AuthKey, AuthStore } from '../../src/hpfeeds/types.js';
import { tempDir } from '../helpers/tmp.js';
import { CaptureLogger, key, sleep } from './harness.js';

const parseError = (text: string, message: string) =>
  assert.throws(
    () => parseAuthKeysJson(text),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal(err.message, message);
      return true;
    },
  );

describe('reference auth file parsing: exact errors', () => {
  it('names the problem and the ident of every broken entry', () => {
    for (const root of ['null', '[]', '1', '"x"']) parseError(root, 'root is not an object of ident -> authkey');
    parseError('{"x":null}', 'entry "x" is not an object');
    parseError('{"x":["s"]}', 'entry "x" is not an object');
    parseError('{"x":"s"}', 'entry "x" is not an object');
    parseError(JSON.stringify({ ['€'.repeat(100)]: { secret: 's' } }), `ident "${'€'.repeat(100)}" must be 1 to 255 bytes of UTF-8 (it is 300)`);
    parseError('{"x":{"secret":""}}', 'entry "x" has no secret');
    parseError('{"x":{"secret":5}}', 'entry "x" has no secret');
    parseError('{"x":{"secret":"s","owner":5}}', 'entry "x": owner must be a string');
    parseError('{"x":{"secret":"s","subchans":"a"}}', 'entry "x": subchans must be a list of strings');
    parseError('{"x":{"secret":"s","pubchans":["a",1]}}', 'entry "x": pubchans must be a list of strings');
    parseError('{"x":{"secret":"s","subchans":["a",""]}}', 'entry "x": channel "" in subchans must be 1 to 255 bytes of UTF-8 (it is 0)');
  });

  it('owner: the ident when absent, kept as given otherwise (even empty)', () => {
    const keys = parseAuthKeysJson('{"a":{"secret":"s"},"b":{"secret":"s","owner":""},"c":{"secret":"s","owner":"org","pubchans":["p"]}}');
    assert.deepEqual([...keys.values()], [
      { ident: 'a', owner: 'a', secret: 's', pubchans: [], subchans: [] },
      { ident: 'b', owner: '', secret: 's', pubchans: [], subchans: [] },
      { ident: 'c', owner: 'org', secret: 's', pubchans: ['p'], subchans: [] },
    ]);
  });
});

describe('memory, env and composite stores', () => {
  it('memory: set and delete of a known ident notify watchers with that ident; a stopped watcher hears nothing', () => {
    const store = new MemoryAuthStore([key('a', 's', [], [])]);
    const seen: (readonly string[] | undefined)[] = [];
    const stop = store.watch((idents) => seen.push(idents));
    store.set(key('b', 's', [], []));
    assert.equal(store.delete('a'), true);
    assert.equal(store.delete('a'), false);
    assert.equal(store.delete('nobody'), false);
    assert.deepEqual(seen, [['b'], ['a']]);
    stop();
    store.set(key('c', 's', [], []));
    assert.equal(seen.length, 2);
  });

  it('env: the ident is upper-cased in the variable names; an empty owner means the ident', () => {
    const store = new EnvAuthStore({ HPFEEDS_MIXED_CASE_SECRET: 'm', HPFEEDS_MIXED_CASE_OWNER: '', HPFEEDS_MIXED_CASE_SUBCHANS: ' a , b ' });
    assert.deepEqual(store.get('Mixed_Case'), { ident: 'Mixed_Case', owner: 'Mixed_Case', secret: 'm', pubchans: [], subchans: ['a', 'b'] });
  });

  it('composite: a store answering null or undefined (sync or async) passes the question on', async () => {
    const nullStore: AuthStore = { get: () => null as unknown as undefined };
    const asyncNone: AuthStore = { get: async () => undefined };
    const memory = new MemoryAuthStore([key('a', 'from-memory', [], [])]);
    assert.equal((new CompositeAuthStore([nullStore, memory]).get('a') as AuthKey).secret, 'from-memory');
    const viaAsync = new CompositeAuthStore([asyncNone, memory]).get('a');
    assert.ok(viaAsync instanceof Promise);
    assert.equal((await viaAsync)?.secret, 'from-memory');
    assert.equal(new CompositeAuthStore([nullStore, memory]).get('b'), undefined);
    assert.equal(new CompositeAuthStore([]).get('a'), undefined);
  });

  it('composite: watches every store that can be watched, and stops watching all of them', () => {
    const one = new MemoryAuthStore();
    const two = new MemoryAuthStore();
    const composite = new CompositeAuthStore([one, new EnvAuthStore({}), two]);
    const seen: string[] = [];
    const stop = composite.watch((idents) => seen.push(...(idents ?? [])));
    one.set(key('x', 's', [], []));
    two.set(key('y', 's', [], []));
    assert.deepEqual(seen, ['x', 'y']);
    stop();
    one.set(key('x2', 's', [], []));
    two.set(key('y2', 's', [], []));
    assert.deepEqual(seen, ['x', 'y']);
  });
});

describe('JSON file store reloads', () => {
  const dir = tempDir('apiary-hpfeeds-auth-edges-');
  after(() => dir.cleanup());
  let n = 0;
  const write = (path: string, db: unknown) => {
    writeFileSync(`${path}.tmp`, typeof db === 'string' ? db : JSON.stringify(db));
    renameSync(`${path}.tmp`, path);
  };

  it('reports exactly the added, removed and changed idents; an unchanged file reports none', async () => {
    const path = join(dir.path, `u${n++}.json`);
    write(path, { same: { secret: 's' }, changes: { secret: 's' }, goes: { secret: 's' } });
    const logger = new CaptureLogger();
    const store = await JsonFileAuthStore.open({ path, logger, pollIntervalMs: 60_000 });
    try {
      const loaded = logger.entries.find((e) => e.msg === 'hpfeeds auth file loaded');
      assert.deepEqual([loaded?.level, loaded?.obj.keys, loaded?.obj.path], ['info', 3, path]);
      const seen: (readonly string[] | undefined)[] = [];
      store.watch((idents) => seen.push(idents));
      write(path, { same: { secret: 's' }, changes: { secret: 's', subchans: ['c'] }, comes: { secret: 's' } });
      assert.equal(await store.reload(), true);
      assert.deepEqual(seen.map((s) => [...(s ?? [])].sort()), [['changes', 'comes', 'goes']]);
      const reloaded = logger.entries.find((e) => e.msg === 'hpfeeds auth file reloaded');
      assert.deepEqual([reloaded?.level, reloaded?.obj.keys, reloaded?.obj.changed], ['info', 3, 3]);
      assert.equal(await store.reload(), true);
      assert.equal(seen.length, 1, 'nothing changed: nobody is told');
      assert.equal(store.size, 3);
    } finally {
      store.close();
    }
  });

  it('a reload asked for during a reload runs again after it, and callers share the running one', async () => {
    const path = join(dir.path, `u${n++}.json`);
    write(path, { a: { secret: 's' } });
    // Neither fs.watch nor polling: only the re-run can read the second edit.
    const store = await JsonFileAuthStore.open({ path, pollIntervalMs: 0, watchFiles: false });
    try {
      // The second edit lands after the running reload has read the file (its change is being
      // reported), and a reload is asked for then: only a re-run can see that edit.
      let second: Promise<boolean> | undefined;
      store.watch(() => {
        if (second) return;
        write(path, { a: { secret: 's' }, b: { secret: 's' }, c: { secret: 's' } });
        second = store.reload();
      });
      write(path, { a: { secret: 's' }, b: { secret: 's' } });
      const first = store.reload();
      assert.equal(await first, true);
      assert.equal(second, first, 'a reload asked for while one runs gets the running one');
      assert.equal(store.get('b')?.secret, 's');
      const deadline = Date.now() + 3000;
      while (!store.get('c') && Date.now() < deadline) await sleep(10);
      assert.equal(store.get('c')?.secret, 's', 'the reload asked for during the first one ran after it');
    } finally {
      store.close();
    }
  });

  it('a poll shorter than the settle window still reloads a changed file (the window is not pushed back)', async () => {
    const path = join(dir.path, `u${n++}.json`);
    write(path, { a: { secret: 's' } });
    // Each 5 ms poll sees the changed fingerprint until a reload runs; it must not keep postponing it.
    const store = await JsonFileAuthStore.open({ path, pollIntervalMs: 5 });
    try {
      write(path, { a: { secret: 'polled' } });
      const deadline = Date.now() + 1500;
      while (store.get('a')?.secret !== 'polled' && Date.now() < deadline) await sleep(10);
      assert.equal(store.get('a')?.secret, 'polled');
    } finally {
      store.close();
    }
  });

  it('a bad edit keeps the previous keys and says why; once closed, edits are no longer picked up', async () => {
    const path = join(dir.path, `u${n++}.json`);
    write(path, { a: { secret: 's' } });
    const logger = new CaptureLogger();
    const store = await JsonFileAuthStore.open({ path, logger, pollIntervalMs: 30 });
    write(path, '{"a":{}}');
    assert.equal(await store.reload(), false);
    const failed = logger.entries.find((e) => e.msg === 'hpfeeds auth file reload failed; keeping the previous keys');
    assert.deepEqual([failed?.level, failed?.obj.err, failed?.obj.path], ['error', 'entry "a" has no secret', path]);
    assert.equal(store.get('a')?.secret, 's');
    // The watcher or the poll picks up a good edit by itself.
    write(path, { a: { secret: 'new' } });
    const deadline = Date.now() + 3000;
    while (store.get('a')?.secret !== 'new' && Date.now() < deadline) await sleep(10);
    assert.equal(store.get('a')?.secret, 'new');
    // A reload under way when the store closes keeps the keys it had.
    write(path, { a: { secret: 'while-closing' } });
    const inFlight = store.reload();
    store.close();
    assert.equal(await inFlight, false);
    write(path, { a: { secret: 'after-close' } });
    assert.equal(await store.reload(), false, 'a closed store reads nothing');
    await sleep(300);
    assert.equal(store.get('a')?.secret, 'new');
  });

  const reloads = (logger: CaptureLogger) => logger.entries.filter((e) => e.msg === 'hpfeeds auth file reloaded').length;
  const waitSecret = async (store: JsonFileAuthStore, ident: string, secret: string) => {
    const deadline = Date.now() + 3000;
    while (store.get(ident)?.secret !== secret && Date.now() < deadline) await sleep(10);
    assert.equal(store.get(ident)?.secret, secret);
  };

  it('fs.watch alone (polling off) reloads the file on a rename-over save, and ignores its neighbours', async () => {
    const path = join(dir.path, `u${n++}.json`);
    write(path, { a: { secret: 's' } });
    const logger = new CaptureLogger();
    const store = await JsonFileAuthStore.open({ path, logger, pollIntervalMs: 0 });
    try {
      // Another file in the watched directory: no reload (a reload would be logged within ~50 ms).
      write(join(dir.path, `neighbour${n}.json`), { z: { secret: 's' } });
      await sleep(400);
      assert.equal(reloads(logger), 0, 'a neighbour file changed: the store must not reload');
      write(path, { a: { secret: 'watched' } });
      await waitSecret(store, 'a', 'watched');
      assert.equal(reloads(logger), 1);
    } finally {
      store.close();
    }
  });

  it('polling alone (watchFiles: false) reloads a changed file and leaves an unchanged one alone', async () => {
    const path = join(dir.path, `u${n++}.json`);
    write(path, { a: { secret: 's' } });
    const logger = new CaptureLogger();
    const store = await JsonFileAuthStore.open({ path, logger, pollIntervalMs: 20, watchFiles: false });
    try {
      await sleep(300); // ~15 polls of an unchanged file
      assert.equal(reloads(logger), 0, 'an unchanged file must not be reloaded');
      write(path, { a: { secret: 'polled' } });
      await waitSecret(store, 'a', 'polled');
      assert.equal(reloads(logger), 1);
      await sleep(200);
      assert.equal(reloads(logger), 1, 'once reloaded, the new fingerprint is the reference');
    } finally {
      store.close();
    }
  });

  it('with both off, only an explicit reload reads the file; a negative poll period is refused', async () => {
    const path = join(dir.path, `u${n++}.json`);
    write(path, { a: { secret: 's' } });
    const store = await JsonFileAuthStore.open({ path, pollIntervalMs: 0, watchFiles: false });
    try {
      write(path, { a: { secret: 'edited' } });
      await sleep(300);
      assert.equal(store.get('a')?.secret, 's');
      assert.equal(await store.reload(), true);
      assert.equal(store.get('a')?.secret, 'edited');
    } finally {
      store.close();
    }
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await assert.rejects(JsonFileAuthStore.open({ path, pollIntervalMs: bad }), /pollIntervalMs must be 0 or more/);
    }
  });
});
