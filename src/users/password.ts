// Password hashing with scrypt (memory-hard: each guess costs 128·N·r bytes of RAM, 32 MiB at the
// defaults), through node:crypto's async scrypt, which runs on the libuv thread pool: a login never
// blocks the event loop that serves nodes and the broker.
// Stored form: `scrypt$<log2 N>$<r>$<p>$<salt b64url>$<hash b64url>`: the parameters travel with each
// hash, so they can be raised later and old hashes still verify (and are re-hashed at next login).
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  logN: number;
  r: number;
  p: number;
}

/** N = 2^15, r = 8, p = 1: ~32 MiB and tens of ms per hash. */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = { logN: 15, r: 8, p: 1 };
export const MIN_PASSWORD_LENGTH = 12;
/** Bounds the work a single request can ask of the KDF. */
export const MAX_PASSWORD_LENGTH = 1024;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Parameters a stored hash may carry: an edited row cannot make a login allocate gigabytes. */
const MAX_LOG_N = 20;

function derive(password: string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  const N = 2 ** params.logN;
  // Node refuses to allocate more than maxmem (default 32 MiB, exactly what N=2^15,r=8 needs plus
  // a little): room for the configured cost.
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params, KEY_BYTES);
  return ['scrypt', params.logN, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

function parse(stored: string): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [logN, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![logN, r, p].every((n) => Number.isInteger(n) && n > 0) || logN > MAX_LOG_N || r > 32 || p > 16) return undefined;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const key = Buffer.from(parts[5]!, 'base64url');
  if (salt.length < 8 || key.length < 16) return undefined;
  return { params: { logN, r, p }, salt, key };
}

/**
 * Whether `password` matches `stored` (compared in constant time), and whether the hash should be
 * replaced because its parameters are below `current`. A malformed stored hash never matches.
 */
export async function verifyPassword(password: string, stored: string, current: ScryptParams = DEFAULT_SCRYPT): Promise<{ ok: boolean; needsRehash: boolean }> {
  const parsed = parse(stored);
  if (!parsed) return { ok: false, needsRehash: false };
  const key = await derive(password, parsed.salt, parsed.params, parsed.key.length);
  const ok = timingSafeEqual(key, parsed.key);
  const p = parsed.params;
  return { ok, needsRehash: ok && (p.logN < current.logN || p.r < current.r || p.p < current.p) };
}

/** A random password for accounts created without one: 24 characters of base64url (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/** Why a new password is refused, or undefined when it is acceptable. */
export function passwordProblem(password: string): string | undefined {
  if ([...password].length < MIN_PASSWORD_LENGTH) return `a password needs at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH) return `a password may have at most ${MAX_PASSWORD_LENGTH} characters`;
  return undefined;
}
