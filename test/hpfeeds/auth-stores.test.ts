import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import {
  CompositeAuthStore,
  EnvAuthStore,
  JsonFileAuthStore,
  MemoryAuthStore,
  parseAuthKeysJson,
} from '../../src/hpfeeds/auth-stores.js';
import { encodePublish, encodeSubscribe } from '../../src/hpfeeds/codec.js';
import type { AuthKey, AuthStore, HpfeedsLogger } from '../../src/hpfeeds/types.js';
import { tempDir } from '../helpers/tmp.js';
import { CaptureLogger, RawPeer, key, sleep, startBroker, waitFor, waitSubscriptions } from './harness.js';

function writeJson(path: string, db: Record<string, unknown>): void {
  // Write-then-rename, as editors and config management do.
  writeFileSync(`${path}.tmp`, JSON.stringify(db, null, 2));
  renameSync(`${path}.tmp`, path);
}

const REFERENCE_DB = {
  alice: { owner: 'alice-org', secret: 'alice-secret', pubchans: ['events'], subchans: ['events', 'alerts'] },
  bob: { owner: 'bob-org', secret: 'bob-secret', pubchans: [], subchans: ['events'] },
};

describe('hpfeeds JSON file auth store', () => {
  const dir = tempDir('apiary-hpfeeds-auth-');
  const path = join(dir.path, 'users.json');
  after(() => dir.cleanup());

  it('parses the reference format and rejects broken entries precisely', () => {
    const keys = parseAuthKeysJson(JSON.stringify(REFERENCE_DB));
    assert.deepEqual(keys.get('alice'), { ident: 'alice', ...REFERENCE_DB.alice });
    assert.deepEqual(parseAuthKeysJson('{"x":{"secret":"s"}}').get('x'), { ident: 'x', owner: 'x', secret: 's', pubchans: [], subchans: [] });
    assert.throws(() => parseAuthKeysJson('[]'), /root is not an object/);
    assert.throws(() => parseAuthKeysJson('{"x":{"owner":"o"}}'), /"x" has no secret/);
    assert.throws(() => parseAuthKeysJson('{"x":{"secret":"s","pubchans":"a"}}'), /pubchans must be a list of strings/);
    assert.throws(() => parseAuthKeysJson('{"x":1}'), /"x" is not an object/);
    assert.throws(() => parseAuthKeysJson('{'), SyntaxError);
  });

  it('measures idents and channels in UTF-8 bytes, as the wire does', () => {
    // 100 characters but 300 bytes: no hpfeeds frame can carry them, so the entry is refused.
    const long = '€'.repeat(100);
    assert.throws(() => parseAuthKeysJson(JSON.stringify({ [long]: { secret: 's' } })), /must be 1 to 255 bytes of UTF-8 \(it is 300\)/);
    assert.throws(() => parseAuthKeysJson(JSON.stringify({ x: { secret: 's', subchans: [long] } })), /channel .* in subchans must be 1 to 255 bytes/);
    assert.throws(() => parseAuthKeysJson(JSON.stringify({ '': { secret: 's' } })), /must be 1 to 255 bytes/);
    const fits = '€'.repeat(85); // 255 bytes
    assert.equal(parseAuthKeysJson(JSON.stringify({ [fits]: { secret: 's', pubchans: [fits] } })).get(fits)?.pubchans[0], fits);
  });

  it('refuses to open a missing or invalid file', async () => {
    await assert.rejects(JsonFileAuthStore.open({ path: join(dir.path, 'missing.json') }), /ENOENT/);
    const bad = join(dir.path, 'bad.json');
    writeFileSync(bad, '{"x":{}}');
    await assert.rejects(JsonFileAuthStore.open({ path: bad }), /no secret/);
  });

  it('hot-reloads, keeps the previous keys on a bad edit, and revalidates live connections', async () => {
    writeJson(path, REFERENCE_DB);
    const logger: HpfeedsLogger = new CaptureLogger();
    const store = await JsonFileAuthStore.open({ path, logger, pollIntervalMs: 100 });
    const t = await startBroker({ authStore: store });
    try {
      assert.equal(store.size, 2);
      const alice = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events'), encodeSubscribe('alice', 'alerts')]);
      const bob = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
      await waitSubscriptions(t, 'alice', 'alerts', 1);
      await waitSubscriptions(t, 'bob', 'events', 1);

      // A broken edit is logged and changes nothing.
      writeFileSync(path, '{ not json');
      await waitFor(() => (logger as CaptureLogger).text().includes('reload failed'), 5000, 'failed reload logged');
      assert.equal(store.get('alice')?.secret, 'alice-secret');

      // alice loses 'events', bob's secret is rotated.
      writeJson(path, {
        alice: { ...REFERENCE_DB.alice, subchans: ['alerts'] },
        bob: { ...REFERENCE_DB.bob, secret: 'rotated' },
      });
      assert.equal(await bob.expectErrorAndClose(), 'Authentication failed for bob');
      await waitFor(() => /subscription dropped/.test(t.logger.text()), 5000, 'subscription dropped');
      t.broker.publish('core', 'events', 'gone');
      t.broker.publish('core', 'alerts', 'kept');
      await waitFor(() => alice.frames.some((f) => f.op === 3));
      await sleep(50);
      assert.deepEqual(
        alice.frames.filter((f) => f.op === 3).map((f) => (f as { channel: string }).channel),
        ['alerts'],
      );
      assert.ok(!alice.isClosed);
      assert.equal(store.get('bob')?.secret, 'rotated');
      alice.destroy();
    } finally {
      store.close();
      await t.broker.close();
    }
  });

  it('works with a pino logger (and the Fastify logger type fits HpfeedsLogger)', async () => {
    const fromFastify = (l: FastifyBaseLogger): HpfeedsLogger => l;
    const logger: HpfeedsLogger = fromFastify(pino({ level: 'silent' }));
    writeJson(path, REFERENCE_DB);
    const store = await JsonFileAuthStore.open({ path, logger });
    assert.equal(store.get('bob')?.owner, 'bob-org');
    assert.equal(await store.reload(), true);
    store.close();
  });
});

