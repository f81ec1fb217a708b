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

test('an answer the fold thread sent but nobody read yet still counts as outstanding (the idle flush must write it)', () => {
  const events = randomEvents(200, Date.parse('2026-11-01T05:00:00Z'), 3_600_000, 5);
  const worker = new WorkerFolder({});
  worker.add(events);
  worker.request();
  // Wait until the thread has answered (its counter, as drain() waits on it); the answer then
  // sits in the port until poll() reads it, and must still count as outstanding until then.
  const answered = (worker as unknown as { answered: Int32Array }).answered;
  assert.equal(Atomics.wait(answered, 0, 0, 10_000), 'ok');
  assert.equal(worker.outstanding, 1, 'answered but unread: still outstanding');
  const got = worker.poll();
  assert.equal(got.length, 1);
  assert.equal(got[0]!.events, 200);
  assert.equal(worker.outstanding, 0);
});
