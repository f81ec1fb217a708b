// Every test that needs Redis gets its own redis-server on a free port, in a temp directory,
// started here and stopped by the caller (usually in `after`). No test touches a shared Redis.
// Each server is tracked by ./children.ts, so it dies with the test process even when that
// process crashes or is killed before its `after` hooks run.
import { startPrivateRedis, type PrivateRedis } from '../../src/redis/private-server.js';
import { trackChild, untrackChild } from './children.js';
import { tempDir } from './tmp.js';

export interface TestRedis extends PrivateRedis {
  /** Stops the server and removes its directory. */
  dispose(): Promise<void>;
}

export async function startTestRedis(opts: { appendOnly?: boolean } = {}): Promise<TestRedis> {
  const dir = tempDir('apiary-redis-');
  const redis = await startPrivateRedis({ dir: dir.path, appendOnly: opts.appendOnly ?? true });
  trackChild(redis.pid);
  const { stop, kill, restart } = redis;
  // A stopped server is forgotten (its pid may be reused); a restarted one is tracked anew.
  const stopping = (fn: () => Promise<void>) => async () => {
    const pid = redis.pid;
    await fn();
    untrackChild(pid);
  };
  return Object.assign(redis, {
    stop: stopping(stop),
    kill: stopping(kill),
    async restart() {
      untrackChild(redis.pid);
      await restart();
      trackChild(redis.pid);
    },
    async dispose() {
      const pid = redis.pid;
      await stop();
      untrackChild(pid);
      dir.cleanup();
    },
  });
}
