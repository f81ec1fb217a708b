// A broker alone in a child process, for tests that measure its RSS (test/hpfeeds/broker-memory.test.ts).
// IPC: sends {type:'ready', port}; on {type:'stop'} closes and exits.
import { Broker, MemoryAuthStore } from '../../src/hpfeeds/index.js';

const broker = new Broker({
  name: 'memtest',
  authStore: new MemoryAuthStore([
    { ident: 'pub', owner: 'test', secret: 'pub-secret', pubchans: ['burst'], subchans: [] },
    { ident: 'sub', owner: 'test', secret: 'sub-secret', pubchans: [], subchans: ['burst'] },
  ]),
});
process.on('message', async (msg: { type: string }) => {
  if (msg.type === 'stop') {
    await broker.close();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
const { port } = await broker.listen('tcp:port=0:interface=127.0.0.1');
process.send!({ type: 'ready', port });
