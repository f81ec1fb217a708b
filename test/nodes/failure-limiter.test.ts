// The sliding-window failure limiter under the TOTP guess limits (found by mutation testing of
// src/nodes/rate-limit.ts): where the window ends, when a key is blocked, and how the number of
// tracked keys stays bounded.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailureLimiter } from '../../src/nodes/rate-limit.js';

describe('FailureLimiter', () => {
  it('blocks a key at max failures inside the window, until the oldest leaves it', () => {
    const l = new FailureLimiter(3, 1000);
    assert.equal(l.isBlocked('a', 0), false, 'unknown key');
    l.record('a', 0);
    l.record('a', 100);
    assert.equal(l.isBlocked('a', 150), false, 'two failures of three');
    l.record('a', 200);
    assert.equal(l.isBlocked('a', 200), true);
    assert.equal(l.isBlocked('a', 999), true, 'the first failure is still inside the window');
    // A failure exactly windowMs old has left the window.
    assert.equal(l.isBlocked('a', 1000), false);
    l.record('a', 1000);
    assert.equal(l.isBlocked('a', 1000), true, 'three again: 100, 200, 1000');
    assert.equal(l.isBlocked('a', 1100), false, 'the one at 100 left');
    assert.equal(l.isBlocked('b', 1100), false, 'keys are counted apart');
  });

  it('a key whose failures all left the window is forgotten', () => {
    const l = new FailureLimiter(1, 1000);
    l.record('a', 0);
    l.record('b', 500);
    assert.equal(l.size, 2);
    assert.equal(l.isBlocked('a', 999), true);
    assert.equal(l.isBlocked('a', 1000), false);
    assert.equal(l.size, 1, 'a dropped when looked at');
    l.sweep(1499);
    assert.equal(l.size, 1, 'b still inside its window');
    l.sweep(1500);
    assert.equal(l.size, 0);
    l.record('b', 1500);
    assert.equal(l.isBlocked('b', 1500), true, 'a forgotten key starts again from one failure');
  });

  it('sweep keeps the failures still inside the window of a key', () => {
    const l = new FailureLimiter(2, 1000);
    l.record('a', 0);
    l.record('a', 600);
    assert.equal(l.isBlocked('a', 900), true);
    l.sweep(1000);
    assert.equal(l.size, 1);
    assert.equal(l.isBlocked('a', 1000), false, 'only the one at 600 is left');
    l.record('a', 1000);
    assert.equal(l.isBlocked('a', 1000), true);
  });

  it('when full, expired keys are swept first, then the oldest-inserted key is forgotten', () => {
    const l = new FailureLimiter(1, 1000, 2);
    l.record('b', 600);
    l.record('a', 0);
    // Full; a's failure (inserted after b) has left the window at 1000: sweeping makes room, b,
    // the oldest inserted, stays.
    l.record('c', 1000);
    assert.equal(l.size, 2);
    assert.equal(l.isBlocked('b', 1000), true);
    assert.equal(l.isBlocked('c', 1000), true);
    // Full of live keys: the oldest inserted (b) goes, not the new one and not c.
    l.record('d', 1100);
    assert.equal(l.size, 2);
    assert.equal(l.isBlocked('b', 1100), false);
    assert.equal(l.isBlocked('c', 1100), true);
    assert.equal(l.isBlocked('d', 1100), true);
    // A known key adds to its own list without evicting anyone.
    l.record('c', 1200);
    assert.equal(l.size, 2);
    assert.equal(l.isBlocked('d', 1200), true);
  });

  it('tracks at most 100 000 keys by default', () => {
    const l = new FailureLimiter(1, 60_000);
    for (let i = 0; i <= 100_000; i++) l.record(`k${i}`, 0);
    assert.equal(l.size, 100_000);
    assert.equal(l.isBlocked('k0', 1), false, 'the first key made room');
    assert.equal(l.isBlocked('k1', 1), true);
    assert.equal(l.isBlocked('k100000', 1), true);
  });
});
