// REST surface of the command queue: validation, the git URL allow-list, cancel, TTL expiry,
// listing and paging, metrics, OpenAPI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHttpServer } from '../../src/api/index.js';
import { commandRoutes } from '../../src/commands/index.js';
import { sleep, startStack, waitFor, type Stack } from './harness.js';

describe('command API', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({
      ttlMs: 1500,
      answerTimeoutMs: { GetPotStatus: 60_000 },
      gitUrlAllowList: ['https://git.example.org/honeypots/', /git@github\.com:acme\/[a-z-]+\.git/],
    });
  });
  after(async () => {
    await stack.close();
  });

  const inject = (method: 'GET' | 'POST', url: string, payload?: unknown) =>
    stack.app.inject({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}) });

  it('checks a command without queueing it: the answer send would give, no rejection counted', async () => {
    const rejectedBefore = (await stack.registry.getSingleMetricAsString('apiary_commands_rejected_total')).split('\n').filter((l) => !l.startsWith('#')).join('\n');
    const listed = () => stack.db.sqlite.prepare('SELECT COUNT(*) AS n FROM commands').get() as { n: number };
    const before = listed().n;
    const install = (extra: Record<string, unknown>) => ({ InstallPot: { pot_id: 'p1', honeypot_type: 'cowrie', auto_start: true, config: {}, ...extra } });
    const ok = await inject('POST', '/api/v1/commands/check', { command: install({ git_url: 'https://git.example.org/honeypots/cowrie.git' }) });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { ok: true, kind: 'InstallPot', pot_id: 'p1' });
    assert.deepEqual((await inject('POST', '/api/v1/commands/check', { command: { Restart: {} } })).json(), { ok: true, kind: 'Restart', pot_id: null });
    const cases: Array<[unknown, string, RegExp]> = [
      [install({ git_url: 'https://evil.example.com/x.git' }), 'git_url_not_allowed', /does not match the configured git URL allow-list/],
      [install({ git_url: 'https://git.example.org/honeypots/../evil.git' }), 'git_url_not_allowed', /allow-list/],
      [install({ git_url: 'https://git.example.org/honeypots/c.git', git_branch: '$(id)' }), 'bad_git_branch', /git_branch/],
      [{ Explode: {} }, 'bad_request', /Explode|unrecognized/i],
    ];
    for (const [command, error, message] of cases) {
      const res = await inject('POST', '/api/v1/commands/check', { command });
      assert.equal(res.statusCode, 400, `${JSON.stringify(command)} -> ${res.body}`);
      assert.equal(res.json().error, error, res.body);
      assert.match(res.json().message, message);
    }
    assert.equal(listed().n, before, 'nothing was queued');
    const rejectedAfter = (await stack.registry.getSingleMetricAsString('apiary_commands_rejected_total')).split('\n').filter((l) => !l.startsWith('#')).join('\n');
    assert.equal(rejectedAfter, rejectedBefore, 'a check is not a rejected command');
  });

  it('rejects malformed commands with 400 and a message naming the problem', async () => {
    await stack.provision('v1');
    const cases: Array<[unknown, RegExp]> = [
      [{ Restart: 'now' }, /Restart/],
      ['Restart', /exactly one variant|object/],
      [{ DeployPot: 'a', StopPot: 'b' }, /exactly one variant/],
      [{ InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', auto_start: true, config: { port: 2222 } } }, /config values must be strings/],
      [{ Explode: {} }, /Explode|unrecognized/i],
      [{ DeployPot: '' }, /pot_id must not be empty/],
    ];
    for (const [command, msg] of cases) {
      const res = await inject('POST', '/api/v1/nodes/v1/commands', { command });
      assert.equal(res.statusCode, 400, `${JSON.stringify(command)} -> ${res.body}`);
      assert.equal(res.json().error, 'bad_request');
      assert.match(res.json().message, msg, res.body);
    }
    assert.equal((await stack.service.list({ node: 'v1' })).commands.length, 0, 'nothing was stored');
  });

  it('answers 404 for unknown nodes and 409 for revoked ones', async () => {
    const res = await inject('POST', '/api/v1/nodes/nobody/commands', { command: { Restart: {} } });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error, 'unknown_node');
    await stack.provision('gone');
    await stack.gateway.service.revokeNode('gone');
    const r2 = await inject('POST', '/api/v1/nodes/gone/commands', { command: { Restart: {} } });
    assert.equal(r2.statusCode, 409, r2.body);
    assert.equal(r2.json().error, 'node_revoked');
    const r3 = await inject('POST', '/api/v1/commands/broadcast', { nodes: ['v1', 'ghost-1', 'ghost-2'], command: { Restart: {} } });
    assert.equal(r3.statusCode, 404);
    assert.match(r3.json().message, /ghost-1, ghost-2/);
    const r4 = await inject('POST', '/api/v1/commands/broadcast', { nodes: { status: 'Exploded' }, command: { Restart: {} } });
    assert.equal(r4.statusCode, 422);
    assert.equal(r4.json().error, 'no_nodes_selected');
  });

  it('refuses git_url outside the allow-list, accepts prefixes and whole-URL regexes', async () => {
    await stack.provision('g1');
    const install = (git_url: string | null, git_branch?: string) => ({
      InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', git_url, ...(git_branch !== undefined ? { git_branch } : {}), auto_start: true },
    });
    const refused = [
      'https://evil.example.com/x.git',
      'https://git.example.org/other/x.git',
      '--upload-pack=touch /tmp/pwned',
      'git@github.com:acme/x.git;rm',
      'git@github.com:acme/pots.git.evil',
    ];
    for (const url of refused) {
      const res = await inject('POST', '/api/v1/nodes/g1/commands', { command: install(url) });
      assert.equal(res.statusCode, 400, `${url} -> ${res.body}`);
      assert.equal(res.json().error, 'git_url_not_allowed');
      assert.match(res.json().message, /allow-list/);
    }
    const bad = await inject('POST', '/api/v1/nodes/g1/commands', { command: install('https://git.example.org/honeypots/c.git', '--force') });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error, 'bad_git_branch');
    for (const url of ['https://git.example.org/honeypots/cowrie.git', 'git@github.com:acme/pots.git', null]) {
      const res = await inject('POST', '/api/v1/nodes/g1/commands', { command: install(url, 'main') });
      assert.equal(res.statusCode, 201, `${url} -> ${res.body}`);
      assert.equal(res.json().command.InstallPot.git_url, url);
    }
  });

  it('refuses every git_url when no allow-list is configured', async () => {
    const bare = await startStack();
    try {
      await bare.provision('g2');
      const res = await bare.app.inject({
        method: 'POST',
        url: '/api/v1/nodes/g2/commands',
        payload: { command: { InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', git_url: 'https://github.com/x/y', auto_start: true } } },
      });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error, 'git_url_not_allowed');
      assert.match(res.json().message, /no git URL allow-list is configured/);
    } finally {
      await bare.close();
    }
  });

  it('cancels a queued command (never delivered); a sent one is 409 with a message', async () => {
    const secret = await stack.provision('c1');
    const a = await stack.post('c1', { GetPotStatus: 'x' });
    const b = await stack.post('c1', { DeployPot: 'x' });
    const res = await inject('POST', `/api/v1/commands/${b.id}/cancel`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().status, 'cancelled');
    assert.equal(res.json().result.reason, 'cancelled');
    const again = await inject('POST', `/api/v1/commands/${b.id}/cancel`);
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error, 'already_finished');

    // A third command queued after the cancelled one: commands to a node go out in order, so once
    // it has been sent, the cancelled one would have been sent before it.
    const c = await stack.post('c1', { GetPotInfo: 'x' });
    const node = stack.nodeFor('c1', secret, { pots: [{ id: 'x', type: 'cowrie', status: 'Running' }] });
    // Keep the first command in flight: the node takes it and says nothing until told to.
    const nodeAnswer = node as unknown as { answer: (cmd: unknown) => void };
    const realAnswer = nodeAnswer.answer.bind(node);
    const held: unknown[] = [];
    nodeAnswer.answer = (cmd) => held.push(cmd);
    const got: string[] = [];
    node.on('command', (cmd) => got.push(Object.keys(cmd)[0]));
    node.start();
    await waitFor(async () => (await stack.service.get(a.id))?.status === 'sent', 'first command sent');
    const sent = await inject('POST', `/api/v1/commands/${a.id}/cancel`);
    assert.equal(sent.statusCode, 409);
    assert.equal(sent.json().error, 'already_sent');
    assert.match(sent.json().message, /already sent to c1 .* cannot recall/);
    // Now the node answers: the first command finishes and the queue moves on past the cancelled one.
    nodeAnswer.answer = realAnswer;
    for (const cmd of held.splice(0)) realAnswer(cmd);
    assert.equal((await stack.settled(a.id, 10_000)).status, 'succeeded');
    assert.equal((await stack.settled(c.id, 10_000)).status, 'succeeded');
    assert.deepEqual(got, ['GetPotStatus', 'GetPotInfo'], 'the cancelled command never went out');
    const missing = await inject('POST', '/api/v1/commands/does-not-exist/cancel');
    assert.equal(missing.statusCode, 404);
  });

  it('expires a command its offline node does not collect within the TTL', async () => {
    const secret = await stack.provision('t1');
    const c = await stack.post('t1', { UpdateConfig: {} });
    const done = await stack.settled(c.id, 10_000);
    assert.equal(done.status, 'expired');
    assert.equal(done.result?.reason, 'ttl');
    assert.equal(done.sentAt, null);
    // The node coming back later gets nothing.
    const node = stack.nodeFor('t1', secret);
    const got: unknown[] = [];
    node.on('command', (cmd) => got.push(cmd));
    const reg = node.waitFor('registered');
    node.start();
    await reg;
    await sleep(300);
    assert.deepEqual(got, []);
  });

  it('lists with filters and pages newest first', async () => {
    await stack.provision('l1');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await stack.post('l1', { GetPotLogs: `p${i}` })).id);
    const page1 = await inject('GET', '/api/v1/commands?node=l1&limit=3');
    assert.equal(page1.statusCode, 200);
    const p1 = page1.json() as { commands: Array<{ id: string; seq: number }>; next: number | null };
    assert.deepEqual(p1.commands.map((c) => c.id), ids.slice(4).reverse());
    const p2 = (await inject('GET', `/api/v1/commands?node=l1&limit=3&before=${p1.next}`)).json() as typeof p1;
    assert.deepEqual(p2.commands.map((c) => c.id), ids.slice(1, 4).reverse());
    const p3 = (await inject('GET', `/api/v1/commands?node=l1&limit=3&before=${p2.next}`)).json() as typeof p1;
    assert.deepEqual(p3.commands.map((c) => c.id), ids.slice(0, 1));
    assert.equal(p3.next, null);
    const byKind = (await inject('GET', '/api/v1/commands?node=l1&kind=GetPotLogs&limit=100')).json() as typeof p1;
    assert.equal(byKind.commands.length, 7);
    const cancelled = (await inject('GET', '/api/v1/commands?status=cancelled')).json() as typeof p1;
    assert.equal(cancelled.commands.length, 1);
    const bad = await inject('GET', '/api/v1/commands?status=exploded');
    assert.equal(bad.statusCode, 400);
    const one = await inject('GET', '/api/v1/commands/nope');
    assert.equal(one.statusCode, 404);
    assert.equal(one.json().error, 'not_found');
  });

  it('enforces roles (viewer reads, operator sends/cancels) and records who asked', async () => {
    const app = await createHttpServer({
      logger: false,
      authenticate: (token) =>
        token === 'op-token' ? { id: 't1', name: 'alice', role: 'operator' } : token === 'view-token' ? { id: 't2', name: 'bob', role: 'viewer' } : undefined,
    });
    await app.register(commandRoutes, { prefix: '/api/v1', service: stack.service });
    try {
      await stack.provision('roles');
      const as = (token: string) => ({ authorization: `Bearer ${token}` });
      const payload = { command: { GetPotMetrics: 'p' } };
      const denied = await app.inject({ method: 'POST', url: '/api/v1/nodes/roles/commands', headers: as('view-token'), payload });
      assert.equal(denied.statusCode, 403);
      const anon = await app.inject({ method: 'GET', url: '/api/v1/commands' });
      assert.equal(anon.statusCode, 401);
      const ok = await app.inject({ method: 'POST', url: '/api/v1/nodes/roles/commands', headers: as('op-token'), payload });
      assert.equal(ok.statusCode, 201, ok.body);
      assert.equal(ok.json().requestedBy, 'alice');
      const read = await app.inject({ method: 'GET', url: `/api/v1/commands/${ok.json().id}`, headers: as('view-token') });
      assert.equal(read.statusCode, 200);
      const cancelDenied = await app.inject({ method: 'POST', url: `/api/v1/commands/${ok.json().id}/cancel`, headers: as('view-token') });
      assert.equal(cancelDenied.statusCode, 403);
      const cancelled = await app.inject({ method: 'POST', url: `/api/v1/commands/${ok.json().id}/cancel`, headers: as('op-token') });
      assert.equal(cancelled.statusCode, 200);
      assert.match(cancelled.json().result.message, /cancelled by alice/);
    } finally {
      await app.close();
    }
  });

  it('expires overdue commands even while Redis is down', async () => {
    await stack.provision('t-down');
    const c = await stack.post('t-down', { GetPotInfo: 'p' });
    await stack.redis.kill();
    try {
      await waitFor(() => !stack.service.redisReady(), 'redis gone', 5000);
      const done = await stack.settled(c.id, 10_000);
      assert.equal(done.status, 'expired');
    } finally {
      await stack.redis.restart();
    }
    await waitFor(() => stack.service.redisReady(), 'redis back', 10_000);
  });

  it('exposes metrics and OpenAPI tags', async () => {
    // Self-contained: this test makes the outcomes it counts (the file's other tests may or may not have run).
    const value = async (series: string) => {
      const line = (await stack.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
      return line ? Number(line.slice(series.length + 1)) : 0;
    };
    const deployCancelled = 'apiary_commands_total{kind="DeployPot",status="cancelled"}';
    const configExpired = 'apiary_commands_total{kind="UpdateConfig",status="expired"}';
    const gitRejected = 'apiary_commands_rejected_total{reason="git_url"}';
    const before = { cancelled: await value(deployCancelled), expired: await value(configExpired), rejected: await value(gitRejected) };
    await stack.provision('m1');
    const d = await stack.post('m1', { DeployPot: 'x' });
    assert.equal((await inject('POST', `/api/v1/commands/${d.id}/cancel`)).statusCode, 200);
    const u = await stack.post('m1', { UpdateConfig: {} });
    assert.equal((await stack.settled(u.id, 10_000)).status, 'expired');
    const refused = await inject('POST', '/api/v1/nodes/m1/commands', { command: { InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', auto_start: true, git_url: 'https://evil.example/x' } } });
    assert.equal(refused.statusCode, 400);
    assert.equal(await value(deployCancelled), before.cancelled + 1);
    assert.equal(await value(configExpired), before.expired + 1);
    assert.equal(await value(gitRejected), before.rejected + 1);
    const text = await stack.registry.metrics();
    assert.match(text, /apiary_command_delivery_seconds_count \d+/);
    assert.match(text, /apiary_commands_queued \d+/);
    const spec = stack.app.swagger() as { paths: Record<string, Record<string, { tags?: string[] }>> };
    for (const path of ['/api/v1/nodes/{name}/commands', '/api/v1/commands/broadcast', '/api/v1/commands', '/api/v1/commands/{id}', '/api/v1/commands/{id}/cancel']) {
      const ops = Object.values(spec.paths[path] ?? {});
      assert.ok(ops.length > 0, `${path} documented`);
      for (const op of ops) assert.deepEqual(op.tags, ['commands']);
    }
  });
});
