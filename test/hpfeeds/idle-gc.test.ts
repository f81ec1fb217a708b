// The broker's idle collection: one full collection when a burst is over, and a follow-up once
// V8 can see a low allocation rate (it only shrinks its young generation then).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdleGc } from '../../src/hpfeeds/idle-gc.js';

function setup() {
  const state = { routed: 0, queued: 0, now: 0, runs: 0 };
  const gc = new IdleGc(
    () => state.runs++,
    { burstBytes: 1000, quietBytes: 10, periodMs: 60_000, followUpMs: 6000 },
    () => state.routed,
    () => state.queued,
    () => state.now,
  );
  /** One check period later, with `routed` more bytes routed in it. */
  const period = (routed: number) => {
    state.routed += routed;
    state.now += 2000;
    gc.check();
  };
  return { state, gc, period };
}

describe('hpfeeds IdleGc', () => {
  it('collects once the burst is over, then once more after followUpMs of quiet', () => {
    const { state, gc, period } = setup();
    try {
      period(600);
      period(600); // a burst (1200 >= 1000), still busy
      assert.equal(state.runs, 0, 'no collection while busy');
      period(0);
      assert.equal(state.runs, 1, 'collects in the first quiet period');
      period(0);
      period(0);
      assert.equal(state.runs, 1, 'the follow-up waits followUpMs');
      period(0);
      assert.equal(state.runs, 2, 'follow-up after 6 s of quiet');
      for (let i = 0; i < 5; i++) period(5);
      assert.equal(state.runs, 2, 'nothing more until the next burst');
    } finally {
      gc.stop();
    }
  });

  it('waits while queues still hold data, and skips the follow-up while busy again', () => {
    const { state, gc, period } = setup();
    try {
      state.queued = 500;
      period(2000);
      period(0);
      assert.equal(state.runs, 0, 'queued data: not quiet yet');
      state.queued = 0;
      period(0);
      assert.equal(state.runs, 1);
      period(100);
      period(100);
      period(100);
      assert.equal(state.runs, 1, 'no follow-up while traffic goes on');
      period(0);
      assert.equal(state.runs, 2, 'follow-up in the next quiet period');
    } finally {
      gc.stop();
    }
  });

  it('does not collect for small traffic', () => {
    const { state, gc, period } = setup();
    try {
      for (let i = 0; i < 20; i++) period(i % 2 === 0 ? 40 : 0);
      assert.equal(state.runs, 0);
    } finally {
      gc.stop();
    }
  });
});
