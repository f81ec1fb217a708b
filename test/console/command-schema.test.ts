// The console's command composer builds its forms from the core's OpenAPI document: every command
// the API accepts gets a form, and what a filled-in form produces is a body the API accepts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildCommand, commandSpecs, gitUrlProblem, parseMap } from '../../web/src/pages/node-detail/command-schema.js';
import { startTestCore, type TestCore } from '../helpers/core.js';

describe('console command composer schema', () => {
  let t: TestCore;
  before(async () => {
    t = await startTestCore({ args: ['--enrollment', 'open', '--git-url-allow', 'https://git.example/pots/'] });
    assert.equal((await t.api('POST', '/api/v1/nodes', { token: t.adminToken, body: { name: 'edge-1' } })).status, 201);
  });
  after(async () => {
    await t?.close();
  });

  it('finds all 11 commands, with the fields and shapes of the real schema', async () => {
    const doc = (await t.api('GET', '/docs/json')).body;
    const specs = commandSpecs(doc);
    assert.deepEqual(specs.map((s) => s.name).sort(), [
      'DeployPot', 'GetInstalledPots', 'GetPotInfo', 'GetPotLogs', 'GetPotMetrics', 'GetPotStatus', 'InstallPot', 'Restart', 'RestartPot', 'StopPot', 'UpdateConfig',
    ]);
    const install = specs.find((s) => s.name === 'InstallPot')!;
    assert.equal(install.shape, 'object');
    assert.deepEqual(install.fields.map((f) => [f.name, f.kind, f.required]), [
      ['pot_id', 'string', true], ['honeypot_type', 'string', true], ['git_url', 'string', false], ['git_branch', 'string', false], ['config', 'map', false], ['auto_start', 'boolean', true],
    ]);
    assert.equal(specs.find((s) => s.name === 'DeployPot')!.shape, 'pot');
    assert.equal(specs.find((s) => s.name === 'Restart')!.shape, 'unit');
  });

  it('every form, filled in, is a body the API queues (201)', async () => {
    const specs = commandSpecs((await t.api('GET', '/docs/json')).body);
    const values = { pot_id: 'p1', honeypot_type: 'cowrie', git_url: 'https://git.example/pots/cowrie.git', git_branch: 'main', config: 'PORT=2222\nbanner = hi', auto_start: true };
    for (const spec of specs) {
      const command = buildCommand(spec, values);
      const res = await t.api('POST', '/api/v1/nodes/edge-1/commands', { token: t.adminToken, body: { command } });
      assert.equal(res.status, 201, `${spec.name}: ${JSON.stringify(res.body)}`);
    }
    assert.deepEqual(buildCommand(specs.find((s) => s.name === 'InstallPot')!, values), {
      InstallPot: { pot_id: 'p1', honeypot_type: 'cowrie', git_url: 'https://git.example/pots/cowrie.git', git_branch: 'main', config: { PORT: '2222', banner: 'hi' }, auto_start: true },
    });
  });

  it('refuses incomplete forms before sending', () => {
    const install = { name: 'InstallPot', shape: 'object' as const, fields: [{ name: 'pot_id', kind: 'string' as const, required: true }], description: undefined };
    assert.throws(() => buildCommand(install, { pot_id: '  ' }), /pot_id is required/);
    assert.throws(() => buildCommand({ name: 'DeployPot', shape: 'pot', fields: [] }, {}), /pot id is required/);
    assert.throws(() => parseMap('novalue'), /not key=value/);
  });

  it('flags git_url forms the core refuses whatever its allow-list, and passes ordinary ones', async () => {
    for (const bad of ['https://user:pw@git.example/x.git', 'https://git.example/a/../b.git', 'https://git.example/x.git?ref=1', 'https://git.example/%2e%2e/x', 'https://git.example/x;rm -rf', 'https://git.example/ünï']) {
      assert.ok(gitUrlProblem(bad), bad);
      // ...and the core agrees.
      const res = await t.api('POST', '/api/v1/nodes/edge-1/commands', { token: t.adminToken, body: { command: { InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', git_url: bad, auto_start: false } } } });
      assert.notEqual(res.status, 201, bad);
    }
    for (const good of ['https://git.example/pots/cowrie.git', 'ssh://git@git.example/pots/x.git', '']) assert.equal(gitUrlProblem(good), undefined, good);
  });
});
