// Abuse run for the node gateway (issue 10, row 2): peers that connect and send a large line
// without ever registering, while honest nodes register. Prints the core's RSS before, at peak
// and after, the refused/closed counts, and the registration round trip (p50/p99) of honest
// nodes during the attack. The attacker runs in a child process so the core is measured alone.
//
//   node --import tsx bench/node-abuse.ts [--attackers 1000] [--bytes 1048576] [--honest 200]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { openDatabase } from '../src/db/index.js';
import { createNodeGateway } from '../src/nodes/index.js';
import { tempDir } from '../test/helpers/tmp.js';

const { values: args } = parseArgs({
  options: {
    attackers: { type: 'string', default: '1000' },
    bytes: { type: 'string', default: String(1024 * 1024) },
    honest: { type: 'string', default: '200' },
    child: { type: 'boolean', default: false },
    port: { type: 'string' },
  },
});
const MiB = 1024 * 1024;
const rssMiB = () => (process.memoryUsage().rss / MiB).toFixed(1);

if (args.child) {
  // Attacker: connections spread over loopback addresses, each writing `bytes` with no newline.
  const port = Number(args.port);
  const n = Number(args.attackers);
  const chunk = Buffer.alloc(64 * 1024, 0x7b);
  let done = 0;
  const finished = () => {
    if (++done === n) process.send?.('done');
  };
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.1.${(i % 200) + 1}` });
    s.on('error', () => {});
    s.once('close', finished);
    s.once('connect', async () => {
      for (let sent = 0; sent < Number(args.bytes) && !s.destroyed; sent += chunk.length) {
        if (!s.write(chunk)) {
          await new Promise<void>((resolve) => {
            s.once('drain', resolve);
            s.once('close', resolve);
          });
        }
      }
    });
  }
} else {
  const dir = tempDir('apiary-bench-abuse-');
  const db = openDatabase(`${dir.path}/core.db`);
  const registry = new Registry();
  const gateway = await createNodeGateway({ db, logger: pino({ level: 'silent' }), registry, enrollment: 'open', authTimeoutMs: 60_000 });
  const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });
  const before = rssMiB();
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);

  const child = fork(fileURLToPath(import.meta.url), ['--child', '--port', String(tcp.port), '--attackers', args.attackers!, '--bytes', args.bytes!], {
    execArgv: ['--import', 'tsx'],
  });
  const attackDone = new Promise<void>((resolve) => child.on('message', () => resolve()));

  // Honest nodes register one after another while the attack runs.
  const rtts: number[] = [];
  for (let i = 0; i < Number(args.honest); i++) {
    const t0 = process.hrtime.bigint();
    const s = net.connect({ host: '127.0.0.1', port: tcp.port });
    s.setEncoding('utf8');
    await once(s, 'connect');
    s.write(`{"version":2,"message":{"NodeRegistration":{"node_id":${1000 + i},"node_name":"honest-${i}","address":"10.0.0.1","port":1,"node_type":"Full"}}}\n`);
    await once(s, 'data');
    rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    s.destroy();
  }
  await Promise.race([attackDone, new Promise((r) => setTimeout(r, 60_000))]);
  clearInterval(sampler);
  child.kill();
  rtts.sort((a, b) => a - b);
  const pct = (p: number) => rtts[Math.min(rtts.length - 1, Math.floor((p / 100) * rtts.length))]!.toFixed(2);
  const metric = async (name: string) => {
    const m = registry.getSingleMetric(name);
    return m ? (await m.get()).values.reduce((a, v) => a + v.value, 0) : 'n/a';
  };
  console.log(`attack: ${args.attackers} connections x ${(Number(args.bytes) / MiB).toFixed(2)} MiB without newline, from 200 loopback addresses`);
  console.log(`core RSS MiB: before ${before}, peak ${(peak / MiB).toFixed(1)}, after ${rssMiB()}`);
  console.log(`closed before registration: ${await metric('apiary_node_preauth_closed_total')}, refused at accept: ${await metric('apiary_node_connections_refused_total')}`);
  console.log(`honest registrations during the attack: ${rtts.length}, round trip p50 ${pct(50)} ms, p99 ${pct(99)} ms`);
  console.log(`load average: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  await gateway.close();
  db.close();
  dir.cleanup();
}
