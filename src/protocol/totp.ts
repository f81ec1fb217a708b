// HoneyBee node TOTP: RFC 6238 with HMAC-SHA1, 6 digits, 30 s steps, T0 = 0.
// Written on node:crypto rather than otplib: it is synchronous (the gateway verifies inside a
// socket handler and must not interleave with a second registration of the same node), returns
// the matched time step (needed for one-time use) and costs one HMAC per checked step.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOTP_STEP_SECONDS = 30;
export const TOTP_DIGITS = 6;

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const NODE_SECRET = /^[A-Z2-7]{32}$/;
const SIX_DIGITS = /^[0-9]{6}$/;

/** RFC 4648 base32, upper case, no padding. */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/** RFC 4648 base32 (case-insensitive, padding optional). Throws on other characters. */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/=+$/, '').toUpperCase();
  const out = Buffer.alloc(Math.floor((clean.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < clean.length; i++) {
    const value = BASE32_ALPHABET.indexOf(clean[i]!);
    if (value < 0) throw new RangeError(`invalid base32 character at position ${i}`);
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[o++] = (buffer >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/** A fresh node secret: 20 random bytes as 32 upper-case base32 characters, the only form nodes keep. */
export function generateNodeSecret(): string {
  return base32Encode(randomBytes(20));
}

/** Exactly what a HoneyBee node accepts in `.honeybee_totp_secret`; anything else it regenerates. */
export function isValidNodeSecret(secret: unknown): secret is string {
  return typeof secret === 'string' && NODE_SECRET.test(secret);
}

export function totpStep(atMs: number): number {
  return Math.floor(atMs / 1000 / TOTP_STEP_SECONDS);
}

/** RFC 4226 HOTP over a raw key. */
export function hotp(key: Uint8Array, counter: number, digits = TOTP_DIGITS): string {
  const message = Buffer.alloc(8);
  message.writeUInt32BE(Math.floor(counter / 0x100000000), 0);
  message.writeUInt32BE(counter >>> 0, 4);
  const mac = createHmac('sha1', key).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return binary.toString().padStart(digits, '0');
}

/** The 6-digit code for `secret` (base32) at `atMs`. Throws on a secret that is not base32. */
export function totpCode(secret: string, atMs: number): string {
  return hotp(base32Decode(secret), totpStep(atMs));
}

export interface TotpCheck {
  valid: boolean;
  /** The time step the code matched; reject a second login with the same step (one-time use). */
  step?: number;
}

/**
 * Checks `code` against the steps `window` either side of `atMs`. Never throws: a malformed
 * secret or code is simply not valid. Comparison is constant-time per step.
 */
export function verifyTotp(secret: string, code: string, atMs: number, window = 1): TotpCheck {
  if (typeof code !== 'string' || !SIX_DIGITS.test(code) || typeof secret !== 'string' || !Number.isFinite(atMs)) {
    return { valid: false };
  }
  let key: Buffer;
  try {
    key = base32Decode(secret);
  } catch {
    return { valid: false };
  }
  if (key.length === 0) return { valid: false };
  const given = Buffer.from(code);
  const current = totpStep(atMs);
  // Capped: a wide window is a brute-force aid, and each step costs an HMAC.
  const span = Math.min(10, Math.max(0, Math.floor(window)));
  let matched: number | undefined;
  // Current step first, so the common case reports the step the node actually used.
  for (const delta of stepOrder(span)) {
    const step = current + delta;
    if (step < 0) continue;
    if (timingSafeEqual(Buffer.from(hotp(key, step)), given) && matched === undefined) matched = step;
  }
  return matched === undefined ? { valid: false } : { valid: true, step: matched };
}

function stepOrder(span: number): number[] {
  const order = [0];
  for (let d = 1; d <= span; d++) order.push(-d, d);
  return order;
}
