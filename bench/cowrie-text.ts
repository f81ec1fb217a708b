// Normalisation cost of one attack line: cowrie's text as the real node forwards it (parse, session
// attribution, cowrie-shaped data, JSON) next to the same attack as a cowrie JSON PotEvent. This is
// the per-line work the ingest path adds before the batch commit; bench/events.ts measures the
// whole pipeline (--form text|json).
//
//   node --import tsx bench/cowrie-text.ts [--lines 300000] [--rounds 3]
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createCowrieTextContext, normaliseAttackEvent, PotTypeCache } from '../src/events/normalize.js';
import type { AttackEvent } from '../src/events/index.js';
import { AttackSession } from '../src/simulator/attacks.js';

const { values: args } = parseArgs({ options: { lines: { type: 'string', default: '300000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(args.lines);
const potTypes = new PotTypeCache(undefined);
const cowrie = createCowrieTextContext(() => 'cowrie-01');
const attacks = new AttackSession('vm');
const text: AttackEvent[] = [];
const json: AttackEvent[] = [];
const t0 = Date.now();
for (let i = 0; i < N; i++) {
  const a = attacks.next(t0 + i);
  text.push({ nodeName: 'node-1', receivedAt: t0 + i, message: { type: 'PotStatusUpdate', pot_id: 'vm', pot_type: '', status: '', message: a.text } });
  json.push({
    nodeName: 'node-1',
    receivedAt: t0 + i,
    message: { type: 'PotEvent', pot_id: 'cowrie-01', pot_type: 'cowrie', event_type: a.eventid, timestamp: a.data.timestamp as string, data: a.data },
  });
}

console.log(`${N} lines per round, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (let r = 0; r < Number(args.rounds); r++) {
  for (const [form, lines] of [['json', json], ['text', text]] as const) {
    const heap0 = process.memoryUsage().heapUsed;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < lines.length; i++) normaliseAttackEvent(lines[i]!, potTypes, cowrie);
    const ms = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `round ${r} ${form.padEnd(4)} ${Math.round((N / ms) * 1000)} lines/s, ${((cpu.user + cpu.system) / N).toFixed(2)} CPU µs/line, ` +
        `heap +${Math.round((process.memoryUsage().heapUsed - heap0) / 1048576)} MiB, open text sessions ${cowrie.sessions.openSessions}`,
    );
  }
}
