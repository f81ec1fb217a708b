// Child process of bench/hpfeeds.ts: runs only the broker, so its CPU time is measured alone.
// Talks to the parent over the IPC channel: sends {type:'ready', port}, answers {type:'stats'}.
import { Registry } from 'prom-client';
import { Broker, MemoryAuthStore } from '../src/hpfeeds/index.js';

const registry = new Registry();
const broker = new Broker({
  name: 'bench',
  registry,
  authStore: new MemoryAuthStore([
    { ident: 'bench-pub', owner: 'bench', secret: 'pub-secret', pubchans: ['bench'], subchans: [] },
    { ident: 'bench-sub', owner: 'bench', secret: 'sub-secret', pubchans: [], subchans: ['bench'] },
  ]),
  // Large bound: the bench measures delivery cost, not the slow-subscriber policy.
  maxSendBufferBytes: 64 * 1024 * 1024,
  backpressureDeadlineMs: 60_000,
});

async function metricValue(name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  const data = metric ? await metric.get() : undefined;
  return data?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}

process.on('message', async (msg: { type: string }) => {
  if (msg.type === 'stats') {
    const cpu = process.cpuUsage();
    process.send!({
      type: 'stats',
      cpuMicros: cpu.user + cpu.system,
      rss: process.memoryUsage().rss,
      deliveries: await metricValue('hpfeeds_broker_deliveries_total'),
      dropped: await metricValue('hpfeeds_broker_publish_dropped_total'),
    });
  } else if (msg.type === 'stop') {
    await broker.close();
    process.exit(0);
  }
});

const { port } = await broker.listen('tcp:port=0:interface=127.0.0.1');
process.send!({ type: 'ready', port });
