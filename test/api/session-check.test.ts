// The console-session half of the shared HTTP server's auth check, edge by edge and fast (no core,
// no KDF: the session resolver is a map), so mutation testing of src/api/http.ts and
// src/api/cookies.ts can run it per mutant: cookie reading, the CSRF rule for unsafe methods, the
// WebSocket origin rule, bearer-over-cookie precedence, session-only routes, the exact answers, the
// operator and session handed to handlers, what OpenAPI says, and the cookie helpers themselves.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { createHttpServer, roleAllows, roles, type Operator, type Role, type SessionIdentity } from '../../src/api/index.js';
import { readCookie, sameOrigin, secretsEqual, sessionCookie } from '../../src/api/cookies.js';

const COOKIE = 'apiary_session';
const CSRF = 'csrf-0123456789';

const sessionOf = (role: Role, n: number): SessionIdentity => ({
  operator: { id: `u${n}`, name: `user-${role}`, role, kind: 'user' },
  csrfToken: `${CSRF}-${role}`,
  socketKey: `session:${role}`,
});

describe('console session check', () => {
  let app: FastifyInstance;
  let base: string;
  const sessions: Record<string, SessionIdentity> = { sv: sessionOf('viewer', 1), so: sessionOf('operator', 2), sa: sessionOf('admin', 3) };
  const tokens: Record<string, Operator> = { tv: { id: 't1', name: 'tok-viewer', role: 'viewer' } };
  const seen: Array<{ operator?: Operator; session?: SessionIdentity }> = [];
  before(async () => {
    app = await createHttpServer({
      authenticate: async (t) => tokens[t],
      sessions: { cookieName: COOKIE, resolve: async (value) => sessions[value] },
    });
    for (const role of roles) {
      const handler = async (req: { operator?: Operator; consoleSession?: SessionIdentity }) => {
        seen.push({ operator: req.operator, session: req.consoleSession });
        return { ok: role };
      };
      app.get(`/${role}`, { config: { role } }, handler);
      app.post(`/${role}`, { config: { role } }, handler);
      app.delete(`/${role}`, { config: { role } }, handler);
    }
    app.get('/me', { config: { role: 'viewer', sessionOnly: true } }, async (req) => ({ user: req.operator?.name }));
    app.get('/stream', { websocket: true, config: { role: 'viewer' } }, (socket) => socket.send('hello'));
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(() => app.close());

  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, headers: Record<string, string> = {}) => app.inject({ method, url, headers });
  const cookie = (value: string, extra = '') => ({ cookie: `${extra}${COOKIE}=${value}` });

  it('every session role against every route: GET needs no CSRF token, the role rule is the token one', async () => {
    for (const [value, session] of Object.entries(sessions)) {
      const have = session.operator.role;
      for (const need of roles) {
        const res = await call('GET', `/${need}`, cookie(value));
        if (roleAllows(have, need)) {
          assert.equal(res.statusCode, 200, `${have} on ${need}`);
          assert.deepEqual(res.json(), { ok: need });
        } else {
          assert.equal(res.statusCode, 403, `${have} on ${need}`);
          assert.deepEqual(res.json(), { error: 'forbidden', message: `role ${have} may not do this (needs ${need})` });
        }
      }
    }
  });

  it('the handler gets the session operator and the session', async () => {
    seen.length = 0;
    await call('GET', '/viewer', cookie('so'));
    assert.deepEqual(seen, [{ operator: sessions.so!.operator, session: sessions.so }]);
  });

  it('unsafe methods need the session CSRF token in X-CSRF-Token, exactly', async () => {
    const failed = { error: 'csrf_failed', message: 'send the X-CSRF-Token header with the csrf_token of your session' };
    for (const method of ['POST', 'DELETE'] as const) {
      const none = await call(method, '/viewer', cookie('sa'));
      assert.equal(none.statusCode, 403, method);
      assert.deepEqual(none.json(), failed);
      // Another session's token, the same length: still refused.
      const other = await call(method, '/viewer', { ...cookie('sa'), 'x-csrf-token': sessions.so!.csrfToken.replace('operator', 'viewer!!') });
      assert.equal(other.statusCode, 403, method);
      const shorter = await call(method, '/viewer', { ...cookie('sa'), 'x-csrf-token': sessions.sa!.csrfToken.slice(0, -1) });
      assert.equal(shorter.statusCode, 403, method);
      const right = await call(method, '/viewer', { ...cookie('sa'), 'x-csrf-token': sessions.sa!.csrfToken });
      assert.equal(right.statusCode, 200, method);
      assert.deepEqual(right.json(), { ok: 'viewer' });
    }
    // The CSRF check comes before the role check: a viewer with a good token still gets 403 forbidden.
    const viewer = await call('POST', '/admin', { ...cookie('sv'), 'x-csrf-token': sessions.sv!.csrfToken });
    assert.equal(viewer.json().error, 'forbidden');
    // Bearer tokens need no CSRF token.
    assert.equal((await call('POST', '/viewer', { authorization: 'Bearer tv' })).statusCode, 200);
  });

  it('an unknown or ended session is 401; the cookie is found among others and its name is exact', async () => {
    const res = await call('GET', '/viewer', cookie('nope'));
    assert.equal(res.statusCode, 401);
    assert.deepEqual(res.json(), { error: 'unauthorized', message: 'session expired or unknown; log in again' });
    assert.equal((await call('GET', '/viewer', { cookie: `theme=dark; ${COOKIE}=sv; other=1` })).statusCode, 200);
    const missing = { error: 'unauthorized', message: 'missing bearer token or session cookie' };
    assert.deepEqual((await call('GET', '/viewer', { cookie: `x${COOKIE}=sv` })).json(), missing);
    assert.deepEqual((await call('GET', '/viewer')).json(), missing);
    assert.deepEqual((await call('GET', '/viewer', { cookie: `${COOKIE}=` })).json(), missing);
  });

  it('a bearer token wins over the cookie; a query token outside WebSocket upgrades is refused first', async () => {
    seen.length = 0;
    const res = await call('GET', '/admin', { ...cookie('sa'), authorization: 'Bearer tv' });
    assert.equal(res.statusCode, 403, 'the viewer token decides, not the admin cookie');
    assert.equal((await call('GET', '/viewer', { ...cookie('sa'), authorization: 'Bearer nope' })).statusCode, 401);
    const query = await call('GET', '/viewer?access_token=tv', cookie('sa'));
    assert.equal(query.statusCode, 401);
    assert.equal(query.json().error, 'unauthorized');
    assert.match(query.json().message, /accepted only on WebSocket upgrades/);
    // Nor on a WebSocket route asked without an upgrade.
    const plain = await call('GET', '/stream?access_token=tv');
    assert.equal(plain.statusCode, 401);
    assert.match(plain.json().message, /accepted only on WebSocket upgrades/);
    assert.equal(seen.length, 0);
  });

  it('a session-only route takes the cookie and refuses a bearer token', async () => {
    assert.deepEqual((await call('GET', '/me', cookie('sv'))).json(), { user: 'user-viewer' });
    const token = await call('GET', '/me', { authorization: 'Bearer tv' });
    assert.equal(token.statusCode, 401);
    assert.deepEqual(token.json(), {
      error: 'unauthorized',
      message: 'this route needs a console session (log in with POST /api/v1/session); tokens do not have one',
    });
    assert.equal((await call('GET', '/me')).statusCode, 401);
  });

  it('a WebSocket opened with the cookie must come from this origin; tracked under the session key', async () => {
    const open = (headers: Record<string, string>, query = '') =>
      new Promise<{ opened: boolean; status?: number; body?: string; socket?: WebSocket; first?: Promise<unknown[]> }>((resolve) => {
        const ws = new WebSocket(`ws://${base}/stream${query}`, { headers });
        // The greeting can arrive with the upgrade answer: listen before 'open'.
        const first = once(ws, 'message');
        first.catch(() => {});
        ws.once('open', () => resolve({ opened: true, socket: ws, first }));
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d));
          res.on('end', () => {
            resolve({ opened: false, status: res.statusCode, body });
            ws.terminate();
          });
        });
        ws.once('error', () => resolve({ opened: false }));
      });
    const same = await open({ cookie: `${COOKIE}=sv`, origin: `http://${base}` });
    assert.equal(same.opened, true);
    const got = await same.first!;
    assert.equal(String(got[0]), 'hello');
    assert.deepEqual(app.operatorSockets.operatorIds(), ['session:viewer']);
    assert.equal(app.operatorSockets.closeFor('session:viewer', 'session ended'), 1);
    await once(same.socket!, 'close');
    const foreign = await open({ cookie: `${COOKIE}=sv`, origin: 'http://evil.example' });
    assert.equal(foreign.status, 403);
    assert.deepEqual(JSON.parse(foreign.body!), { error: 'forbidden_origin', message: 'a WebSocket opened with the session cookie must come from a page of this origin' });
    assert.equal((await open({ cookie: `${COOKIE}=sv` })).status, 403, 'no Origin header is not this origin');
    assert.equal((await open({ cookie: `${COOKIE}=gone`, origin: `http://${base}` })).status, 401);
    const token = await open({}, '?access_token=tv');
    assert.equal(token.opened, true, 'a token in the query still opens it, whatever the origin');
    const closed = once(token.socket!, 'close');
    token.socket!.close();
    await closed;
  });

  it('OpenAPI: session-only operations say so; the cookie scheme is declared and accepted document-wide', () => {
    const spec = app.swagger() as {
      security: unknown[];
      components: { securitySchemes: Record<string, unknown> };
      paths: Record<string, { get: { 'x-role'?: string; 'x-session-only'?: boolean; security?: unknown[] } }>;
    };
    assert.deepEqual(spec.paths['/me']!.get, { ...spec.paths['/me']!.get, 'x-role': 'viewer', 'x-session-only': true, security: [{ session: [] }] });
    assert.equal(spec.paths['/viewer']!.get['x-session-only'], undefined);
    assert.equal(spec.paths['/viewer']!.get.security, undefined);
    assert.deepEqual(spec.components.securitySchemes.session, { type: 'apiKey', in: 'cookie', name: COOKIE });
    assert.deepEqual(spec.security, [{ bearer: [] }, { session: [] }]);
  });
});

