// The audit log on the composed core: every kind of operator action through the API leaves an
// entry with actor, source address, action, target and masked changes; admins read it with
// filters and keyset paging; viewers cannot; retention removes old entries.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { actionFor, maskedChanges, MASK } from '../../src/audit/index.js';
import { startTestCore, type TestCore } from '../helpers/core.js';

describe('audit: naming and masking', () => {
  it('derives action names from the route pattern and method', () => {
    assert.equal(actionFor('POST', '/api/v1/tokens'), 'tokens.create');
    assert.equal(actionFor('DELETE', '/api/v1/tokens/:id'), 'tokens.delete');
    assert.equal(actionFor('POST', '/api/v1/nodes/:name/approve'), 'nodes.approve');
    assert.equal(actionFor('POST', '/api/v1/nodes/:name/rotate-secret'), 'nodes.rotate-secret');
    assert.equal(actionFor('POST', '/api/v1/commands/broadcast'), 'commands.broadcast');
    assert.equal(actionFor('PATCH', '/api/v1/hpfeeds/authkeys/:ident'), 'hpfeeds.authkeys.update');
    assert.equal(actionFor('POST', '/api/v1/hpfeeds/authkeys'), 'hpfeeds.authkeys.create');
    assert.equal(actionFor('POST', '/api/v1/enrollment/pending/reject'), 'enrollment.pending.reject');
  });

  it('masks secret-named values at any depth, keeps the rest, and bounds the size', () => {
    const text = maskedChanges({ name: 'a', secret: 's3cr3t', nested: { botToken: 'abc', password: 'pw', list: [{ hmacSecret: 'x', url: 'u' }] }, empty: '' });
    const parsed = JSON.parse(text!);
    assert.equal(parsed.name, 'a');
    assert.equal(parsed.secret, MASK);
    assert.equal(parsed.nested.botToken, MASK);
    assert.equal(parsed.nested.password, MASK);
    assert.equal(parsed.nested.list[0].hmacSecret, MASK);
    assert.equal(parsed.nested.list[0].url, 'u');
    assert.ok(!text!.includes('s3cr3t') && !text!.includes('"pw"'));
    assert.equal(maskedChanges(undefined), null);
    const big = JSON.parse(maskedChanges({ blob: 'x'.repeat(20_000) })!);
    assert.equal(big.truncated, true);
    assert.ok(big.head.length <= 8192);
  });
});

