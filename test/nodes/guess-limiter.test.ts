// The TOTP guess limits on their own (enrollment.test.ts drives them through registrations): which
// budget each failure spends, which budgets each attempt is refused by, the exact thresholds and
// windows, and above all that nothing sent from elsewhere can refuse the node at its trusted address.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RATE_LIMIT_DEFAULTS, TotpGuessLimiter, type GuessSource } from '../../src/nodes/guess-limiter.js';

const from = (name: string, address: string, trusted = false, addressKey = address): GuessSource => ({ name, address, addressKey, trusted });

/** Records `n` failures of `src` at `now`. */
function fail(l: TotpGuessLimiter, src: GuessSource, n: number, now = 0): void {
  for (let i = 0; i < n; i++) l.record(src, now);
}

describe('TOTP guess limiter', () => {
  it('defaults: 5 per name and address and 20 per address in a minute, 10 untrusted per name in a day', () => {
    assert.deepEqual(RATE_LIMIT_DEFAULTS, {
      windowMs: 60_000,
      maxFailuresPerName: 5,
      maxFailuresPerAddress: 20,
      maxUntrustedFailuresPerName: 10,
      untrustedWindowMs: 24 * 3600_000,
    });
  });

  it('per (name, address): blocked at the limit, not before, and free again once the window passed', () => {
    const l = new TotpGuessLimiter();
    const a = from('n1', '10.0.0.1');
    fail(l, a, 4, 1_000);
    assert.equal(l.blocked(a, 1_000), false, '4 of 5');
    l.record(a, 1_000);
    assert.equal(l.blocked(a, 1_000), true, '5 of 5');
    assert.equal(l.blocked(from('n2', '10.0.0.1'), 1_000), false, 'another name from that address');
    assert.equal(l.blocked(from('n1', '10.0.0.2'), 1_000), false, 'that name from another address');
    assert.equal(l.blocked(a, 60_999), true, 'still inside the window');
    assert.equal(l.blocked(a, 61_000), false, 'a failure exactly one window old has left it');
  });

  it('per address: 20 failures over any names block every name from it', () => {
    const l = new TotpGuessLimiter();
    for (let i = 0; i < 19; i++) l.record(from(`n${i}`, '10.0.0.1'), 0);
    assert.equal(l.blocked(from('fresh', '10.0.0.1'), 0), false, '19 of 20');
    l.record(from('n19', '10.0.0.1'), 0);
    assert.equal(l.blocked(from('fresh', '10.0.0.1'), 0), true, '20 of 20');
    assert.equal(l.blocked(from('fresh', '10.0.0.2'), 0), false, 'other addresses are not affected');
    assert.equal(l.blocked(from('fresh', '10.0.0.1'), 60_000), false);
  });

  it('the address key, not the exact address, is what untrusted failures are counted against', () => {
    const l = new TotpGuessLimiter();
    // Two addresses of one IPv6 /64 share a key: their failures add up per (name, key).
    fail(l, from('n1', '2001:db8::1', false, '2001:db8::/64'), 3);
    fail(l, from('n1', '2001:db8::2', false, '2001:db8::/64'), 2);
    assert.equal(l.blocked(from('n1', '2001:db8::3', false, '2001:db8::/64'), 0), true);
  });

  it('untrusted per name: 10 failures from anywhere in a day, then every untrusted address is refused', () => {
    const l = new TotpGuessLimiter();
    for (let i = 0; i < 9; i++) l.record(from('n1', `10.0.1.${i}`), 0);
    assert.equal(l.blocked(from('n1', '10.0.2.1'), 0), false, '9 of 10');
    l.record(from('n1', '10.0.1.9'), 0);
    assert.equal(l.blocked(from('n1', '10.0.2.1'), 0), true, '10 of 10');
    assert.equal(l.blocked(from('n2', '10.0.2.1'), 0), false, 'per name');
    assert.equal(l.blocked(from('n1', '10.0.2.1'), 24 * 3600_000 - 1), true, 'for a day');
    assert.equal(l.blocked(from('n1', '10.0.2.1'), 24 * 3600_000), false);
    // The trusted address never waits, whatever the budgets filled by others.
    assert.equal(l.blocked(from('n1', '10.9.9.9', true), 0), false);
  });

  it('the trusted address spends and is refused by its own (name, address) budget only', () => {
    const l = new TotpGuessLimiter();
    const trusted = from('n1', '10.0.0.1', true);
    // Others fill the address-wide and name-wide budgets, from the trusted address's own key too.
    for (let i = 0; i < 20; i++) l.record(from(`x${i}`, '10.0.0.1'), 0);
    for (let i = 0; i < 10; i++) l.record(from('n1', `10.0.3.${i}`), 0);
    fail(l, from('n1', '10.0.0.1'), 5);
    assert.equal(l.blocked(from('n1', '10.0.0.1'), 0), true, 'untrusted from that address');
    assert.equal(l.blocked(trusted, 0), false, 'trusted: none of that counts');

    // The node's own failures (clock drift) cool it down, but spend nothing another source needs.
    const l2 = new TotpGuessLimiter();
    fail(l2, trusted, 4);
    assert.equal(l2.blocked(trusted, 0), false);
    l2.record(trusted, 0);
    assert.equal(l2.blocked(trusted, 0), true);
    assert.equal(l2.blocked(trusted, 60_000), false);
    assert.equal(l2.blocked(from('n1', '10.0.0.1'), 0), false, 'not the untrusted pair budget of the same address');
    assert.equal(l2.blocked(from('n2', '10.0.0.1'), 0), false, 'not the address budget');
    assert.equal(l2.blocked(from('n1', '10.0.0.7'), 0), false, 'not the untrusted name budget');
    fail(l2, from('n1', '10.0.0.7'), 5);
    assert.equal(l2.blocked(from('n1', '10.0.0.8'), 0), false, '5 untrusted failures: 5 of 10, the trusted ones were not counted');
  });

  it('honours every option', () => {
    const l = new TotpGuessLimiter({ windowMs: 1_000, maxFailuresPerName: 2, maxFailuresPerAddress: 3, maxUntrustedFailuresPerName: 4, untrustedWindowMs: 5_000 });
    fail(l, from('n1', 'a'), 2);
    assert.equal(l.blocked(from('n1', 'a'), 0), true, 'pair limit 2');
    l.record(from('n2', 'a'), 0);
    assert.equal(l.blocked(from('n3', 'a'), 0), true, 'address limit 3');
    l.record(from('n1', 'b'), 0);
    assert.equal(l.blocked(from('n1', 'c'), 0), false, '3 untrusted failures of n1 (a, a, b)');
    l.record(from('n1', 'd'), 0);
    assert.equal(l.blocked(from('n1', 'c'), 0), true, 'untrusted name limit 4');
    assert.equal(l.blocked(from('n1', 'c'), 4_999), true, 'untrusted window 5 s');
    assert.equal(l.blocked(from('n3', 'a'), 999), true);
    assert.equal(l.blocked(from('n3', 'a'), 1_000), false, 'window 1 s');
    assert.equal(l.blocked(from('n1', 'c'), 5_000), false);
  });

  it('sweep() forgets the sources whose failures all left their window, and nothing else', () => {
    const l = new TotpGuessLimiter();
    const a = from('n1', '10.0.0.1');
    fail(l, a, 5, 0);
    l.record(from('n2', '10.0.0.2', true), 0);
    assert.equal(l.trackedKeys, 4, 'address, name and untrusted name of n1; the pair of n2 at its trusted address');
    l.sweep(59_999);
    assert.equal(l.trackedKeys, 4);
    assert.equal(l.blocked(a, 59_999), true);
    l.sweep(60_000);
    assert.equal(l.trackedKeys, 1, 'only the day-long untrusted budget of n1 is left');
    assert.equal(l.blocked(a, 60_000), false);
    l.sweep(24 * 3600_000);
    assert.equal(l.trackedKeys, 0);
  });

  it('trusted nodes each have their own budget', () => {
    const l = new TotpGuessLimiter();
    fail(l, from('n1', '10.0.0.1', true), 5);
    assert.equal(l.blocked(from('n1', '10.0.0.1', true), 0), true);
    assert.equal(l.blocked(from('n2', '10.0.0.2', true), 0), false, 'another node at its own address');
    assert.equal(l.blocked(from('n2', '10.0.0.1', true), 0), false, 'another node behind the same address');
  });
});
