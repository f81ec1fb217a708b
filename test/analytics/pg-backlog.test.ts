// The analytics backlog on PostgreSQL: every committed event batch is noted in analytics_backlog in
// its own INSERT statement and claimed by the write that puts it into the rollups, so batches a
// killed core folded but never wrote are folded again by the leader's sweep, and no batch is
// counted twice, even when a live core and the sweep fold the same batch.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ANALYTICS_BACKLOG, BatchClaimLost, createAggregateContext, DIMENSIONS, PgAnalyticsIngest, PgAttackStore, type StoredEvent } from '../../src/analytics/index.js';
import { PgEventStore, type BatchNotes } from '../../src/events/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';
import { bruteTop, randomEvents } from './helpers.js';

const D = 86_400_000;
const START = Date.parse('2026-10-01T00:00:00Z');
const ctx = createAggregateContext({});
const pg = (await databaseBackends()).find((b) => b.name === 'PostgreSQL')!;

describe('analytics backlog (PostgreSQL)', { skip: pg.skip }, () => {
  let opened: Extract<OpenedBackend, { kind: 'pg' }>;
  let events: PgEventStore;
  let backlog: BatchNotes;
  before(async () => {
    opened = (await pg.open()) as Extract<OpenedBackend, { kind: 'pg' }>;
    events = new PgEventStore(opened.database, { partitions: { aheadDays: 0 } });
    backlog = events.noteBatches(ANALYTICS_BACKLOG, 'a');
  });
  after(async () => {
    await events?.close();
    await opened?.close();
  });

  /** Commits `data` as one batch; resolves with the stored events as the ingest is fed them. */
  async function commit(data: readonly StoredEvent[]): Promise<StoredEvent[]> {
    const receivedAt = Date.now();
    const ids = await events.append(data.map((e) => ({ node: e.node, potId: e.potId, potType: e.potType, eventType: e.eventType, timestamp: e.timestamp, receivedAt, dataJson: JSON.stringify(e.data), fromStatus: false })));
    return data.map((e, i) => ({ ...e, id: ids[i]! }));
  }
  const noted = async () => (await opened.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ANALYTICS_BACKLOG}`)).rows[0]!.n;
  async function assertCounts(all: readonly StoredEvent[], since: number): Promise<void> {
    const store = new PgAttackStore(opened.database);
    for (const by of DIMENSIONS) {
      const got = await store.top({ by, since, until: since + D, limit: 8 });
      assert.deepEqual(got.items.map((i) => ({ key: i.key, count: i.count })), bruteTop(ctx, all, by, since, since + D).slice(0, 8), by);
    }
  }

  it('a batch a killed core folded but never wrote is folded again by the sweep; notes go with the writes', async () => {
    const data = randomEvents(900, START, 6 * 3_600_000, 7);
    const a = new PgAnalyticsIngest(new PgAttackStore(opened.database, { watermarkName: 'a' }), { flushMs: 3_600_000 }, { ctx, backlog });
    const batches = [await commit(data.slice(0, 300)), await commit(data.slice(300, 600)), await commit(data.slice(600))];
    assert.equal(await noted(), 3, 'each committed batch noted');
    a.onCommitted(batches[0]!);
    a.onCommitted(batches[1]!);
    await a.flush();
    assert.equal(await noted(), 1, 'the written batches claimed');
    // a folds the third batch and dies before writing it (never flushed, never closed).
    a.onCommitted(batches[2]!);
    const b = new PgAnalyticsIngest(new PgAttackStore(opened.database, { watermarkName: 'b' }), { flushMs: 3_600_000 }, { ctx, backlog });
    assert.deepEqual(await b.sweepBacklog(Date.now() - 60_000), { batches: 0, events: 0 }, 'not stale yet: its core may still write it');
    assert.deepEqual(await b.sweepBacklog(Date.now() + 1), { batches: 1, events: 300 });
    assert.deepEqual(await b.sweepBacklog(Date.now() + 1), { batches: 0, events: 0 }, 'not folded twice while its write is due');
    await b.close();
    assert.equal(await noted(), 0);
    await assertCounts(data, START);
  });

  it('a live core and the sweep folding the same batch: one write counts it, the other writes nothing and says so', async () => {
    const data = randomEvents(600, START + 5 * D, 6 * 3_600_000, 8);
    const errors: unknown[] = [];
    const slow = new PgAnalyticsIngest(new PgAttackStore(opened.database, { watermarkName: 'slow' }), { flushMs: 3_600_000 }, { ctx, backlog, onError: (err) => errors.push(err) });
    const [first, second] = [await commit(data.slice(0, 200)), await commit(data.slice(200))];
    // The slow core folds both (its writes failing, say) while the leader's sweep takes the second.
    slow.onCommitted(first);
    slow.onCommitted(second);
    const leader = new PgAnalyticsIngest(new PgAttackStore(opened.database, { watermarkName: 'leader' }), { flushMs: 3_600_000 }, { ctx, backlog });
    const swept = await leader.sweepBacklog(Date.now() + 1);
    assert.deepEqual(swept, { batches: 2, events: 600 });
    await leader.flush();
    await slow.flush();
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof BatchClaimLost, String(errors[0]));
    assert.equal(slow.pendingEvents, 0, 'the lost aggregate is dropped, not retried');
    assert.equal(await noted(), 0);
    await assertCounts(data, START + 5 * D);
    await slow.close();
    await leader.close();
  });

  it('a write the sweep lost in part rolls back whole: the batches it had claimed are noted again and folded once later', async () => {
    const data = randomEvents(600, START + 10 * D, 6 * 3_600_000, 9);
    const errors: unknown[] = [];
    const live = new PgAnalyticsIngest(new PgAttackStore(opened.database, { watermarkName: 'live' }), { flushMs: 3_600_000 }, { ctx, backlog, onError: (err) => errors.push(err) });
    const old = await commit(data.slice(0, 300));
    const leader = new PgAnalyticsIngest(new PgAttackStore(opened.database, { watermarkName: 'leader2' }), { flushMs: 3_600_000 }, { ctx, backlog });
    await leader.sweepBacklog(Date.now() + 1); // takes `old`
    await leader.flush();
    const fresh = await commit(data.slice(300));
    live.onCommitted(old); // the live core had `old` too, and now `fresh`
    live.onCommitted(fresh);
    await live.flush();
    assert.ok(errors[0] instanceof BatchClaimLost);
    assert.equal(await noted(), 1, "fresh's note is back with the rollback");
    await leader.sweepBacklog(Date.now() + 1);
    await leader.close();
    await live.close();
    assert.equal(await noted(), 0);
    await assertCounts(data, START + 10 * D);
  });
});
