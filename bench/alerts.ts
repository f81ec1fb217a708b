// Main-thread cost the alert rules add to every committed event while an event-reading rule is
// enabled: normalising the event (analytics record) and matching login, download and attacker
// rules, in the events service's onCommitted listener. Alerts that fire go to a local receiver.
//
//   node --import tsx bench/alerts.ts [--events 200000] [--rounds 3]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Registry } from 'prom-client';
import { AlertService, SqliteAlertStore } from '../src/alerts/index.js';
import { attackFact } from '../src/app/attack-fact.js';
import { openDatabase } from '../src/db/index.js';
import { AttackSession } from '../src/simulator/attacks.js';

const { values: args } = parseArgs({ options: { events: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(args.events);
const dir = mkdtempSync(join(tmpdir(), 'apiary-bench-alerts-'));
let received = 0;
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received++;
    res.end('ok');
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const db = openDatabase(join(dir, 'a.sqlite'));
const alerts = new AlertService({ store: new SqliteAlertStore(db), logger: pino({ level: 'silent' }) as never, registry: new Registry() });
await alerts.load();
const ch = await alerts.createChannel({ name: 'hook', type: 'webhook', config: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` }, secrets: { hmacSecret: 'bench-secret-0123456789' } });
await alerts.createRule({ name: 'login', kind: 'login_success', channels: [ch.id] });
await alerts.createRule({ name: 'download', kind: 'file_download', channels: [ch.id] });
await alerts.createRule({ name: 'attacker', kind: 'attacker_events', params: { events: 50, minutes: 10 }, channels: [ch.id] });

// Many attackers (sessions rotate their source address), cowrie JSON data as stored.
const t0 = Date.now();
const events = [];
let session = new AttackSession('bench');
for (let i = 0; i < N; i++) {
  if (i % 20 === 0) session = new AttackSession(`bench-${i}`);
  const a = session.next(t0 + i);
  events.push({ id: i + 1, node: 'node-1', potId: 'cowrie-01', potType: 'cowrie', eventType: a.eventid, timestamp: t0 + i, receivedAt: t0 + i, data: a.data });
}

console.log(`alerts bench: ${N} cowrie events, rules login_success + file_download + attacker_events(50/10 min); load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (let round = 1; round <= Number(args.rounds); round++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i += 500) alerts.eventsCommitted(events.slice(i, i + 500).map((e) => attackFact(e)));
  const ns = Number(process.hrtime.bigint() - start);
  console.log(`round ${round}: ${(ns / 1000 / N).toFixed(2)} µs per event on the main thread (normalise + match), ${Math.round(N / (ns / 1e9))} events/s`);
}
await new Promise((r) => setTimeout(r, 1000));
console.log(`alerts delivered to the local receiver so far: ${received}; rss ${Math.round(process.memoryUsage().rss / 1048576)} MiB`);
alerts.close();
server.close();
db.close();
rmSync(dir, { recursive: true, force: true });