describe('audit log on the core', () => {
  let t: TestCore;
  let viewer: string;
  let operator: { id: string; token: string };
  before(async () => {
    t = await startTestCore({ env: { ENROLLMENT_MODE: 'approve' } });
  });
  after(async () => {
    await t?.close();
  });

  const entries = async (query = '') => {
    const res = await t.api('GET', `/api/v1/audit${query}`, { token: t.adminToken });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as { entries: any[]; next_cursor: string | null };
  };

  it('records each kind of operator action with actor, source, action, target and masked changes', async () => {
    const v = await t.api('POST', '/api/v1/tokens', { token: t.adminToken, body: { name: 'audit-viewer', role: 'viewer' } });
    assert.equal(v.status, 201);
    viewer = v.body.token;
    const o = await t.api('POST', '/api/v1/tokens', { token: t.adminToken, body: { name: 'audit-operator', role: 'operator' } });
    operator = { id: o.body.id, token: o.body.token };

    // node, authkey, command, token revocation
    const node = await t.api('POST', '/api/v1/nodes', { token: t.adminToken, body: { name: 'audit-node', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' } });
    assert.equal(node.status, 201, JSON.stringify(node.body));
    assert.equal((await t.api('POST', '/api/v1/nodes/audit-node/rotate-secret', { token: t.adminToken })).status, 200);
    const key = await t.api('POST', '/api/v1/hpfeeds/authkeys', { token: t.adminToken, body: { ident: 'audit-ident', secret: 'hpfeeds-secret-value', subchans: ['a'] } });
    assert.equal(key.status, 201);
    assert.equal((await t.api('PATCH', '/api/v1/hpfeeds/authkeys/audit-ident', { token: t.adminToken, body: { owner: 'soc' } })).status, 200);
    assert.equal((await t.api('DELETE', '/api/v1/hpfeeds/authkeys/audit-ident', { token: t.adminToken })).status, 204);
    const cmd = await t.api('POST', '/api/v1/nodes/audit-node/commands', { token: operator.token, body: { command: { GetPotStatus: 'p1' } } });
    assert.equal(cmd.status, 201, JSON.stringify(cmd.body));
    assert.equal((await t.api('POST', `/api/v1/commands/${cmd.body.id}/cancel`, { token: operator.token })).status, 200);
    // refused attempts are recorded too: a failed one, and one the role does not allow
    assert.equal((await t.api('DELETE', '/api/v1/nodes/no-such-node', { token: t.adminToken })).status, 404);
    assert.equal((await t.api('DELETE', '/api/v1/nodes/audit-node', { token: viewer })).status, 403);
    assert.equal((await t.api('DELETE', '/api/v1/nodes/audit-node')).status, 401);
    assert.equal((await t.api('DELETE', `/api/v1/tokens/${o.body.id}`, { token: t.adminToken })).status, 204);

    const all = (await entries('?limit=500')).entries;
    const find = (action: string, target?: string) => all.find((e) => e.action === action && (target === undefined || e.target === target));
    const tokenCreate = find('tokens.create', operator.id);
    assert.ok(tokenCreate, 'token creation recorded with the new token id as target');
    assert.equal(tokenCreate.actor.name, 'bootstrap-admin');
    assert.equal(tokenCreate.actor.role, 'admin');
    assert.equal(tokenCreate.actor.kind, 'token');
    assert.ok(tokenCreate.actor.id);
    assert.equal(tokenCreate.source, '127.0.0.1');
    assert.equal(tokenCreate.method, 'POST');
    assert.equal(tokenCreate.route, '/api/v1/tokens');
    assert.equal(tokenCreate.status, 201);
    assert.deepEqual(tokenCreate.changes, { name: 'audit-operator', role: 'operator' });
    assert.ok(!Number.isNaN(Date.parse(tokenCreate.at)));

    const nodeCreate = find('nodes.create', 'audit-node');
    assert.ok(nodeCreate);
    assert.equal(nodeCreate.changes.secret, MASK, 'the imported node secret is masked');
    assert.ok(find('nodes.rotate-secret', 'audit-node'));
    const keyCreate = find('hpfeeds.authkeys.create', 'audit-ident');
    assert.ok(keyCreate);
    assert.equal(keyCreate.changes.secret, MASK);
    assert.deepEqual(find('hpfeeds.authkeys.update', 'audit-ident').changes, { owner: 'soc' });
    assert.ok(find('hpfeeds.authkeys.delete', 'audit-ident'));
    const send = find('nodes.commands', 'audit-node');
    assert.ok(send);
    assert.equal(send.actor.name, 'audit-operator');
    assert.equal(send.actor.role, 'operator');
    assert.deepEqual(send.changes, { command: { GetPotStatus: 'p1' } });
    assert.equal(find('commands.cancel', cmd.body.id).actor.id, operator.id);
    assert.equal(find('nodes.delete', 'no-such-node').status, 404);
    const denied = all.filter((e) => e.action === 'nodes.delete' && e.target === 'audit-node');
    assert.equal(denied.length, 1, 'the 403 is recorded once; the 401 (no identity) is not');
    assert.equal(denied[0].status, 403);
    assert.equal(denied[0].actor.name, 'audit-viewer');
    assert.equal(denied[0].actor.role, 'viewer');
    assert.equal(find('tokens.delete', o.body.id).status, 204);

    // Nothing secret anywhere in the log: not the node secret, the hpfeeds secret, nor a token.
    const raw = JSON.stringify(all);
    for (const secret of ['JBSWY3DPEHPK3PXP', 'hpfeeds-secret-value', operator.token, viewer, node.body.secret].filter(Boolean)) {
      assert.ok(!raw.includes(secret), `audit log leaks ${secret.slice(0, 6)}…`);
    }
    // Reads are not recorded.
    assert.ok(!all.some((e) => e.method === 'GET'));
  });

  it('filters by actor, action (exact and prefix), target, time, and pages by keyset', async () => {
    const byOperator = (await entries('?actor=audit-operator')).entries;
    assert.deepEqual(byOperator.map((e) => e.action).sort(), ['commands.cancel', 'nodes.commands']);
    assert.equal((await entries(`?actor=${operator.id}`)).entries.length, 2);
    const authkeyActions = (await entries('?action=hpfeeds.authkeys.*')).entries.map((e) => e.action);
    assert.deepEqual(authkeyActions, ['hpfeeds.authkeys.delete', 'hpfeeds.authkeys.update', 'hpfeeds.authkeys.create']);
    assert.equal((await entries('?action=tokens.create')).entries.length, 2);
    assert.ok((await entries('?target=audit-node')).entries.every((e) => e.target === 'audit-node'));
    assert.equal((await entries(`?since=${Date.now() + 60_000}`)).entries.length, 0);
    assert.equal((await entries(`?until=2000-01-01T00:00:00Z`)).entries.length, 0);

    const everything = (await entries('?limit=500')).entries;
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { entries: any[]; next_cursor: string | null } = await entries(`?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      assert.ok(page.entries.length <= 3);
      seen.push(...page.entries.map((e) => e.id));
      cursor = page.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, everything.map((e) => e.id));
    assert.deepEqual([...seen].sort((a, b) => b - a), seen, 'newest first');
    assert.equal((await t.api('GET', '/api/v1/audit?cursor=abc', { token: t.adminToken })).status, 400);
  });

  it('a viewer (and an operator) cannot read the audit log', async () => {
    const res = await t.api('GET', '/api/v1/audit', { token: viewer });
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'forbidden');
    assert.equal((await t.api('GET', '/api/v1/audit')).status, 401);
  });

  it('retention deletes entries older than AUDIT_RETENTION_DAYS and keeps the rest', async () => {
    const store = t.core.audit.store;
    const now = Date.now();
    const old = await store.append({ at: now - 366 * 86_400_000, actorId: 'x', actorName: 'old-actor', actorRole: 'admin', actorKind: 'token', source: '10.0.0.1', action: 'tokens.create', method: 'POST', route: '/api/v1/tokens', target: 't', status: 201, changes: null });
    const recent = await store.append({ at: now - 364 * 86_400_000, actorId: 'x', actorName: 'recent-actor', actorRole: 'admin', actorKind: 'token', source: '10.0.0.1', action: 'tokens.create', method: 'POST', route: '/api/v1/tokens', target: 't', status: 201, changes: null });
    const before = (await entries('?limit=500')).entries.length;
    const deleted = await t.core.audit.retention.sweep(now);
    assert.equal(deleted, 1);
    const left = (await entries('?limit=500')).entries;
    assert.equal(left.length, before - 1);
    assert.ok(!left.some((e) => e.id === old));
    assert.ok(left.some((e) => e.id === recent));
  });
});
