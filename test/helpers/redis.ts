// Every test that needs Redis gets its own redis-server on a free port, in a temp directory,
// started here and stopped by the caller (usually in `after`). No test touches a shared Redis.
import { startPrivateRedis, type PrivateRedis } from '../../src/redis/private-server.js';
import { tempDir } from './tmp.js';

export interface TestRedis extends PrivateRedis {
  /** Stops the server and removes its directory. */
  dispose(): Promise<void>;
}

export async function startTestRedis(opts: { appendOnly?: boolean } = {}): Promise<TestRedis> {
  const dir = tempDir('apiary-redis-');
  const redis = await startPrivateRedis({ dir: dir.path, appendOnly: opts.appendOnly ?? true });
  return Object.assign(redis, {
    async dispose() {
      await redis.stop();
      dir.cleanup();
    },
  });
}
