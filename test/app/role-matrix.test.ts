// The role matrix of the operator API, generated from the OpenAPI document of the composed core:
// every operation x {no token, wrong token, revoked token, viewer, operator, admin}, over HTTP;
// and the same with console session cookies of a viewer, an operator and an admin (with the CSRF
// header), plus every unsafe operation with an admin cookie but no CSRF header.
//
// Each operation states the role its route enforces (`x-role`, or an empty `security` list when
// public), emitted from the same route config the onRequest hook checks. The expected role of every
// operation is pinned below: a new route fails this test until it is added here (so its role is a
// reviewed decision), and a route whose role changes fails until the table changes with it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startTestCore, type TestCore } from '../helpers/core.js';

/** session: the console session itself (any logged-in user; bearer tokens have no session). */
type Need = 'public' | 'session' | 'viewer' | 'operator' | 'admin';

const EXPECTED: Record<string, Need> = {
  'GET /api/v1/nodes': 'viewer',
  'POST /api/v1/nodes': 'admin',
  'GET /api/v1/nodes/{name}': 'viewer',
  'DELETE /api/v1/nodes/{name}': 'admin',
  'GET /api/v1/nodes/{name}/pots': 'viewer',
  'GET /api/v1/nodes/{name}/log': 'viewer',
  'POST /api/v1/nodes/{name}/approve': 'admin',
  'POST /api/v1/nodes/{name}/revoke': 'admin',
  'POST /api/v1/nodes/{name}/rotate-secret': 'admin',
  'POST /api/v1/nodes/{name}/commands': 'operator',
  'POST /api/v1/commands/broadcast': 'operator',
  'POST /api/v1/commands/check': 'operator',
  'GET /api/v1/commands': 'viewer',
  'GET /api/v1/commands/{id}': 'viewer',
  'POST /api/v1/commands/{id}/cancel': 'operator',
  'GET /api/v1/events': 'viewer',
  'GET /api/v1/events/stats': 'viewer',
  'GET /api/v1/events/{id}': 'viewer',
  'GET /api/v1/tokens': 'admin',
  'POST /api/v1/tokens': 'admin',
  'DELETE /api/v1/tokens/{id}': 'admin',
  'GET /api/v1/hpfeeds/authkeys': 'admin',
  'POST /api/v1/hpfeeds/authkeys': 'admin',
  'GET /api/v1/hpfeeds/authkeys/{ident}': 'admin',
  'PATCH /api/v1/hpfeeds/authkeys/{ident}': 'admin',
  'DELETE /api/v1/hpfeeds/authkeys/{ident}': 'admin',
  'POST /api/v1/hpfeeds/authkeys/{ident}/rotate': 'admin',
  // Enrollment under a flood (issue 10): reading the aggregate is a read, rejecting is an admin act.
  'GET /api/v1/enrollment/unknown-registrations': 'viewer',
  'POST /api/v1/enrollment/pending/reject': 'admin',
  // Attack analytics and intel feeds (issue 12): read-only, for viewers.
  'GET /api/v1/attacks/top': 'viewer',
  'GET /api/v1/attacks/timeline': 'viewer',
  'GET /api/v1/attacks/records/{event_id}': 'viewer',
  'GET /api/v1/attacks/credits': 'viewer',
  'GET /api/v1/attackers/{ip}': 'viewer',
  'GET /api/v1/sessions': 'viewer',
  'GET /api/v1/sessions/{id}': 'viewer',
  'GET /api/v1/intel/ips': 'viewer',
  'GET /api/v1/intel/credentials': 'viewer',
  'GET /api/v1/intel/stix': 'viewer',
  // Audit log (issue 13): admins only.
  'GET /api/v1/audit': 'admin',
  // Alerts (issue 13): rules and channels hold secrets and reach outside: admins only.
  'GET /api/v1/alerts/rules': 'admin',
  'POST /api/v1/alerts/rules': 'admin',
  'GET /api/v1/alerts/rules/{id}': 'admin',
  'PATCH /api/v1/alerts/rules/{id}': 'admin',
  'DELETE /api/v1/alerts/rules/{id}': 'admin',
  'GET /api/v1/alerts/channels': 'admin',
  'POST /api/v1/alerts/channels': 'admin',
  'GET /api/v1/alerts/channels/{id}': 'admin',
  'PATCH /api/v1/alerts/channels/{id}': 'admin',
  'DELETE /api/v1/alerts/channels/{id}': 'admin',
  'POST /api/v1/alerts/channels/{id}/test': 'admin',
  // Console users (issue 14): the session is any logged-in person's; managing users is an admin act.
  'POST /api/v1/session': 'public',
  'GET /api/v1/session': 'session',
  'DELETE /api/v1/session': 'session',
  'POST /api/v1/session/password': 'session',
  'GET /api/v1/users': 'admin',
  'POST /api/v1/users': 'admin',
  'PATCH /api/v1/users/{id}': 'admin',
  'DELETE /api/v1/users/{id}': 'admin',
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'viewer',
};