describe('hpfeeds env auth store', () => {
  it('reads HPFEEDS_<IDENT>_* from the env object it is given', () => {
    const store = new EnvAuthStore({
      HPFEEDS_SENSOR1_SECRET: 's3cret',
      HPFEEDS_SENSOR1_PUBCHANS: 'events, alerts,,',
      HPFEEDS_SENSOR1_SUBCHANS: 'commands',
      HPFEEDS_READER_SECRET: 'r',
      HPFEEDS_READER_OWNER: 'soc-team',
      HPFEEDS_EMPTY_SECRET: '',
    });
    assert.deepEqual(store.get('sensor1'), { ident: 'sensor1', owner: 'sensor1', secret: 's3cret', pubchans: ['events', 'alerts'], subchans: ['commands'] });
    assert.deepEqual(store.get('reader'), { ident: 'reader', owner: 'soc-team', secret: 'r', pubchans: [], subchans: [] });
    assert.equal(store.get('empty'), undefined);
    assert.equal(store.get('nobody'), undefined);
  });
});

describe('hpfeeds composite auth store', () => {
  it('asks stores in order, stays synchronous for synchronous stores, and awaits async ones', async () => {
    const first = new MemoryAuthStore([key('a', 'from-first', [], [])]);
    const second = new EnvAuthStore({ HPFEEDS_A_SECRET: 'from-env', HPFEEDS_B_SECRET: 'b-env' });
    const asyncStore: AuthStore = { get: async (ident) => (ident === 'c' ? key('c', 'from-async', [], []) : undefined) };
    const composite = new CompositeAuthStore([first, second, asyncStore]);
    assert.equal((composite.get('a') as AuthKey).secret, 'from-first');
    assert.equal((composite.get('b') as AuthKey).secret, 'b-env');
    const c = composite.get('c');
    assert.ok(c instanceof Promise);
    assert.equal((await c)?.secret, 'from-async');
    assert.equal(await composite.get('nobody'), undefined);
  });

  it('fails the lookup when a store fails instead of falling through', async () => {
    const composite = new CompositeAuthStore([{ get: async () => Promise.reject(new Error('db down')) }, new EnvAuthStore({ HPFEEDS_A_SECRET: 'x' })]);
    await assert.rejects(Promise.resolve(composite.get('a')), /db down/);
  });

  it('forwards change notifications to the broker', async () => {
    const memory = new MemoryAuthStore();
    const composite = new CompositeAuthStore([memory, new EnvAuthStore({ HPFEEDS_ENVY_SECRET: 'e', HPFEEDS_ENVY_PUBCHANS: 'events' })]);
    const t = await startBroker({ authStore: composite });
    try {
      memory.set(key('m', 'm-secret', [], ['events']));
      const m = await RawPeer.login(t.port, 'm', 'm-secret', [encodeSubscribe('m', 'events')]);
      const envy = await RawPeer.login(t.port, 'envy', 'e');
      await waitSubscriptions(t, 'm', 'events', 1);
      envy.write(encodePublish('envy', 'events', 'hi'));
      await waitFor(() => m.frames.some((f) => f.op === 3));
      memory.delete('m');
      assert.equal(await m.expectErrorAndClose(), 'Authentication failed for m');
      envy.destroy();
    } finally {
      await t.broker.close();
    }
  });
});
