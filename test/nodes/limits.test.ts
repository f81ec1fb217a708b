// The helpers per-peer limits rely on: which addresses count as one, and cutting stored text.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { addressKey, truncateUtf8 } from '../../src/nodes/limits.js';

describe('addressKey', () => {
  it('keeps IPv4 addresses and folds IPv6 addresses to their /64', () => {
    assert.equal(addressKey('203.0.113.7'), '203.0.113.7');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('2001:DB8:0:0:ffff::2'), '2001:db8:0:0::/64');
    assert.equal(addressKey('2001:0db8:0001:0002:0003:0004:0005:0006'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8:1:2::'), '2001:db8:1:2::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('unknown'), 'unknown');
  });
});

describe('truncateUtf8', () => {
  it('never exceeds the cap, never splits a character, keeps a prefix and says so (fuzzed)', () => {
    const alphabet = ['a', 'é', '€', '😀', '\u0000', 'z'];
    for (let i = 0; i < 2000; i++) {
      let text = '';
      const n = randomInt(0, 200);
      for (let k = 0; k < n; k++) text += alphabet[randomInt(0, alphabet.length)];
      const max = randomInt(64, 300);
      const { text: out, truncated } = truncateUtf8(text, max);
      if (Buffer.byteLength(text) <= max) {
        assert.equal(out, text);
        assert.equal(truncated, false);
        continue;
      }
      assert.equal(truncated, true);
      assert.ok(Buffer.byteLength(out) <= max, `${Buffer.byteLength(out)} > ${max}`);
      assert.equal(out.includes('\uFFFD'), false);
      const marker = out.indexOf('…[truncated]');
      assert.ok(marker >= 0);
      assert.ok(text.startsWith(out.slice(0, marker)));
      assert.ok(out.endsWith(`(${Buffer.byteLength(text)} bytes)`));
    }
  });
});
