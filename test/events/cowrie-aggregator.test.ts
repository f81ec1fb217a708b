// CowrieSessionAggregator on its own: sessions are told apart by node, pot and cowrie session id
// even when ids repeat across nodes and pots (the aggregator files those apart from the rest), and
// eviction and shutdown go by start order across all of them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CowrieSessionAggregator, type CowrieEmitReason, type CowrieSessionSummary } from '../../src/events/cowrie.js';

type Emitted = { node: string; summary: CowrieSessionSummary; reason: CowrieEmitReason };

function aggregator(maxOpenSessions = 100) {
  const emitted: Emitted[] = [];
  const agg = new CowrieSessionAggregator((node, summary, reason) => emitted.push({ node, summary, reason }), { maxOpenSessions });
  const feed = (node: string, potId: string, session: string, eventType: string, data: Record<string, unknown> = {}) =>
    agg.add({ node, potId, potType: 'cowrie', eventType, timestamp: 0, data: { session, timestamp: '2026-12-02T00:00:00.000Z', ...data } }, 0);
  const seen = () => emitted.map((e) => `${e.node}/${e.summary.session}:${e.reason}:${e.summary.commands.join(',')}`);
  return { agg, feed, emitted, seen };
}

describe('cowrie session aggregator', () => {
  it('one session id on two nodes and on two pots of a node: three sessions, each with its own events, whichever closes first', () => {
    const { agg, feed, seen } = aggregator();
    feed('n1', 'p1', 'dup', 'cowrie.session.connect', { src_ip: '192.0.2.1' });
    feed('n2', 'p1', 'dup', 'cowrie.session.connect', { src_ip: '192.0.2.2' });
    feed('n1', 'p2', 'dup', 'cowrie.session.connect', { src_ip: '192.0.2.3' });
    feed('n2', 'p1', 'dup', 'cowrie.command.input', { input: 'b1' });
    feed('n1', 'p1', 'dup', 'cowrie.command.input', { input: 'a1' });
    feed('n1', 'p2', 'dup', 'cowrie.command.input', { input: 'c1' });
    assert.equal(agg.openSessions, 3);
    // The first holder of the id closes; the other two go on, and a new session with that id starts.
    feed('n1', 'p1', 'dup', 'cowrie.session.closed');
    feed('n2', 'p1', 'dup', 'cowrie.command.input', { input: 'b2' });
    feed('n3', 'p1', 'dup', 'cowrie.command.input', { input: 'd1' });
    feed('n1', 'p2', 'dup', 'cowrie.command.input', { input: 'c2' });
    feed('n2', 'p1', 'dup', 'cowrie.session.closed');
    feed('n3', 'p1', 'dup', 'cowrie.session.closed');
    feed('n1', 'p2', 'dup', 'cowrie.session.closed');
    assert.deepEqual(seen(), ['n1/dup:closed:a1', 'n2/dup:closed:b1,b2', 'n3/dup:closed:d1', 'n1/dup:closed:c1,c2']);
    assert.equal(agg.openSessions, 0);
  });

  it('beyond the cap the oldest-started session goes first, whether its id was shared or not', () => {
    const { agg, feed, seen } = aggregator(2);
    feed('n1', 'p', 'x', 'cowrie.command.input', { input: '1' });
    feed('n2', 'p', 'x', 'cowrie.command.input', { input: '2' }); // the id was taken: filed apart
    feed('n1', 'p', 'y', 'cowrie.command.input', { input: '3' }); // evicts n1/x
    feed('n3', 'p', 'z', 'cowrie.command.input', { input: '4' }); // evicts n2/x (filed apart, older than n1/y)
    feed('n1', 'p', 'y', 'cowrie.command.input', { input: '5' });
    assert.deepEqual(seen(), ['n1/x:evicted:1', 'n2/x:evicted:2']);
    agg.flushAll();
    assert.deepEqual(seen().slice(2), ['n1/y:shutdown:3,5', 'n3/z:shutdown:4']);
  });

  it('shutdown emits every open session once, oldest-started first, across both kinds', () => {
    const { agg, feed, seen } = aggregator();
    feed('n1', 'p', 'a', 'cowrie.session.connect');
    feed('n2', 'p', 'a', 'cowrie.session.connect');
    feed('n1', 'p', 'b', 'cowrie.session.connect');
    feed('n3', 'p', 'a', 'cowrie.session.connect');
    agg.flushAll();
    assert.deepEqual(seen(), ['n1/a:shutdown:', 'n2/a:shutdown:', 'n1/b:shutdown:', 'n3/a:shutdown:']);
    assert.equal(agg.openSessions, 0);
    assert.equal(agg.expireIdle(Number.MAX_SAFE_INTEGER), 0);
  });

  it('idle sessions of both kinds expire', () => {
    const { agg, feed, seen } = aggregator();
    feed('n1', 'p', 'a', 'cowrie.session.connect');
    feed('n2', 'p', 'a', 'cowrie.session.connect');
    assert.equal(agg.expireIdle(300_000), 2);
    assert.deepEqual(seen(), ['n1/a:idle:', 'n2/a:idle:']);
    assert.equal(agg.openSessions, 0);
  });
});
