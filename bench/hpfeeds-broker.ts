// Child process of bench/hpfeeds.ts: runs only the broker, so its CPU time and RSS are its own.
//   node --import tsx bench/hpfeeds-broker.ts [--lib PATH/src/hpfeeds/index.ts]
// `--lib` loads the Broker from another checkout (the previous build, for side-by-side figures);
// the broker runs with its defaults (the ones `apiary serve` uses), as a deployment would.
// Talks to the parent over IPC: sends {type:'ready', port}; answers {type:'stats'} with
// deliveries and drops (CPU and RSS are read by the parent from /proc, for any build).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';

const libArg = process.argv.indexOf('--lib');
const lib = libArg >= 0 ? pathToFileURL(resolve(process.argv[libArg + 1])).href : new URL('../src/hpfeeds/index.js', import.meta.url).href;
const { Broker, MemoryAuthStore } = (await import(lib)) as typeof import('../src/hpfeeds/index.js');

const registry = new Registry();
const broker = new Broker({
  name: 'bench',
  registry,
  authStore: new MemoryAuthStore([
    { ident: 'bench-pub', owner: 'bench', secret: 'pub-secret', pubchans: ['bench'], subchans: [] },
    { ident: 'bench-sub', owner: 'bench', secret: 'sub-secret', pubchans: [], subchans: ['bench'] },
  ]),
});

async function metricValue(name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  const data = metric ? await metric.get() : undefined;
  return data?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}

/**
 * Resident memory by kind of mapping, from /proc/self/smaps: the [heap] (glibc's main arena),
 * anonymous mappings (V8's heap pages, other malloc arenas, large malloc'd blocks) and files.
 */
function smapsByKind(): Record<string, number> {
  const out: Record<string, number> = {};
  let kind = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1];
      kind = name === '' ? 'anon' : name.startsWith('[') ? name : name.includes('.so') ? 'libs' : 'files';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] = Math.round(((out[kind] ?? 0) + Number(rss[1]) / 1024) * 10) / 10;
  }
  return out;
}

process.on('message', async (msg: { type: string }) => {
  if (msg.type === 'stats') {
    process.send!({
      type: 'stats',
      deliveries: await metricValue('hpfeeds_broker_deliveries_total'),
      dropped: await metricValue('hpfeeds_broker_publish_dropped_total'),
      disconnects: await metricValue('hpfeeds_broker_backpressure_disconnects_total'),
    });
  } else if (msg.type === 'memory') {
    const before = process.memoryUsage().rss;
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 500));
    const m = { ...process.memoryUsage(), rssBeforeGc: before, smapsMiB: smapsByKind() };
    process.send!({ type: 'memory', ...m });
  } else if (msg.type === 'stop') {
    await broker.close();
    process.exit(0);
  }
});

const { port } = await broker.listen('tcp:port=0:interface=127.0.0.1');
process.send!({ type: 'ready', port });
