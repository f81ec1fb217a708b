// Password hashing and the login limiter on their own: the stored form carries its parameters, a
// raised cost asks for a re-hash, malformed or hostile stored hashes never match (nor allocate
// what they ask for), and the limiter's windows, reset and memory bound.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KdfBusyError, KdfGate } from '../../src/users/kdf-gate.js';
import { LoginLimiter } from '../../src/users/login-limiter.js';
import { DEFAULT_SCRYPT, generatePassword, hashPassword, passwordProblem, verifyPassword } from '../../src/users/password.js';

describe('password hashing', () => {
  it('stores scrypt$logN$r$p$salt$hash with a fresh salt per hash, N >= 2^15, and verifies only the right password', async () => {
    const a = await hashPassword('the same password');
    const b = await hashPassword('the same password');
    assert.match(a, /^scrypt\$15\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.split('$')[4], b.split('$')[4], 'salts differ');
    assert.notEqual(a, b);
    assert.ok(DEFAULT_SCRYPT.logN >= 15 && DEFAULT_SCRYPT.r === 8 && DEFAULT_SCRYPT.p === 1);
    assert.deepEqual(await verifyPassword('the same password', a), { ok: true, needsRehash: false });
    assert.deepEqual(await verifyPassword('the same passworD', a), { ok: false, needsRehash: false });
    // Unicode is normalised: the composed and decomposed é are one password.
    const u = await hashPassword('caf\u00e9 au lait please');
    assert.equal((await verifyPassword('cafe\u0301 au lait please', u)).ok, true);
  });

  it('old, cheaper parameters still verify and ask for a re-hash; hostile or malformed hashes never match', async () => {
    const cheap = await hashPassword('an older password', { logN: 10, r: 8, p: 1 });
    assert.match(cheap, /^scrypt\$10\$/);
    assert.deepEqual(await verifyPassword('an older password', cheap), { ok: true, needsRehash: true });
    assert.deepEqual(await verifyPassword('wrong password!!', cheap), { ok: false, needsRehash: false });
    const [, , r, p, salt, key] = cheap.split('$');
    for (const bad of ['', 'plain text', `bcrypt$10$${r}$${p}$${salt}$${key}`, `scrypt$30$${r}$${p}$${salt}$${key}`, `scrypt$10$${r}$${p}$$${key}`, `scrypt$10$x$${p}$${salt}$${key}`]) {
      assert.deepEqual(await verifyPassword('an older password', bad), { ok: false, needsRehash: false }, bad);
    }
  });

  it('verifying does not block the event loop', async () => {
    const stored = await hashPassword('a password to check');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await Promise.all([verifyPassword('a password to check', stored), verifyPassword('another guess here', stored)]);
    clearInterval(timer);
    assert.ok(ticks >= 3, `the loop turned ${ticks} times during two KDF runs`);
  });

  it('policy: at least 12 characters (code points), at most 1024; generated passwords are 24 base64url characters', () => {
    assert.match(passwordProblem('elevenchars')!, /at least 12/);
    assert.equal(passwordProblem('twelve chars'), undefined);
    assert.match(passwordProblem('🐝'.repeat(11))!, /at least 12/, 'counted in characters, not UTF-16 units');
    assert.match(passwordProblem('x'.repeat(1025))!, /at most 1024/);
    const g = generatePassword();
    assert.match(g, /^[A-Za-z0-9_-]{24}$/);
    assert.notEqual(g, generatePassword());
  });
});

describe('login limiter', () => {
  it('per address and per username (case-insensitive): the limit-th failure blocks, Retry-After counts down to the oldest failure leaving the window', () => {
    let now = 1_000_000;
    const l = new LoginLimiter({ maxFailures: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 3; i++) {
      assert.equal(l.check('10.0.0.1', 'Ann').retryAfterSeconds, 0);
      l.failed('10.0.0.1', i % 2 ? 'ANN' : 'ann');
      now += 1000;
    }
    assert.deepEqual(l.check('10.0.0.2', 'aNN'), { retryAfterSeconds: 57, limit: 'username' });
    assert.deepEqual(l.check('10.0.0.1', 'bob'), { retryAfterSeconds: 57, limit: 'source' });
    now += 56_000;
    assert.equal(l.check('10.0.0.2', 'ann').retryAfterSeconds, 1);
    now += 1000;
    assert.equal(l.check('10.0.0.2', 'ann').retryAfterSeconds, 0, 'the first failure left the window');
  });

  it('success clears the username, not the address; memory stays bounded', () => {
    const l = new LoginLimiter({ maxFailures: 2, windowMs: 60_000, maxKeys: 100, now: () => 5 });
    l.failed('10.0.0.1', 'ann');
    l.failed('10.0.0.1', 'ann');
    l.succeeded('ANN');
    assert.equal(l.check('10.0.0.9', 'ann').retryAfterSeconds, 0);
    assert.ok(l.check('10.0.0.1', 'zed').retryAfterSeconds > 0);
    for (let i = 0; i < 1000; i++) l.failed(`10.1.${i >> 8}.${i & 255}`, `name-${i}`);
    assert.deepEqual(l.sizes(), { sources: 100, usernames: 100 });
  });
});

describe('KDF gate', () => {
  it('runs at most maxConcurrent at once, queues up to maxWaiting, refuses beyond, and every admitted run completes', async () => {
    const gate = new KdfGate(2, 3);
    let running = 0;
    let peak = 0;
    const releases: (() => void)[] = [];
    const work = () =>
      new Promise<void>((resolve) => {
        running++;
        peak = Math.max(peak, running);
        releases.push(() => {
          running--;
          resolve();
        });
      });
    const admitted = Array.from({ length: 5 }, () => gate.run(work));
    await assert.rejects(gate.run(work), KdfBusyError);
    assert.deepEqual(gate.load, { running: 2, waiting: 3 });
    while (releases.length > 0 || running > 0) {
      releases.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(admitted);
    assert.equal(peak, 2);
    assert.deepEqual(gate.load, { running: 0, waiting: 0 });
    // A failing run frees its slot too.
    await assert.rejects(gate.run(() => Promise.reject(new Error('boom'))), /boom/);
    assert.deepEqual(gate.load, { running: 0, waiting: 0 });
  });
});
