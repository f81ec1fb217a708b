// What must hold across instances besides commands: the guess limits (node TOTP codes, console
// passwords) count every instance's failures, and revocation notices (tokens, console sessions,
// hpfeeds authkeys) reach the other instances at once. With session routing off, none of it touches
// Redis.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import { AuthkeyService, SqliteAuthkeyStore } from '../../src/authkeys/index.js';
import { RedisFailureWindow, startSessionRouting, type SessionRouting } from '../../src/cluster-routing/index.js';
import { openDatabase } from '../../src/db/index.js';
import { generateNodeSecret } from '../../src/protocol/index.js';
import { startTestCore } from '../helpers/core.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';
import { startFleet, waitFor, type Fleet, type Instance } from './helpers.js';

const logger = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;

describe('guess limits shared by two instances', { timeout: 120_000 }, () => {
  let fleet: Fleet;
  let a: Instance, b: Instance;
  before(async () => {
    fleet = await startFleet(['a', 'b']);
    [a, b] = fleet.instances as [Instance, Instance];
  });
  after(async () => {
    await fleet?.close();
  });

  it('wrong TOTP codes sent to both instances add up: the budget of one is spent, then even the right code is refused', async () => {
    const secret = await fleet.provision(a, 'guessed');
    const attempt = async (to: Instance, withSecret: string) => {
      const node = fleet.node(to, 'guessed', withSecret);
      const answer = Promise.race([node.waitFor('rejected').then(([ack]) => ack.message), node.waitFor('registered').then(() => 'accepted')]);
      node.start();
      const message = await answer;
      await node.stop();
      return message;
    };
    // 5 failures per (name, address) and minute: 3 through a, 2 through b.
    for (const to of [a, b, a, b, a]) assert.equal(await attempt(to, generateNodeSecret()), 'TOTP code invalid');
    assert.equal(await attempt(b, secret), 'Too many failed attempts', 'b counts the failures a saw');
    assert.equal(await attempt(a, secret), 'Too many failed attempts');
  });

  it('failed console logins on both instances add up to one budget', async () => {
    const created = await a.api('POST', '/api/v1/users', { username: 'ann', role: 'viewer', password: 'correct horse battery staple' });
    assert.equal(created.status, 201);
    const login = async (via: Instance, password: string) => (await via.api('POST', '/api/v1/session', { username: 'ann', password })).status;
    // 10 failures per username and 15 minutes: 5 through each instance.
    for (let i = 0; i < 10; i++) assert.equal(await login(i % 2 ? a : b, `wrong password ${i}`), 401);
    assert.equal(await login(a, 'correct horse battery staple'), 429);
    assert.equal(await login(b, 'correct horse battery staple'), 429);
  });
});

describe('revocation notices between instances', { timeout: 60_000 }, () => {
  let redis: TestRedis;
  let one: SessionRouting, two: SessionRouting;
  const dir = tempDir('apiary-notices-');
  before(async () => {
    redis = await startTestRedis({ appendOnly: false });
    one = await startSessionRouting({ redisUrl: redis.url, instanceId: 'one', logger });
    two = await startSessionRouting({ redisUrl: redis.url, instanceId: 'two', logger });
  });
  after(async () => {
    await one?.close();
    await two?.close();
    await redis?.dispose();
    dir.cleanup();
  });

  it('a revoked token and ended console sessions reach the other instance, not the sender', async () => {
    const onOne: string[] = [];
    const onTwo: string[] = [];
    const tellOthers = one.onTokensRevoked((id) => onOne.push(id));
    two.onTokensRevoked((id) => onTwo.push(id));
    const endedOnTwo: string[] = [];
    const sessionsEnded = one.onSessionsEnded(() => undefined);
    two.onSessionsEnded((keys) => endedOnTwo.push(...keys));
    tellOthers('tok-1');
    sessionsEnded(['s:1', 's:2']);
    await waitFor(() => onTwo.length === 1 && endedOnTwo.length === 2, 'the notices', 5000);
    assert.deepEqual(onTwo, ['tok-1']);
    assert.deepEqual(endedOnTwo, ['s:1', 's:2']);
    assert.deepEqual(onOne, [], 'an instance does not act on its own notice twice');
  });

  it('an hpfeeds authkey removed on one instance makes the other re-check its connections at once', async () => {
    // Database polling (the fallback for changes by other processes) slowed right down: only the
    // notice can be this quick.
    const file = join(dir.path, 'keys.sqlite');
    const db1 = openDatabase(file);
    const db2 = openDatabase(file);
    const keys1 = new AuthkeyService({ store: new SqliteAuthkeyStore(db1), pollIntervalMs: 600_000 });
    const keys2 = new AuthkeyService({ store: new SqliteAuthkeyStore(db2), pollIntervalMs: 600_000 });
    try {
      await keys1.put({ ident: 'sensor-1', secret: 'secret-secret', pubchans: ['x'] });
      const seenOnTwo: string[] = [];
      const stop1 = one.sharedAuthStore(keys1).watch!(() => undefined);
      const stop2 = two.sharedAuthStore(keys2).watch!((idents) => seenOnTwo.push(...(idents ?? [])));
      assert.equal(await keys1.remove('sensor-1'), true);
      await waitFor(() => seenOnTwo.includes('sensor-1'), 'the change on the other instance', 3000);
      assert.equal(await keys2.get('sensor-1'), undefined);
      stop1();
      stop2();
    } finally {
      keys1.close();
      keys2.close();
      db1.close();
      db2.close();
    }
  });

  it('a shared failure window blocks at max failures and frees the key when the oldest leaves the window', async () => {
    const w1 = one.failureWindow('test', 3, 60_000);
    const w2 = two.failureWindow('test', 3, 60_000);
    await w1.record('k', 1000);
    await w2.record('k', 2000);
    assert.equal(await w1.blockedFor('k', 2500), 0);
    await w2.record('k', 2000);
    assert.equal(await w1.blockedFor('k', 3000), 58_000, 'until the failure at 1000 leaves the window');
    assert.equal(await w2.isBlocked('k', 61_000), false);
    await w1.clear('k');
    assert.equal(await w2.blockedFor('k', 3000), 0);
    // Without Redis the window lets attempts through (and says so) instead of refusing everyone.
    const errors: Error[] = [];
    const dead = new Redis({ port: 1, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    const offline = new RedisFailureWindow(dead, 'x:', 1, 60_000, (err) => errors.push(err));
    await offline.record('k', 1);
    assert.equal(await offline.blockedFor('k', 2), 0);
    assert.equal(errors.length, 2);
    dead.disconnect();
  });
});

describe('session routing off (one instance)', { timeout: 60_000 }, () => {
  it('opens no routing connection and writes no routing key', async () => {
    const core = await startTestCore({ env: { ENROLLMENT_MODE: 'provisioned' } });
    const probe = new Redis(core.redis.url);
    try {
      const created = await core.api('POST', '/api/v1/nodes', { token: core.adminToken, body: { name: 'solo' } });
      assert.equal(created.status, 201);
      const clients = String(await probe.client('LIST'));
      assert.doesNotMatch(clients, /apiary-routing/);
      assert.deepEqual(await probe.keys('*routing*'), []);
      assert.deepEqual(await probe.keys('*limit*'), []);
      const names = await probe.keys('*apiary-commands@*');
      assert.deepEqual(names, [], 'the one queue keeps its name');
    } finally {
      probe.disconnect();
      await core.close();
    }
  });
});
