// Seeded mutation fuzzing: whatever bytes arrive, the parsers answer ok or a precise error and
// never throw; whatever parses re-encodes to a line that parses to the same message.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureLines as readFixture } from '../helpers/fixture.js';
import { decodeCoreMessage, encodeCoreMessage, encodeNodeMessage, isNodeId, isValidNodeSecret, parseNodeMessage } from '../../src/protocol/index.js';
import { seededRandom } from '../helpers/random.js';

const fixtureLines = readFixture();

const prng = seededRandom;

const ALPHABET = '{}[]":,0123456789-+.eE \\nulltruefalseNodeDropnode_id\u0000\u00ff\u2028\ud800😀';
const REASONS = new Set(['json', 'envelope', 'version', 'schema']);

function mutate(line: string, rnd: () => number): string {
  const pick = (n: number) => Math.floor(rnd() * n);
  const ops = 1 + pick(4);
  let s = line;
  for (let k = 0; k < ops; k++) {
    const at = pick(s.length + 1);
    switch (pick(8)) {
      case 0: s = s.slice(0, at); break; // truncation
      case 1: s = s.slice(0, at) + s.slice(at + 1 + pick(8)); break; // deletion
      case 2: s = s.slice(0, at) + ALPHABET[pick(ALPHABET.length)] + s.slice(at); break; // insertion
      case 3: s = s.slice(0, at) + ALPHABET[pick(ALPHABET.length)] + s.slice(at + 1); break; // replacement
      case 4: { const from = pick(s.length); s = s.slice(0, at) + s.slice(from, from + pick(20)) + s.slice(at); break; } // duplication
      case 5: s = s.replace(/"node_id":\d+/, `"node_id":${['-0', '1.0', '1e5', '18446744073709551616', '"7"', '00', String(pick(1e9)), '18446744073709551615'][pick(8)]}`); break;
      case 6: s = s.replace(/\d/g, (d) => (rnd() < 0.2 ? String(pick(10)) : d)); break;
      default: s = s.replace(/"[A-Za-z_]+"/, ['"type"', '"status"', '"NodeDrop"', '"message"', '"version"', '"node_id"'][pick(6)]!); break;
    }
  }
  return s;
}

function randomText(rnd: () => number): string {
  const n = Math.floor(rnd() * 80);
  let s = '';
  for (let i = 0; i < n; i++) s += rnd() < 0.7 ? ALPHABET[Math.floor(rnd() * ALPHABET.length)] : String.fromCharCode(Math.floor(rnd() * 0x10000));
  return s;
}

function check(text: string): void {
  let nodeResult, coreResult;
  try {
    nodeResult = parseNodeMessage(text);
    coreResult = decodeCoreMessage(text);
  } catch (err) {
    assert.fail(`parser threw on ${JSON.stringify(text)}: ${String(err)}`);
  }
  for (const r of [nodeResult, coreResult]) {
    if (!r.ok) {
      assert.ok(REASONS.has(r.reason), `bad reason ${r.reason}`);
      assert.ok(typeof r.error === 'string' && r.error.length > 0 && r.error.length < 1200, `bad error for ${JSON.stringify(text)}: ${r.error}`);
    }
  }
  if (nodeResult.ok) {
    const m = nodeResult.message;
    if ('node_id' in m) assert.ok(isNodeId(m.node_id), `non-canonical node_id ${m.node_id}`);
    const again = parseNodeMessage(encodeNodeMessage(m));
    assert.ok(again.ok, `re-encoded message does not parse: ${JSON.stringify(m)}`);
    assert.deepEqual(again.message, m);
  }
  if (coreResult.ok) {
    const m = coreResult.message;
    // A node reads any totp_key (and then throws it away); the core never writes a malformed one.
    if (m.type === 'RegistrationAck' && m.totp_key !== undefined && !isValidNodeSecret(m.totp_key)) {
      assert.throws(() => encodeCoreMessage(m), /totp_key/);
      return;
    }
    const again = decodeCoreMessage(encodeCoreMessage(m));
    assert.ok(again.ok);
    assert.equal(again.message.node_id, coreResult.message.node_id);
  }
}

describe('fuzz', () => {
  it('12k mutated fixture lines: never throws, ok or precise error, stable round trip', () => {
    const rnd = prng(0xa11a5);
    let ok = 0;
    for (let i = 0; i < 12000; i++) {
      const text = mutate(fixtureLines[i % fixtureLines.length]!, rnd);
      check(text);
      if (parseNodeMessage(text).ok) ok++;
    }
    // the mutations must leave a fair share parseable, or the round-trip oracle tests nothing
    assert.ok(ok > 500, `only ${ok} mutated lines parsed`);
  });

  it('4k random texts: never throws', () => {
    const rnd = prng(42);
    for (let i = 0; i < 4000; i++) check(randomText(rnd));
  });

  it('random u64 node_ids survive parse exactly', () => {
    const rnd = prng(7);
    for (let i = 0; i < 2000; i++) {
      const hi = BigInt(Math.floor(rnd() * 2 ** 32));
      const lo = BigInt(Math.floor(rnd() * 2 ** 32));
      const id = ((hi << 32n) | lo).toString();
      const r = parseNodeMessage(`{"version":2,"message":{"NodeStatusUpdate":{"node_id":${id},"status":"Running"}}}`);
      assert.ok(r.ok && r.message.type === 'NodeStatusUpdate' && r.message.node_id === id, id);
    }
  });
});
