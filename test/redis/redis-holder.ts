// Child process for children.test.ts: starts a test redis-server, reports its pid, and waits to be
// killed. Its redis-server must not outlive it, however it dies.
import { startTestRedis } from '../helpers/redis.js';

const redis = await startTestRedis({ appendOnly: false });
process.send!({ pid: redis.pid });
setInterval(() => {}, 60_000);