const rank: Record<Exclude<Need, 'public' | 'session'>, number> = { viewer: 0, operator: 1, admin: 2 };
const PASSWORD = 'matrix password 0123';

interface Operation {
  key: string;
  method: string;
  path: string;
  declared: Need | undefined;
}

describe('role matrix from the OpenAPI document', () => {
  let t: TestCore;
  let ops: Operation[];
  const tokens: Record<'viewer' | 'operator' | 'admin' | 'revoked', string> = { viewer: '', operator: '', admin: '', revoked: '' };

  before(async () => {
    t = await startTestCore();
    tokens.admin = t.adminToken;
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      const res = await t.api('POST', '/api/v1/tokens', { token: t.adminToken, body: { name: `matrix-${role}`, role } });
      assert.equal(res.status, 201);
      if (role !== 'admin') tokens[role] = res.body.token;
      else {
        // An admin token that gets revoked: it must stop working at once.
        tokens.revoked = res.body.token;
        assert.equal((await t.api('DELETE', `/api/v1/tokens/${res.body.id}`, { token: t.adminToken })).status, 204);
      }
    }
    const spec = (await t.api('GET', '/docs/json')).body as { paths: Record<string, Record<string, { 'x-role'?: Need; 'x-session-only'?: boolean; security?: unknown[] }>> };
    ops = [];
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const declared = op['x-session-only'] ? 'session' : (op['x-role'] ?? (Array.isArray(op.security) && op.security.length === 0 ? 'public' : undefined));
        ops.push({ key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, declared });
      }
    }
  });
  after(async () => {
    await t?.close();
  });

  it('every operation in OpenAPI declares its role, and the declared roles are exactly the reviewed table', () => {
    for (const op of ops) assert.ok(op.declared, `${op.key} declares neither x-role nor public security`);
    const declared = Object.fromEntries(ops.map((o) => [o.key, o.declared]));
    assert.deepEqual(declared, EXPECTED);
  });

  it('every operation x {none, wrong, revoked, viewer, operator, admin} gets the answer its role implies', async () => {
    const failures: string[] = [];
    let requests = 0;
    for (const op of ops) {
      const need = EXPECTED[op.key];
      assert.ok(need, `${op.key} missing from the table`);
      const url = op.path.replace(/\{[^}]+\}/g, 'matrix-x');
      // Bodies are empty objects: an allowed request ends in a 400/404 at worst, never a change.
      const body = op.method === 'GET' || op.method === 'DELETE' ? undefined : {};
      const subjects: [string, string | undefined][] = [
        ['none', undefined],
        ['wrong', 'not-a-real-token-but-long-enough-0123456789'],
        ['revoked', tokens.revoked],
        ['viewer', tokens.viewer],
        ['operator', tokens.operator],
        ['admin', tokens.admin],
      ];
      for (const [who, token] of subjects) {
        const res = await t.api(op.method, url, { token, body });
        requests++;
        let want: string;
        if (need === 'public') want = 'allowed';
        else if (need === 'session') want = '401';
        else if (who === 'none' || who === 'wrong' || who === 'revoked') want = '401';
        else want = rank[who as 'viewer'] >= rank[need] ? 'allowed' : '403';
        const got = res.status === 401 ? '401' : res.status === 403 ? '403' : 'allowed';
        if (got !== want) failures.push(`${op.key} as ${who}: want ${want}, got ${res.status} ${JSON.stringify(res.body)}`);
        if (got === '401') assert.equal(res.body.error, 'unauthorized');
        if (got === '403') assert.equal(res.body.error, 'forbidden');
      }
    }
    assert.deepEqual(failures, []);
    assert.equal(requests, Object.keys(EXPECTED).length * 6);
  });

  it('the live event stream (a WebSocket, not in OpenAPI) needs a viewer token', async () => {
    const wsBase = t.base.replace('http', 'ws');
    const attempt = (token?: string) => upgradeStatus(`${wsBase}/api/v1/events/stream`, token ? { authorization: `Bearer ${token}` } : {});
    assert.equal(await attempt(), 401);
    assert.equal(await attempt('not-a-real-token-but-long-enough-0123456789'), 401);
    assert.equal(await attempt(tokens.revoked), 401);
    assert.equal(await attempt(tokens.viewer), 101);
  });
});