describe('cookie and origin helpers', () => {
  it('readCookie finds the named cookie, unquotes it, and treats empty as absent', () => {
    assert.equal(readCookie(undefined, 'a'), undefined);
    assert.equal(readCookie('', 'a'), undefined);
    assert.equal(readCookie('a=1', 'a'), '1');
    assert.equal(readCookie(' b=2 ;  a = 1 ', 'a'), '1');
    assert.equal(readCookie('ab=2; a=3', 'a'), '3');
    assert.equal(readCookie('flag; a=4', 'a'), '4', 'a part without "=" is skipped');
    assert.equal(readCookie('ab; a=4', 'a'), '4', 'a part without "=" is not a cookie named by all but its last character');
    assert.equal(readCookie('a="quoted"', 'a'), 'quoted');
    assert.equal(readCookie('a="open', 'a'), '"open', 'quotes are removed only in pairs');
    assert.equal(readCookie('a=close"', 'a'), 'close"');
    assert.equal(readCookie('a="', 'a'), '"', 'a lone quote is not a quoted value');
    assert.equal(readCookie('a=""', 'a'), undefined);
    assert.equal(readCookie('a=', 'a'), undefined);
    assert.equal(readCookie('a=x=y', 'a'), 'x=y', 'the value runs to the end of the part');
    assert.equal(readCookie('b=1', 'a'), undefined);
  });

  it('sessionCookie writes the attributes the console relies on', () => {
    assert.equal(sessionCookie('s', 'v', { maxAgeSeconds: 3600.9, secure: false }), 's=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600');
    assert.equal(sessionCookie('s', 'v', { maxAgeSeconds: -5, secure: true }), 's=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure');
  });

  it('sameOrigin compares scheme-less host and port, default ports folded, case-insensitively', () => {
    assert.equal(sameOrigin('http://Core.example:8080', 'core.example:8080'), true);
    assert.equal(sameOrigin('http://core.example', 'core.example:80'), true);
    assert.equal(sameOrigin('https://core.example', 'core.example:443'), true);
    assert.equal(sameOrigin('https://core.example', 'core.example'), true);
    assert.equal(sameOrigin('http://core.example', 'core.example:443'), false);
    assert.equal(sameOrigin('http://core.example:8080', 'core.example:8081'), false);
    assert.equal(sameOrigin('http://other.example', 'core.example'), false);
    assert.equal(sameOrigin('null', 'core.example'), false);
    assert.equal(sameOrigin('file://core.example', 'core.example'), false);
    assert.equal(sameOrigin('ws://core.example', 'core.example'), false);
    assert.equal(sameOrigin(undefined, 'core.example'), false);
    assert.equal(sameOrigin('http://core.example', undefined), false);
    assert.equal(sameOrigin('http://core.example', ''), false);
    assert.equal(sameOrigin('', 'core.example'), false);
  });

  it('secretsEqual is equality of any lengths', () => {
    assert.equal(secretsEqual('abc', 'abc'), true);
    assert.equal(secretsEqual('abc', 'abd'), false);
    assert.equal(secretsEqual('abc', 'abcd'), false);
    assert.equal(secretsEqual('', ''), true);
  });
});
