import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, PoolBusyError, QueryTimeoutError, ReadPool } from '../../src/db/index.js';
import { moduleBeside } from '../../src/db/worker-spawn.js';
import { tempDir } from '../helpers/tmp.js';

const modules = { test: moduleBeside(import.meta.url, 'fixtures/test-queries') };

describe('read pool', () => {
  const dir = tempDir('apiary-read-pool-');
  const path = `${dir.path}/core.db`;
  let pool: ReadPool;
  before(async () => {
    openDatabase(path).close();
    pool = new ReadPool({ dbPath: path, modules, size: 1, timeoutMs: 10_000, maxQueued: 2 });
    await pool.started();
  });
  after(async () => {
    await pool.close();
    dir.cleanup();
  });

  it('runs a query module function on a worker connection and returns plain data', async () => {
    assert.deepEqual(await pool.run('test', 'echo', { value: [1, 'a', { b: null }] }), { value: [1, 'a', { b: null }], threadCount: { n: 0 } });
  });

  it('rejects with the error name and message the query threw', async () => {
    await assert.rejects(pool.run('test', 'fail', {}), (err: Error) => err.name === 'QueryError' && err.message === 'bad filter');
    await assert.rejects(pool.run('test', 'nope', {}), /unknown query test.nope/);
  });

  it('answers a query past its limit at the limit, recycles the worker, and keeps the event loop free', async () => {
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const t = Date.now();
    await assert.rejects(pool.run('test', 'spin', { n: 1e9 }, { timeoutMs: 300 }), (err: Error) => err instanceof QueryTimeoutError && /time limit of 300 ms/.test(err.message));
    const waited = Date.now() - t;
    clearInterval(ticker);
    assert.ok(waited < 3000, `rejected after ${waited} ms`);
    // A loop blocked for the whole wait would tick at most once; a free one ticks every 10 ms, or
    // far less often on a loaded machine (6 ticks in 369 ms seen under a CPU hog).
    assert.ok(ticks >= 3, `the main loop ran meanwhile (${ticks} ticks in ${waited} ms)`);
    // A fresh worker answers while the old thread still finishes its statement in the background.
    assert.deepEqual(await pool.run('test', 'echo', { value: 1 }, { timeoutMs: 20_000 }), { value: 1, threadCount: { n: 0 } });
  });

  it('refuses work beyond its queue with PoolBusyError', async () => {
    // The worker the previous test recycled must be up and idle first, or `running` queues too.
    await pool.run('test', 'echo', { value: 0 }, { timeoutMs: 20_000 });
    const running = pool.run('test', 'spin', { n: 2e6 }, { timeoutMs: 20_000 });
    const queued = [pool.run('test', 'echo', { value: 1 }), pool.run('test', 'echo', { value: 2 })];
    await assert.rejects(pool.run('test', 'echo', { value: 3 }), PoolBusyError);
    await running;
    assert.deepEqual((await Promise.all(queued)).map((r) => (r as { value: number }).value), [1, 2]);
  });
});
