import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateNodeSecret, isValidNodeSecret, totpCode, totpStep, verifyTotp } from '../../src/protocol/index.js';
import { base32Decode, base32Encode, hotp } from '../../src/protocol/totp.js';

// RFC 6238 Appendix B, SHA1 rows (8 digits); the seed is the ASCII string "12345678901234567890".
const RFC_SEED = Buffer.from('12345678901234567890', 'ascii');
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const RFC_VECTORS: Array<[number, string]> = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

describe('TOTP (RFC 6238, SHA1, 30 s, T0=0)', () => {
  it('the RFC seed encodes to a valid 32-char node secret', () => {
    assert.equal(base32Encode(RFC_SEED), RFC_SECRET);
    assert.deepEqual(base32Decode(RFC_SECRET), RFC_SEED);
    assert.equal(isValidNodeSecret(RFC_SECRET), true);
  });

  for (const [seconds, code8] of RFC_VECTORS) {
    it(`matches the RFC vector at T=${seconds}`, () => {
      assert.equal(hotp(RFC_SEED, Math.floor(seconds / 30), 8), code8);
      assert.equal(totpCode(RFC_SECRET, seconds * 1000), code8.slice(2));
      const check = verifyTotp(RFC_SECRET, code8.slice(2), seconds * 1000);
      assert.deepEqual(check, { valid: true, step: Math.floor(seconds / 30) });
    });
  }

  it('accepts the neighbouring steps inside the window and reports the matched step', () => {
    const now = 1_700_000_000_000;
    const step = totpStep(now);
    const prev = totpCode(RFC_SECRET, now - 30_000);
    const next = totpCode(RFC_SECRET, now + 30_000);
    assert.deepEqual(verifyTotp(RFC_SECRET, prev, now), { valid: true, step: step - 1 });
    assert.deepEqual(verifyTotp(RFC_SECRET, next, now), { valid: true, step: step + 1 });
    assert.deepEqual(verifyTotp(RFC_SECRET, prev, now, 0), { valid: false });
    const old = totpCode(RFC_SECRET, now - 60_000);
    assert.notEqual(old, totpCode(RFC_SECRET, now));
    assert.deepEqual(verifyTotp(RFC_SECRET, old, now), { valid: false });
    assert.deepEqual(verifyTotp(RFC_SECRET, old, now, 2), { valid: true, step: step - 2 });
  });

  it('malformed codes and secrets are invalid, never a throw', () => {
    const now = 1_700_000_000_000;
    const code = totpCode(RFC_SECRET, now);
    for (const bad of ['', '12345', '1234567', 'abcdef', ` ${code.slice(1)}`, '١٢٣٤٥٦']) {
      assert.deepEqual(verifyTotp(RFC_SECRET, bad, now), { valid: false }, bad);
    }
    assert.deepEqual(verifyTotp('not base32!', code, now), { valid: false });
    assert.deepEqual(verifyTotp('', code, now), { valid: false });
    assert.deepEqual(verifyTotp(RFC_SECRET, code, Number.NaN), { valid: false });
    assert.deepEqual(verifyTotp(undefined as never, code, now), { valid: false });
    assert.throws(() => totpCode('not base32!', now), /invalid base32/);
  });

  it('generateNodeSecret makes 32 upper-case base32 chars from 20 random bytes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const s = generateNodeSecret();
      assert.match(s, /^[A-Z2-7]{32}$/);
      assert.equal(isValidNodeSecret(s), true);
      assert.equal(base32Decode(s).length, 20);
      seen.add(s);
    }
    assert.equal(seen.size, 200);
  });

  it('isValidNodeSecret accepts only what a HoneyBee node keeps', () => {
    assert.equal(isValidNodeSecret('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'), true);
    for (const bad of ['jbswy3dpehpk3pxpjbswy3dpehpk3pxp', 'JBSWY3DPEHPK3PXP', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPA', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX=', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX1', '', null, 5]) {
      assert.equal(isValidNodeSecret(bad), false, String(bad));
    }
  });
});
