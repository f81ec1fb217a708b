import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

function redisCommand(port: number, line: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1', () => s.write(`${line}\r\n`));
    s.once('data', (d) => {
      res(d.toString());
      s.destroy();
    });
    s.once('error', rej);
  });
}

describe('private redis-server', () => {
  let redis: TestRedis | undefined;
  after(() => redis?.dispose());

  it('starts on a free port, keeps data across kill -9 with AOF, and stops', async () => {
    redis = await startTestRedis();
    assert.notEqual(redis.port, 6379);
    assert.equal(await redisCommand(redis.port, 'SET k v'), '+OK\r\n');
    await redis.kill();
    await assert.rejects(redisCommand(redis.port, 'PING'));
    await redis.restart();
    assert.equal(await redisCommand(redis.port, 'GET k'), '$1\r\nv\r\n');
    const pid = redis.pid!;
    await redis.stop();
    await assert.rejects(redisCommand(redis.port, 'PING'));
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the redis-server process is gone after stop()');
  });
});
