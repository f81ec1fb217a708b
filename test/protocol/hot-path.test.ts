// The hand-matched fast path for PotEvent / PotStatusUpdate / NodeStatusUpdate must agree with the
// general (zod) parser on every input: same acceptance, same message, same error when it declines.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeNodeMessage, parseNodeMessage, type NodeMessage } from '../../src/protocol/index.js';
import { parseNodeMessageGeneral } from '../../src/protocol/codec.js';
import { parseHotEnvelope } from '../../src/protocol/hot-path.js';
import { fixtureLines } from '../helpers/fixture.js';
import { seededRandom } from '../helpers/random.js';

const rng = seededRandom;

const PIECES = ['', 'a', 'cowrie', 'x'.repeat(255), 'x'.repeat(256), 'é✓😀', '<&>', 'a"b', 'a\\b', 'tab\there', 'nul\u0000', 'del\u007f', '\u2028', ' ', '0'];
const IDS = ['0', '1', '9007199254740993', '18446744073709551615', '12891250069694539331'];

function pick<T>(r: () => number, list: readonly T[]): T {
  return list[Math.floor(r() * list.length)]!;
}

function randomData(r: () => number, depth = 0): unknown {
  const k = r();
  if (depth > 3 || k < 0.3) return pick(r, [1, -2.5, 'str', '<b>&amp;', true, null, 12345678901234567890, 'x\ny']);
  if (k < 0.45) return [randomData(r, depth + 1), randomData(r, depth + 1)];
  const o: Record<string, unknown> = {};
  for (let i = 0; i < 1 + Math.floor(r() * 4); i++) o[pick(r, ['a', 'session', 'src_ip', 'é', 'node_id', 'data'])] = randomData(r, depth + 1);
  return o;
}

function randomMessage(r: () => number): NodeMessage {
  const node_id = pick(r, IDS);
  switch (Math.floor(r() * 3)) {
    case 0:
      return { type: 'NodeStatusUpdate', node_id, status: pick(r, ['Running', 'Stopped', 'Connected', 'Unknown']) } as NodeMessage;
    case 1:
      return {
        type: 'PotStatusUpdate',
        node_id,
        pot_id: pick(r, PIECES),
        pot_type: pick(r, PIECES),
        status: pick(r, ['', 'Running', 'Installing']),
        ...(r() < 0.7 ? { message: pick(r, PIECES) + pick(r, PIECES) } : {}),
      } as NodeMessage;
    default:
      return {
        type: 'PotEvent',
        node_id,
        pot_id: pick(r, PIECES),
        pot_type: pick(r, PIECES),
        event_type: pick(r, PIECES),
        timestamp: pick(r, ['2024-05-01T10:00:00.123Z', '', 'x'.repeat(65)]),
        data: randomData(r) as Record<string, unknown>,
      } as NodeMessage;
  }
}

function mutate(r: () => number, line: string): string {
  const n = Math.floor(r() * 3);
  let s = line;
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * s.length);
    const op = r();
    if (op < 0.3) s = s.slice(0, at) + s.slice(at + 1);
    else if (op < 0.6) s = s.slice(0, at) + pick(r, ['"', '\\', '{', '}', ',', ':', ' ', '0', 'null', '-1', '\u0000']) + s.slice(at);
    else if (op < 0.8) s = s.slice(0, at);
    else s = s.replace('"data":', pick(r, ['"data": ', '"Data":', '"data":null,"data":']));
  }
  return s;
}

/** Both parsers' views of a line, with the hot path's extra dataJson checked and removed. */
function compare(line: string): void {
  const fast = parseNodeMessage(line);
  const general = parseNodeMessageGeneral(line);
  if (!general.ok) {
    assert.deepEqual(fast, general, `general parser rejects, hot path must too: ${JSON.stringify(line)}`);
    return;
  }
  assert.equal(fast.ok, true, `hot path rejected what the general parser accepts: ${JSON.stringify(line)}`);
  if (!fast.ok) return;
  const m = { ...(fast.message as unknown as Record<string, unknown>) };
  if (typeof m.dataJson === 'string') {
    assert.deepEqual(JSON.parse(m.dataJson), m.data, 'dataJson is the data');
    delete m.dataJson;
  }
  assert.deepEqual(m, general.message, JSON.stringify(line));
}

