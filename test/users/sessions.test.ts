// Console login through HTTP on the composed core: cookie flags, the session answer, CSRF, idle
// and absolute expiry (the core's clock is injected and moved, never slept on), logout, login rate
// limits, disabled users, role/password changes ending sessions, and WebSockets opened with the
// cookie (origin check, closed when the session ends). The core trusts 127.0.0.1 as a proxy, so
// each test speaks from its own X-Forwarded-For address and the per-address limit stays its own.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startTestCore, type TestCore } from '../helpers/core.js';
import { metricValue } from '../nodes/harness.js';

const MINUTE = 60_000;

describe('console sessions on the composed core', () => {
  let t: TestCore;
  let offset = 0;
  const now = () => Date.now() + offset;
  const password = 'correct horse battery';

  before(async () => {
    t = await startTestCore({ core: { now }, args: ['--trust-proxy', '127.0.0.1'] });
  });
  after(async () => {
    await t?.close();
  });

  const admin = (method: string, path: string, body?: unknown) => t.api(method, path, { token: t.adminToken, body });
  const createUser = async (username: string, role: string, pw = password) => {
    const res = await admin('POST', '/api/v1/users', { username, role, password: pw });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { id: string; username: string; role: string };
  };
  const login = async (username: string, pw: string, ip: string, headers: Record<string, string> = {}) => {
    const res = await t.api('POST', '/api/v1/session', { body: { username, password: pw }, headers: { 'x-forwarded-for': ip, ...headers } });
    const setCookie = res.headers.get('set-cookie') ?? '';
    const cookie = /^(apiary_session=[^;]*)/.exec(setCookie)?.[1] ?? '';
    return { ...res, setCookie, cookie };
  };
  const withCookie = (cookie: string, csrf?: string, ip = '10.9.9.9') => ({ cookie, 'x-forwarded-for': ip, ...(csrf ? { 'x-csrf-token': csrf } : {}) });
  const whoAmI = (cookie: string) => t.api('GET', '/api/v1/session', { headers: withCookie(cookie) });
  const sessionRows = () => (t.core.database!.sqlite.prepare('SELECT id_hash FROM user_sessions').all() as { id_hash: string }[]).map((r) => r.id_hash);

  it('login: 200 with user, csrf_token and both expiries; an httpOnly SameSite=Strict Path=/ cookie (Secure only over https); the id is stored hashed', async () => {
    const u = await createUser('Alice', 'operator');
    const before = now();
    const res = await login('alice', password, '10.0.1.1');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.user, { id: u.id, username: 'Alice', role: 'operator' }, 'usernames match case-insensitively');
    assert.match(res.body.csrf_token, /^[A-Za-z0-9_-]{40,}$/);
    assert.ok(Math.abs(res.body.expires_at - (before + 12 * 60 * MINUTE)) < 5000, 'absolute expiry: SESSION_MAX_HOURS default 12');
    assert.ok(Math.abs(res.body.idle_expires_at - (before + 30 * MINUTE)) < 5000, 'idle expiry: SESSION_IDLE_MINUTES default 30');
    const attrs = res.setCookie.split(';').map((s) => s.trim());
    assert.ok(attrs.includes('HttpOnly') && attrs.includes('SameSite=Strict') && attrs.includes('Path=/'), res.setCookie);
    assert.ok(attrs.includes(`Max-Age=${12 * 3600}`), res.setCookie);
    assert.ok(!attrs.includes('Secure'), 'plain http: no Secure flag');
    const value = res.cookie.slice('apiary_session='.length);
    assert.ok(value.length >= 40);
    assert.deepEqual(sessionRows(), [createHash('sha256').update(value).digest('hex')], 'only the SHA-256 of the cookie is stored');
    assert.equal(JSON.stringify(t.core.database!.sqlite.prepare('SELECT * FROM user_sessions').all()).includes(value), false);

    const me = await whoAmI(res.cookie);
    assert.equal(me.status, 200);
    assert.deepEqual(me.body.user, res.body.user);
    assert.equal(me.body.csrf_token, res.body.csrf_token);
    assert.equal((await t.api('GET', '/api/v1/session')).status, 401);
    assert.equal((await whoAmI('apiary_session=not-a-session-0123456789012345678901234567890')).status, 401);

    // Behind the trusted proxy, X-Forwarded-Proto https makes the cookie Secure. A login from a
    // browser that held a session replaces it (the old one ends).
    const viaTls = await login('alice', password, '10.0.1.1', { 'x-forwarded-proto': 'https', cookie: res.cookie });
    assert.equal(viaTls.status, 200);
    assert.equal((await whoAmI(res.cookie)).status, 401);
    assert.equal((await whoAmI(viaTls.cookie)).status, 200);
    assert.ok(viaTls.setCookie.split(';').map((s) => s.trim()).includes('Secure'), viaTls.setCookie);
    assert.equal((await t.core.users.byName('alice'))?.lastLoginAt !== null, true);
  });

  it('wrong password, unknown user and disabled user all get the same 401 invalid_credentials, in similar time; each is audited and counted', async () => {
    const u = await createUser('bob', 'viewer');
    await createUser('carol', 'viewer');
    assert.equal((await admin('PATCH', `/api/v1/users/${u.id}`, { disabled: true })).status, 200);
    const failedBefore = await metricValue(t.core.registry, 'apiary_console_logins_total', { outcome: 'invalid_credentials' });
    const timed = async (username: string, pw: string, ip: string) => {
      const started = performance.now();
      const res = await login(username, pw, ip);
      return { res, ms: performance.now() - started };
    };
    const answers = [];
    const wrongMs: number[] = [];
    const unknownMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const wrong = await timed('carol', 'not the password at all', `10.0.2.${i}`);
      const unknown = await timed('nobody-here', 'not the password at all', `10.0.3.${i}`);
      wrongMs.push(wrong.ms);
      unknownMs.push(unknown.ms);
      answers.push(wrong.res, unknown.res);
    }
    answers.push((await timed('bob', password, '10.0.4.1')).res);
    for (const a of answers) {
      assert.equal(a.status, 401);
      assert.deepEqual(a.body, { error: 'invalid_credentials', message: 'wrong username or password' });
      assert.equal(a.setCookie, '');
    }
    // An unknown name runs the KDF too: without it the answer would come ~50x sooner.
    assert.ok(Math.min(...unknownMs) > 0.3 * Math.min(...wrongMs), `unknown ${unknownMs.map(Math.round)} ms vs wrong ${wrongMs.map(Math.round)} ms`);
    assert.equal(await metricValue(t.core.registry, 'apiary_console_logins_total', { outcome: 'invalid_credentials' }), failedBefore + 7);
    const audit = (await admin('GET', '/api/v1/audit?action=session.login_failed&limit=500')).body.entries as any[];
    const forBob = audit.find((e) => e.actor.name === 'bob');
    assert.equal(forBob.status, 401);
    assert.equal(forBob.actor.kind, 'user');
    assert.equal(forBob.source, '10.0.4.1');
    assert.ok(audit.some((e) => e.actor.name === 'nobody-here' && e.actor.id === null));
    assert.equal(JSON.stringify(audit).includes(password), false, 'no password in the audit log');
  });

  it('CSRF: a cookie-authenticated unsafe request needs X-CSRF-Token equal to the session token; bearer requests do not', async () => {
    await createUser('dora', 'admin');
    const s = await login('dora', password, '10.0.5.1');
    const create = (headers: Record<string, string>, username: string) => t.api('POST', '/api/v1/users', { body: { username, role: 'viewer' }, headers });
    const none = await create(withCookie(s.cookie), 'csrf-none');
    assert.equal(none.status, 403);
    assert.equal(none.body.error, 'csrf_failed');
    const wrong = await create(withCookie(s.cookie, `${s.body.csrf_token.slice(0, -1)}x`), 'csrf-wrong');
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error, 'csrf_failed');
    assert.equal(await t.core.users.byName('csrf-none'), undefined, 'nothing was created');
    const ok = await create(withCookie(s.cookie, s.body.csrf_token), 'csrf-ok');
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.match(ok.body.password, /^[A-Za-z0-9_-]{24}$/, 'a generated password, shown once');
    // A safe method needs no token.
    assert.equal((await t.api('GET', '/api/v1/users', { headers: withCookie(s.cookie) })).status, 200);
    // Bearer tokens are unaffected, even with a stale cookie alongside.
    const bearer = await t.api('POST', '/api/v1/users', { token: t.adminToken, body: { username: 'csrf-bearer', role: 'viewer' }, headers: { cookie: s.cookie } });
    assert.equal(bearer.status, 201);
    // The audit log tells a person from a token.
    const entries = (await admin('GET', '/api/v1/audit?action=users.create')).body.entries as any[];
    const byUser = entries.find((e) => e.target === ok.body.id);
    assert.deepEqual([byUser.actor.kind, byUser.actor.name, byUser.actor.role], ['user', 'dora', 'admin']);
    assert.equal(byUser.changes.password, undefined);
    const byToken = entries.find((e) => e.target === bearer.body.id);
    assert.deepEqual([byToken.actor.kind, byToken.actor.name], ['token', 'bootstrap-admin']);
    assert.equal(entries.some((e) => e.status === 403), false, 'a request failing CSRF is no operator action');
  });

  it('session-only routes answer 401 to bearer tokens', async () => {
    const res = await t.api('GET', '/api/v1/session', { token: t.adminToken });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'unauthorized');
  });

  it('idle expiry: each use moves it; unused for SESSION_IDLE_MINUTES the session ends', async () => {
    await createUser('erin', 'viewer');
    const s = await login('erin', password, '10.0.6.1');
    const unused = await login('erin', password, '10.0.6.2');
    const unusedHash = createHash('sha256').update(unused.cookie.slice('apiary_session='.length)).digest('hex');
    for (let i = 0; i < 3; i++) {
      offset += 29 * MINUTE;
      const me = await whoAmI(s.cookie);
      assert.equal(me.status, 200, `use ${i + 1}, 29 min after the previous one`);
      assert.ok(Math.abs(me.body.idle_expires_at - (now() + 30 * MINUTE)) < 5000);
    }
    offset += 30 * MINUTE + 1000;
    assert.equal((await whoAmI(s.cookie)).status, 401);
    assert.equal((await whoAmI(s.cookie)).status, 401, 'and stays ended');
    // The unused one is still a row until the periodic sweep deletes it.
    assert.ok(sessionRows().includes(unusedHash));
    assert.ok((await t.core.users.sweepExpired()) >= 1);
    assert.equal(sessionRows().includes(unusedHash), false);
    assert.equal((await whoAmI(unused.cookie)).status, 401);
  });

  it('absolute expiry: a session in constant use still ends SESSION_MAX_HOURS after login', async () => {
    await createUser('frank', 'viewer');
    const s = await login('frank', password, '10.0.7.1');
    const end = s.body.expires_at as number;
    while (now() + 20 * MINUTE < end) {
      offset += 20 * MINUTE;
      const me = await whoAmI(s.cookie);
      assert.equal(me.status, 200);
      assert.equal(me.body.expires_at, end, 'use does not extend the absolute end');
      assert.ok(me.body.idle_expires_at <= end);
    }
    offset += end - now() + 1;
    assert.equal((await whoAmI(s.cookie)).status, 401);
  });

  it('logout: needs the CSRF token, deletes the session server-side and clears the cookie', async () => {
    await createUser('gina', 'viewer');
    const s = await login('gina', password, '10.0.8.1');
    const before = sessionRows().length;
    assert.equal((await t.api('DELETE', '/api/v1/session', { headers: withCookie(s.cookie) })).status, 403);
    const out = await t.api('DELETE', '/api/v1/session', { headers: withCookie(s.cookie, s.body.csrf_token) });
    assert.equal(out.status, 204);
    const cleared = out.headers.get('set-cookie') ?? '';
    assert.match(cleared, /^apiary_session=;/);
    assert.match(cleared, /Max-Age=0/);
    assert.equal(sessionRows().length, before - 1);
    assert.equal((await whoAmI(s.cookie)).status, 401);
    const audit = (await admin('GET', '/api/v1/audit?action=session.*')).body.entries as any[];
    assert.ok(audit.some((e) => e.action === 'session.delete' && e.actor.name === 'gina' && e.status === 204), 'logout audited');
    assert.ok(audit.some((e) => e.action === 'session.login' && e.actor.name === 'gina' && e.status === 200), 'login audited');
  });

  it('rate limit: 10 failures per username (any address) or per address (any username) in 15 min, then 429 with Retry-After, counted', async () => {
    await createUser('hank', 'viewer');
    await createUser('ivy', 'viewer');
    const limitedBefore = await metricValue(t.core.registry, 'apiary_console_logins_total', { outcome: 'rate_limited' });
    for (let i = 0; i < 10; i++) assert.equal((await login('hank', `wrong password ${i}`, `10.1.0.${i}`)).status, 401);
    const blocked = await login('hank', password, '10.1.1.1');
    assert.equal(blocked.status, 429, 'the right password from a fresh address is refused too');
    assert.equal(blocked.body.error, 'rate_limited');
    const retry = Number(blocked.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 15 * 60, `Retry-After ${retry}`);
    // Per address: ten unknown names from one address, then even a valid login from it is refused.
    for (let i = 0; i < 10; i++) assert.equal((await login(`ghost-${i}`, 'whatever password', '10.1.2.1')).status, 401);
    assert.equal((await login('ivy', password, '10.1.2.1')).status, 429);
    assert.equal((await login('ivy', password, '10.1.2.2')).status, 200, 'another address is not affected');
    assert.equal(await metricValue(t.core.registry, 'apiary_console_logins_total', { outcome: 'rate_limited' }), limitedBefore + 2);
    // The window passes: both may try again.
    offset += 15 * MINUTE + 1000;
    assert.equal((await login('hank', password, '10.1.1.1')).status, 200);
    assert.equal((await login('ivy', password, '10.1.2.1')).status, 200);
  });

  const openStream = (cookie: string, origin?: string) =>
    new Promise<{ status: number; ws?: WebSocket }>((resolve, reject) => {
      const ws = new WebSocket(`${t.base.replace('http', 'ws')}/api/v1/events/stream`, { headers: { cookie, 'x-forwarded-for': '10.9.9.8', ...(origin ? { origin } : {}) } });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('no answer to the upgrade within 10 s'));
      }, 10_000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve({ status: 101, ws });
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0 });
        ws.terminate();
      });
      ws.once('error', () => {});
    });
  const closed = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

  it('WebSocket with the cookie: only from the same origin; disabling the user closes it at once and refuses the next request and login', async () => {
    const u = await createUser('jack', 'viewer');
    const s = await login('jack', password, '10.2.0.1');
    const host = new URL(t.base).host;
    assert.equal((await openStream(s.cookie)).status, 403, 'no Origin');
    assert.equal((await openStream(s.cookie, 'https://evil.example')).status, 403, 'another origin');
    assert.equal((await openStream(s.cookie, `http://${host}.evil.example`)).status, 403, 'a look-alike origin');
    assert.equal((await openStream('apiary_session=unknown-session-value-0123456789012345678901', `http://${host}`)).status, 401);
    const open = await openStream(s.cookie, `http://${host}`);
    assert.equal(open.status, 101);
    const code = closed(open.ws!);
    assert.equal((await admin('PATCH', `/api/v1/users/${u.id}`, { disabled: true })).status, 200);
    assert.equal(await code, 1008);
    assert.equal((await whoAmI(s.cookie)).status, 401);
    assert.equal((await login('jack', password, '10.2.0.2')).status, 401);
    // Enabled again, the user logs in anew (the old session stays ended).
    assert.equal((await admin('PATCH', `/api/v1/users/${u.id}`, { disabled: false })).status, 200);
    assert.equal((await login('jack', password, '10.2.0.2')).status, 200);
    assert.equal((await whoAmI(s.cookie)).status, 401);
  });

  it('a role change or an admin password change ends every session of the user (WebSockets too); deleting the user too', async () => {
    const u = await createUser('kate', 'operator');
    const host = new URL(t.base).host;
    const a = await login('kate', password, '10.3.0.1');
    const b = await login('kate', password, '10.3.0.2');
    const open = await openStream(a.cookie, `http://${host}`);
    assert.equal(open.status, 101);
    const code = closed(open.ws!);
    const changed = await admin('PATCH', `/api/v1/users/${u.id}`, { role: 'viewer' });
    assert.equal(changed.body.role, 'viewer');
    assert.equal(await code, 1008);
    assert.equal((await whoAmI(a.cookie)).status, 401);
    assert.equal((await whoAmI(b.cookie)).status, 401);
    const c = await login('kate', password, '10.3.0.3');
    assert.equal(c.body.user.role, 'viewer', 'the new session has the new role');
    // The same role again is no change: sessions stay.
    assert.equal((await admin('PATCH', `/api/v1/users/${u.id}`, { role: 'viewer' })).status, 200);
    assert.equal((await whoAmI(c.cookie)).status, 200);
    assert.equal((await admin('PATCH', `/api/v1/users/${u.id}`, { password: 'a brand new password' })).status, 200);
    assert.equal((await whoAmI(c.cookie)).status, 401);
    assert.equal((await login('kate', password, '10.3.0.4')).status, 401);
    const d = await login('kate', 'a brand new password', '10.3.0.4');
    assert.equal(d.status, 200);
    assert.equal((await admin('DELETE', `/api/v1/users/${u.id}`)).status, 204);
    assert.equal((await whoAmI(d.cookie)).status, 401);
    assert.equal((await admin('DELETE', `/api/v1/users/${u.id}`)).status, 404);
  });

  it('a user changes their own password: the current one is required, their other sessions end, this one stays', async () => {
    await createUser('liam', 'viewer');
    const mine = await login('liam', password, '10.4.0.1');
    const other = await login('liam', password, '10.4.0.2');
    const change = (current: string, next: string) =>
      t.api('POST', '/api/v1/session/password', { body: { current_password: current, new_password: next }, headers: withCookie(mine.cookie, mine.body.csrf_token, '10.4.0.1') });
    const wrong = await change('not my password', 'liam new password 1');
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error, 'invalid_credentials');
    const short = await change(password, 'short');
    assert.equal(short.status, 400);
    assert.equal((await whoAmI(other.cookie)).status, 200, 'failed changes end nothing');
    assert.equal((await change(password, 'liam new password 1')).status, 204);
    assert.equal((await whoAmI(mine.cookie)).status, 200);
    assert.equal((await whoAmI(other.cookie)).status, 401);
    assert.equal((await login('liam', 'liam new password 1', '10.4.0.3')).status, 200);
  });

  it('admin user API: validation, case-insensitive uniqueness, 404s; a viewer session cannot use it', async () => {
    assert.equal((await admin('POST', '/api/v1/users', { username: 'mona', role: 'viewer', password: 'too short' })).status, 400);
    assert.equal((await admin('POST', '/api/v1/users', { username: 'bad name', role: 'viewer' })).status, 400);
    assert.equal((await admin('POST', '/api/v1/users', { username: 'mona', role: 'root' })).status, 400);
    await createUser('mona', 'viewer');
    const dup = await admin('POST', '/api/v1/users', { username: 'MONA', role: 'viewer' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error, 'conflict');
    assert.equal((await admin('PATCH', '/api/v1/users/no-such-id', { role: 'admin' })).status, 404);
    const list = (await admin('GET', '/api/v1/users')).body as any[];
    const mona = list.find((u) => u.username === 'mona');
    assert.deepEqual(Object.keys(mona).sort(), ['created_at', 'disabled_at', 'id', 'last_login_at', 'role', 'username']);
    const s = await login('mona', password, '10.5.0.1');
    const denied = await t.api('GET', '/api/v1/users', { headers: withCookie(s.cookie) });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error, 'forbidden');
  });
});

