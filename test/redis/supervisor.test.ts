// The supervised private redis-server, in-process: restart after SIGKILL with its data, back-off
// while restarts fail, a clean stop, and a data directory another live core uses is refused.
import assert from 'node:assert/strict';
import { execFileSync, fork } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { freePort, isAlive, readRecord, redisInline, startSupervisedRedis, RedisDirInUseError, type RedisLogger, type SupervisedRedis } from '../../src/redis/index.js';
import { killAll, track, until } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

function memoryLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? '' });
  const logger: RedisLogger = { debug: () => undefined, info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

describe('supervised private redis-server', () => {
  const dir = tempDir('apiary-supervisor-');
  const running: SupervisedRedis[] = [];
  after(async () => {
    for (const r of running) await r.stop();
    killAll();
    dir.cleanup();
  });

  it('restarts after SIGKILL on the same port with its data, logs and counts it, stops cleanly', async () => {
    const registry = new Registry();
    const { logger, lines } = memoryLogger();
    const redis = await startSupervisedRedis({ dir: join(dir.path, 'a'), logger, registry });
    running.push(redis);
    track(redis.pid);
    assert.equal(readRecord(redis.dir)?.pid, redis.pid);
    assert.equal(await redisInline(redis.port, 'SET k v'), '+OK\r\n');
    const first = redis.pid!;
    process.kill(first, 'SIGKILL');
    await until(() => redis.pid !== undefined && redis.pid !== first, 15_000, 'a new redis-server');
    track(redis.pid);
    assert.equal(redis.restarts, 1);
    assert.equal(await redisInline(redis.port, 'GET k'), '$1\r\nv\r\n', 'the AOF kept the data');
    assert.equal(readRecord(redis.dir)?.pid, redis.pid, 'the record follows the restart');
    assert.ok(lines.some((l) => l.level === 'warn' && /exited unexpectedly \(SIGKILL\); restart #1/.test(l.msg)));
    assert.ok(lines.some((l) => l.level === 'info' && /restarted/.test(l.msg)));
    assert.match(await registry.metrics(), /^apiary_redis_restarts_total 1$/m);

    const last = redis.pid!;
    await redis.stop();
    assert.ok(!isAlive(last));
    assert.equal(existsSync(join(redis.dir, 'apiary-redis.json')), false);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(redis.pid, undefined, 'no restart after stop()');
  });

  it('backs off while restarts fail and recovers when they succeed', async () => {
    // A redis-server wrapper that fails while the flag file exists.
    const flag = join(dir.path, 'fail-now');
    const wrapper = join(dir.path, 'redis-wrapper.sh');
    writeFileSync(wrapper, `#!/bin/sh\nif [ -e ${JSON.stringify(flag)} ]; then echo "# simulated failure" >&2; exit 1; fi\nexec redis-server "$@"\n`);
    chmodSync(wrapper, 0o755);
    const { logger, lines } = memoryLogger();
    const redis = await startSupervisedRedis({ dir: join(dir.path, 'b'), binary: wrapper, logger, initialBackoffMs: 50, maxBackoffMs: 400 });
    running.push(redis);
    track(redis.pid);
    writeFileSync(flag, '');
    process.kill(redis.pid!, 'SIGKILL');
    await until(() => lines.filter((l) => l.level === 'error').length >= 4, 20_000, 'four failed restarts');
    const delays = lines.filter((l) => l.level === 'error').map((l) => l.obj.nextInMs as number);
    assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 400], 'first retry after 50 ms, then doubling, capped at 400 ms');
    rmSync(flag);
    await until(() => redis.pid, 10_000, 'the restart once the failure is gone');
    track(redis.pid);
    assert.equal(await redisInline(redis.port, 'PING'), '+PONG\r\n');
  });

  it('stops a leftover found only in the process table (its record lost)', async () => {
    const d = join(dir.path, 'd');
    mkdirSync(d);
    const port = await freePort();
    // Started by a shell that exits at once: re-parented, like the server of a core killed with -9.
    execFileSync('sh', ['-c', `redis-server --port ${port} --bind 127.0.0.1 --dir '${d}' --save '' --appendonly yes > /dev/null 2>&1 &`]);
    const info = await until(async () => (await redisInline(port, 'INFO server'))?.match(/process_id:(\d+)/), 10_000, 'the orphan to answer');
    const orphan = Number(info![1]);
    track(orphan);
    const { logger, lines } = memoryLogger();
    const redis = await startSupervisedRedis({ dir: d, logger });
    running.push(redis);
    track(redis.pid);
    assert.ok(lines.some((l) => l.level === 'warn' && l.obj.redisPid === orphan && /left running by a previous core/.test(l.msg)));
    assert.ok(!isAlive(orphan));
    await redis.stop();
  });

  it('refuses a data directory whose redis-server belongs to another running core', async () => {
    const shared = join(dir.path, 'c');
    const other = fork(join(import.meta.dirname, 'supervised-child.ts'), [shared], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    track(other.pid);
    const otherRedis = await new Promise<number>((res, rej) => {
      other.once('message', (m) => res((m as { pid: number }).pid));
      other.once('exit', (code) => rej(new Error(`child exited ${code}`)));
    });
    track(otherRedis);
    const { logger } = memoryLogger();
    await assert.rejects(startSupervisedRedis({ dir: shared, logger }), (err: Error) => {
      assert.ok(err instanceof RedisDirInUseError);
      assert.match(err.message, new RegExp(`another apiary core \\(pid ${other.pid}\\) is running with its redis-server \\(pid ${otherRedis}\\)`));
      return true;
    });
    assert.ok(isAlive(otherRedis), 'the other core keeps its server');
    other.send('stop');
    await new Promise((r) => other.once('exit', r));
    assert.ok(!isAlive(otherRedis));
  });
});