describe('role matrix with console session cookies', () => {
  let t: TestCore;
  let ops: { key: string; method: string; path: string }[];

  before(async () => {
    t = await startTestCore();
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      const res = await t.api('POST', '/api/v1/users', { token: t.adminToken, body: { username: `matrix-${role}`, role, password: PASSWORD } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    const spec = (await t.api('GET', '/docs/json')).body as { paths: Record<string, Record<string, unknown>> };
    ops = Object.entries(spec.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => ({ key: `${m.toUpperCase()} ${path}`, method: m.toUpperCase(), path })));
  });
  after(async () => {
    await t?.close();
  });

  const login = async (role: string) => {
    const res = await t.api('POST', '/api/v1/session', { body: { username: `matrix-${role}`, password: PASSWORD } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const cookie = /^(apiary_session=[^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
    assert.ok(cookie);
    return { cookie, csrf: res.body.csrf_token as string };
  };

  it('every operation x {viewer, operator, admin} session (with X-CSRF-Token) gets the answer its role implies', async () => {
    const failures: string[] = [];
    let requests = 0;
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      let session = await login(role);
      for (const op of ops) {
        const need = EXPECTED[op.key];
        assert.ok(need, `${op.key} missing from the table`);
        const url = op.path.replace(/\{[^}]+\}/g, 'matrix-x');
        const body = op.method === 'GET' || op.method === 'DELETE' ? undefined : {};
        const res = await t.api(op.method, url, { body, headers: { cookie: session.cookie, 'x-csrf-token': session.csrf } });
        requests++;
        const want = need === 'public' || need === 'session' || rank[role] >= rank[need] ? 'allowed' : '403';
        const got = res.status === 401 ? '401' : res.status === 403 ? '403' : 'allowed';
        if (got !== want) failures.push(`${op.key} as ${role} session: want ${want}, got ${res.status} ${JSON.stringify(res.body)}`);
        if (got === '403') assert.equal(res.body.error, 'forbidden', `${op.key} as ${role}`);
        // Logging out (allowed for everyone) ends the session: the rest of the table needs a new one.
        if (op.key === 'DELETE /api/v1/session' && res.status === 204) session = await login(role);
      }
    }
    assert.deepEqual(failures, []);
    assert.equal(requests, Object.keys(EXPECTED).length * 3);
  });

  it('every unsafe operation with an admin session cookie but no X-CSRF-Token is refused 403 csrf_failed (public ones aside)', async () => {
    const { cookie } = await login('admin');
    const failures: string[] = [];
    let unsafe = 0;
    for (const op of ops) {
      if (op.method === 'GET' || EXPECTED[op.key] === 'public') continue;
      unsafe++;
      const url = op.path.replace(/\{[^}]+\}/g, 'matrix-x');
      const res = await t.api(op.method, url, { body: op.method === 'DELETE' ? undefined : {}, headers: { cookie } });
      if (res.status !== 403 || res.body.error !== 'csrf_failed') failures.push(`${op.key}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    assert.deepEqual(failures, []);
    assert.equal(unsafe, Object.entries(EXPECTED).filter(([key, need]) => !key.startsWith('GET ') && need !== 'public').length);
  });

  it('the live event stream accepts a viewer session cookie from the same origin only', async () => {
    const { cookie } = await login('viewer');
    const wsBase = t.base.replace('http', 'ws');
    const attempt = (headers: Record<string, string>) => upgradeStatus(`${wsBase}/api/v1/events/stream`, headers);
    assert.equal(await attempt({ cookie, origin: t.base }), 101);
    assert.equal(await attempt({ cookie, origin: 'http://attacker.example' }), 403);
    assert.equal(await attempt({ cookie }), 403);
  });
});

/** The status a WebSocket upgrade gets: 101 when it opens, else the HTTP answer's status. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no answer to the upgrade within 10 s'));
    }, 10_000);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => {});
  });
}
