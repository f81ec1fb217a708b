// The republished event JSON, written as bytes into one reused buffer, must be exactly the JSON the
// event describes, whatever the sizes and scripts (an event bigger than the buffer gets its own).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventPayloadWriter } from '../../src/events/event-payload.js';
import type { StoredRow } from '../../src/events/store.js';

function expected(e: StoredRow): string {
  return (
    `{"id":${e.id},"node":${JSON.stringify(e.node)},"pot_id":${JSON.stringify(e.potId)},"pot_type":${JSON.stringify(e.potType)},` +
    `"event_type":${JSON.stringify(e.eventType)},"timestamp":"${new Date(e.timestamp).toISOString()}","data":${e.dataJson},` +
    `"received_at":"${new Date(e.receivedAt).toISOString()}"}`
  );
}

function pick<T>(list: readonly T[], r: () => number): T {
  return list[Math.floor(r() * list.length)]!;
}

/** A small seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('EventPayloadWriter', () => {
  it('writes the same JSON as the event describes, for mixed nodes, pots, types, sizes and scripts', () => {
    const r = rng(17);
    const w = new EventPayloadWriter();
    const nodes = ['node-a', 'node-b', 'nœud "c"', 'узел-d'];
    const pots = ['cowrie-01', 'dionaea', 'pot\\x', ''];
    const types = ['cowrie.login.failed', 'cowrie.session.connect', 'type/ü', 'x"y'];
    const texts = ['ascii only', 'ünïcödé', '漢字 and emoji 🐝', 'quote " backslash \\ newline \n', '\u2028sep'];
    for (let i = 0; i < 5000; i++) {
      const big = r() < 0.01;
      const text = big ? pick(texts, r).repeat(2000 + Math.floor(r() * 3000)) : pick(texts, r);
      const data = JSON.stringify({ message: text, n: i, src_ip: `192.0.2.${i % 255}` });
      const ts = 1_764_000_000_000 + Math.floor(i / 7) * 13;
      const e: StoredRow = {
        id: i % 97 === 0 ? Number.MAX_SAFE_INTEGER - i : i + 1,
        node: pick(nodes, r),
        potId: pick(pots, r),
        potType: pick(pots, r),
        eventType: pick(types, r),
        timestamp: ts,
        receivedAt: ts + Math.floor(r() * 3),
        dataJson: data,
        fromStatus: false,
      };
      const view = w.write(e);
      const want = expected(e);
      assert.equal(view.toString('utf8'), want, `event ${i}`);
      JSON.parse(view.toString('utf8'));
    }
  });

  it('writes every time as toISOString does: second and day boundaries, 1970, before it, year 9999 and after', () => {
    const w = new EventPayloadWriter();
    const times = [
      ...[0, 1, 999, 1000, 59_999, 60_000, 86_399_999, 86_400_000],
      951_782_400_000, // 2000-02-29
      ...[1_764_000_000_123, 1_764_000_000_999, 1_764_000_001_000],
      ...[-1, -86_400_001], // before 1970
      ...[253_402_300_799_999, 253_402_300_800_000, 8.64e15], // the last ms of 9999, then six-digit years
      1_764_000_000_000.5,
    ];
    for (const [i, timestamp] of times.entries()) {
      // Each time as an event's own, and as the receipt time of the event before.
      const receivedAt = times[(i + 1) % times.length]!;
      const e: StoredRow = { id: i + 1, node: 'n', potId: 'p', potType: 't', eventType: 'e', timestamp, receivedAt, dataJson: '{}', fromStatus: false };
      assert.equal(w.write(e).toString('utf8'), expected(e), `timestamp ${timestamp}`);
    }
  });
});
