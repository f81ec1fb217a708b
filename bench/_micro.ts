import { parseNodeMessage, encodeNodeMessage, randomNodeId } from '../src/protocol/index.js';
import { scanJson } from '../src/protocol/u64.js';
import { AttackSession } from '../src/simulator/attacks.js';
import { normaliseAttackEvent, PotTypeCache } from '../src/events/normalize.js';
import { encodePublish } from '../src/hpfeeds/codec.js';
const s = new AttackSession('n1');
const id = randomNodeId();
const lines: string[] = [];
for (let i = 0; i < 1000; i++) { const a = s.next(); lines.push(encodeNodeMessage({ type: 'PotEvent', node_id: id, pot_id: 'cowrie-01', pot_type: 'cowrie', event_type: a.eventid, timestamp: a.data.timestamp as string, data: a.data })); }
console.log(lines[5], lines[5].length);
function bench(name: string, fn: (l: string) => unknown) {
  for (let k = 0; k < 20; k++) for (const l of lines) fn(l);
  const t = process.hrtime.bigint(); const N = 100;
  for (let k = 0; k < N; k++) for (const l of lines) fn(l);
  console.log(name, (Number(process.hrtime.bigint() - t) / 1e3 / (N * lines.length)).toFixed(2), 'µs');
}
bench('JSON.parse', (l) => JSON.parse(l));
bench('scanJson', (l) => scanJson(l, 3, 64));
bench('parseNodeMessage', (l) => parseNodeMessage(l));
const parsed = lines.map((l) => (parseNodeMessage(l) as any).message);
let i = 0;
const cache = new PotTypeCache(undefined);
bench('normalise', () => normaliseAttackEvent({ nodeName: 'n1', message: parsed[(i++) % 1000], receivedAt: Date.now() }, cache));
bench('stringify data', () => JSON.stringify(parsed[(i++) % 1000].data));
bench('Buffer.from line', (l) => Buffer.from(l));
bench('encodePublish', (l) => encodePublish('node-1', 'apiary.events', Buffer.from(l)));
bench('Date.toISOString', () => new Date(Date.now()).toISOString());
