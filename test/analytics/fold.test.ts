// The fold thread of the analytics ingest (fold.ts): the counters it folds equal an in-thread fold
// of the same batches, answers come back in order, and a setting it cannot start with fails the
// hook at init with the reason (instead of a writer waiting on it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InThreadFolder, WorkerFolder } from '../../src/analytics/fold.js';
import { createAggregateContext } from '../../src/analytics/index.js';
import { randomEvents } from './helpers.js';

const ctx = createAggregateContext({});

test('the fold thread folds batches into the same counters as an in-thread fold', () => {
  const events = randomEvents(3000, Date.parse('2026-11-01T05:00:00Z'), 3 * 3_600_000, 17);
  const worker = new WorkerFolder({});
  const local = new InThreadFolder(ctx);
  for (let i = 0; i < events.length; i += 250) {
    worker.add(events.slice(i, i + 250));
    local.add(events.slice(i, i + 250));
    if (i === 1000) {
      // An answer asked for mid-way comes out of drain() too, before the rest.
      worker.request();
      local.request();
    }
  }
  const a = worker.drain();
  const b = local.drain();
  assert.equal(a.length, 2);
  assert.equal(worker.outstanding, 0);
  const summary = (aggs: typeof a) =>
    aggs.map((g) => ({
      events: g.events,
      last: g.lastEventId,
      hourly: g.hourly.map((h) => `${h.dim}|${h.hour}|${h.node}|${h.potType}|${h.key}|${h.count}`).sort(),
      attackers: [...g.attackers.values()].map((x) => ({ ...x, factIndex: [] })).sort((p, q) => (p.ip < q.ip ? -1 : 1)),
      sessions: [...g.sessions.values()],
    }));
  assert.deepEqual(summary(a), summary(b));
  assert.equal(a[0]!.events + a[1]!.events, 3000);
  assert.equal(a[1]!.lastEventId, 3000);
});

test('a fold thread that cannot start fails at construction, with its reason', () => {
  assert.throws(() => new WorkerFolder({ scannerCidrsFile: '/nonexistent/apiary-scanners.txt' }), /fold thread failed to start: .*ENOENT/);
});