describe('protocol hot path', () => {
  it('takes the hot shapes the Go node writes, and keeps data verbatim', () => {
    const line =
      '{"version":2,"message":{"PotEvent":{"node_id":18446744073709551615,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed",' +
      '"timestamp":"2024-05-01T10:00:00.123Z","data":{"n":1234567890,"cmd":"a \\u0026\\u0026 b"}}}}';
    const hot = parseHotEnvelope(line);
    assert.ok(hot && hot.type === 'PotEvent');
    assert.equal(hot.node_id, '18446744073709551615');
    assert.equal(hot.dataJson, '{"n":1234567890,"cmd":"a \\u0026\\u0026 b"}');
    assert.equal(hot.data.cmd, 'a && b');
    compare(line);
    // Numbers JSON.parse would alter go to the general parser, which keeps them as the digits sent.
    for (const n of ['12345678901234567890', '1e999', '-1e-400']) {
      const big = line.replace('1234567890', n);
      assert.equal(parseHotEnvelope(big), undefined, n);
      const general = parseNodeMessage(big);
      assert.ok(general.ok && general.message.type === 'PotEvent');
      assert.equal((general.message.data as { n: unknown }).n, n);
    }
    for (const text of fixtureLines()) {
      if (/"(PotEvent|PotStatusUpdate|NodeStatusUpdate)"/.test(text) && !text.includes('\\')) assert.ok(parseHotEnvelope(text), text);
      compare(text);
    }
  });

  it('looks for inexact numbers only where a number can start, wherever the data puts it', () => {
    const event = (data: string) =>
      `{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"cowrie","event_type":"e","timestamp":"2024-05-01T10:00:00Z","data":${data}}}}`;
    // cowrie session ids are hex: "e101" in one is text, not an exponent, after a quote or a ": "
    for (const data of [
      '{"session":"46e101c8383b"}',
      '{"message":"New connection: 203.0.113.183:44674 (10.0.0.5:2222) [session: 9e1652397d47]"}',
      '{"message":"[session: 12e345ab]"}',
      '{"hash":"1234567890123456789a"}',
      '{"n":1.5e99,"m":-2E-12}',
    ]) {
      assert.ok(parseHotEnvelope(event(data)), data);
      compare(event(data));
    }
    // a number JSON.parse would alter, in every place a value can stand: the general parser's
    for (const data of [
      '{"n":1e999}',
      '{"n": 12345678901234567890}',
      '{"a":[1,\t-1e-400]}',
      '{"a":[12345678901234567890]}',
      '{"f":0.00000000000000000001}',
      '{"f":1.2E+308,"g":1}',
      '{"f":[1e1234]}',
      '{"f":2e-3000 }',
      '{"s":"x","n":\n9007199254740993}',
    ]) {
      assert.equal(parseHotEnvelope(event(data)), undefined, data);
      compare(event(data));
    }
  });

  it('leaves other shapes, escapes, deep nesting and string node_ids to the general parser', () => {
    // 61 levels of data are the 64 of the codec's limit with the envelope's three
    const deep = '{"a":'.repeat(62) + '1' + '}'.repeat(62);
    const lines = [
      `{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e","timestamp":"t","data":${deep}}}}`,
      '{"version":2,"message":{"PotEvent":{"node_id":"1","pot_id":"p","pot_type":"t","event_type":"e","timestamp":"t","data":{}}}}',
      '{"version":2,"message":{"PotStatusUpdate":{"node_id":1,"pot_id":"p\\u0041","pot_type":"","status":"","message":"m"}}}',
      '{"version":2,"message":{"NodeStatusUpdate":{"node_id":01,"status":"Running"}}}',
      '{"version":2,"message":{"NodeStatusUpdate":{"node_id":18446744073709551616,"status":"Running"}}}',
      '{"version":2,"message":{"NodeStatusUpdate":{"status":"Running","node_id":1}}}',
    ];
    for (const line of lines) {
      assert.equal(parseHotEnvelope(line), undefined, line);
      compare(line);
    }
    assert.equal(parseNodeMessage(lines[0]!).ok, false, 'nesting limit still applies');
    const limit = '{"a":'.repeat(61) + '1' + '}'.repeat(61);
    const atLimit = `{"version":2,"message":{"PotEvent":{"node_id":1,"pot_id":"p","pot_type":"t","event_type":"e","timestamp":"t","data":${limit}}}}`;
    assert.ok(parseHotEnvelope(atLimit));
    compare(atLimit);
  });

  it('agrees with the general parser on 20 000 generated and mutated lines', () => {
    const r = rng(17);
    let hot = 0;
    for (let i = 0; i < 20_000; i++) {
      const line = encodeNodeMessage(randomMessage(r));
      const text = r() < 0.5 ? line : mutate(r, line);
      if (parseHotEnvelope(text) !== undefined) hot++;
      compare(text);
    }
    assert.ok(hot > 3000, `the hot path was exercised (${hot} lines)`);
  });
});
