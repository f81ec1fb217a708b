// Another core's supervised redis-server, in its own process (for the data-dir-in-use test).
import { startSupervisedRedis } from '../../src/redis/index.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const redis = await startSupervisedRedis({ dir: process.argv[2]!, logger: quiet });
process.send!({ pid: redis.pid });
process.on('message', async () => {
  await redis.stop();
  process.exit(0);
});