describe('console sessions without TRUST_PROXY', () => {
  let t: TestCore;
  before(async () => {
    t = await startTestCore();
  });
  after(async () => {
    await t?.close();
  });

  it('X-Forwarded-Proto and X-Forwarded-For from an untrusted peer are ignored: no Secure flag, the peer address is the source', async () => {
    assert.equal((await t.api('POST', '/api/v1/users', { token: t.adminToken, body: { username: 'nora', role: 'viewer', password: 'nora password 123' } })).status, 201);
    const res = await t.api('POST', '/api/v1/session', { body: { username: 'nora', password: 'nora password 123' }, headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' } });
    assert.equal(res.status, 200);
    assert.ok(!(res.headers.get('set-cookie') ?? '').split(';').map((a) => a.trim()).includes('Secure'));
    const entry = (await t.api('GET', '/api/v1/audit?action=session.login', { token: t.adminToken })).body.entries[0];
    assert.equal(entry.source, '127.0.0.1');
  });

  it('a login posted from another origin is refused', async () => {
    const res = await t.api('POST', '/api/v1/session', { body: { username: 'nora', password: 'nora password 123' }, headers: { origin: 'https://evil.example' } });
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'forbidden_origin');
    assert.equal(res.headers.get('set-cookie'), null);
  });
});
