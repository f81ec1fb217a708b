// Every rule kind fires from real activity on the composed core: a simulated node coming online and
// going offline, a pot failing and the InstallPot command failing with it (the simulator's failure
// injection), cowrie login and download events, an attacker crossing N events in M minutes, and a
// SIEM output whose receiver keeps failing, so its backlog grows past the bound. De-duplication and the quiet period are shown on the
// same path. Rules and channels are managed through the API, and the audit log records them with
// their secrets masked.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SimulatedNode } from '../../src/simulator/index.js';
import { startTestCore, type TestCore } from '../helpers/core.js';
import { startHttpReceiver, until, type HttpHit, type HttpReceiver } from './receivers.js';

const HMAC_SECRET = 'core-test-hmac-secret-0123456789';

describe('alerts on the composed core', () => {
  let t: TestCore;
  let hook: HttpReceiver;
  let siem: HttpReceiver;
  let node: SimulatedNode;
  let channelId: string;
  const rules: Record<string, string> = {};

  const admin = (method: string, path: string, body?: unknown) => t.api(method, path, { token: t.adminToken, body });
  const alertsOf = (kind: string): any[] =>
    hook.hits
      .filter((h: HttpHit) => {
        const ts = String(h.headers['x-apiary-timestamp']);
        return h.headers['x-apiary-signature'] === `sha256=${createHmac('sha256', HMAC_SECRET).update(`${ts}.${h.body}`).digest('hex')}`;
      })
      .map((h) => h.json)
      .filter((a) => a.rule.kind === kind);
  const waitAlerts = async (kind: string, n: number, timeoutMs = 10_000) => {
    await until(() => alertsOf(kind).length >= n, `${n} ${kind} alert(s)`, timeoutMs);
    return alertsOf(kind);
  };

  const cowrie = (eventid: string, srcIp: string, extra: Record<string, unknown> = {}) => {
    const timestamp = new Date().toISOString();
    return node.send({
      type: 'PotEvent',
      node_id: node.nodeId,
      pot_id: 'cowrie-01',
      pot_type: 'cowrie',
      event_type: eventid,
      timestamp,
      data: { eventid, src_ip: srcIp, src_port: 40_000, dst_port: 22, session: `s-${srcIp}`, protocol: 'ssh', timestamp, sensor: 'edge-a', ...extra },
    });
  };

  before(async () => {
    // A webhook output whose receiver answers 503 to everything: committed events wait in its backlog.
    siem = await startHttpReceiver();
    siem.failNext(1_000_000);
    const outputs = [{ name: 'siem-1', type: 'webhook', url: `${siem.url}/ingest`, retry: { initialMs: 50, maxMs: 200 } }];
    t = await startTestCore({
      env: { ENROLLMENT_MODE: 'provisioned', ALERT_RETRY_DELAY_MS: '20', ALERT_MAX_ATTEMPTS: '2', OUTPUTS: JSON.stringify(outputs), OUTPUT_BACKLOG_CHECK_MS: '100' },
    });
    hook = await startHttpReceiver();
  });
  after(async () => {
    await node?.stop().catch(() => {});
    await t?.close();
    await hook?.close();
    await siem?.close();
  });

  it('channels and rules are managed through the API; secrets come back masked and the audit log masks them', async () => {
    const ch = await admin('POST', '/api/v1/alerts/channels', { name: 'soc-hook', type: 'webhook', config: { url: `${hook.url}/alerts` }, secrets: { hmacSecret: HMAC_SECRET } });
    assert.equal(ch.status, 201, JSON.stringify(ch.body));
    channelId = ch.body.id;
    assert.deepEqual(ch.body.secrets, { hmacSecret: '****6789' });
    assert.equal(ch.body.stats.delivered, 0);
    const listed = await admin('GET', '/api/v1/alerts/channels');
    assert.ok(!JSON.stringify(listed.body).includes(HMAC_SECRET));

    const make = async (name: string, kind: string, params: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
      const res = await admin('POST', '/api/v1/alerts/rules', { name, kind, params, channels: [channelId], ...extra });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      rules[kind] = res.body.id;
    };
    await make('edge online', 'node_online', { nodes: ['edge-a'] });
    await make('edge offline', 'node_offline', { nodes: ['edge-a'] });
    await make('pot failed', 'pot_failed', {});
    await make('install failed', 'command_failed', { kinds: ['InstallPot'] });
    await make('honeypot login', 'login_success', {}, { dedupSeconds: 600 });
    await make('downloads', 'file_download', {}, { dedupSeconds: 0, quietSeconds: 2 });
    await make('noisy attacker', 'attacker_events', { events: 5, minutes: 1 });
    await make('siem backlog', 'output_backlog', { bound: 3 });

    const bad = await admin('POST', '/api/v1/alerts/rules', { name: 'bad', kind: 'attacker_events', params: { events: 5 }, channels: [channelId] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /minutes/);
    assert.equal((await admin('POST', '/api/v1/alerts/rules', { name: 'bad', kind: 'node_online', channels: ['missing'] })).status, 400);
    assert.equal((await admin('DELETE', `/api/v1/alerts/channels/${channelId}`)).status, 409);

    const audit = (await admin('GET', '/api/v1/audit?action=alerts.*&limit=500')).body.entries as any[];
    const created = audit.find((e) => e.action === 'alerts.channels.create' && e.target === channelId);
    assert.ok(created, 'channel creation audited with the new id as target');
    assert.equal(created.changes.secrets, '[masked]');
    assert.equal(created.changes.config.url, `${hook.url}/alerts`);
    assert.equal(audit.filter((e) => e.action === 'alerts.rules.create' && e.status === 201).length, 8);
    assert.ok(!JSON.stringify(audit).includes(HMAC_SECRET));
  });

  it('node online, pot failed and command failed fire from a simulated node', async () => {
    const created = await admin('POST', '/api/v1/nodes', { name: 'edge-a' });
    assert.equal(created.status, 201);
    node = new SimulatedNode({
      name: 'edge-a',
      host: '127.0.0.1',
      port: t.core.addresses.nodeTcp.port,
      secret: created.body.secret,
      secretDir: join(t.dataDir, 'node-a'),
      heartbeatMs: 60_000,
      reconnect: false,
      pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }],
      failures: { InstallPot: 'Git clone failed: exit status 128' },
    });
    const registered = node.waitFor('registered', { timeoutMs: 10_000 });
    node.start();
    await registered;
    const [online] = await waitAlerts('node_online', 1);
    assert.equal(online.subject, 'edge-a');
    assert.equal(online.title, 'Node edge-a is online');

    const cmd = await t.api('POST', '/api/v1/nodes/edge-a/commands', { token: t.adminToken, body: { command: { InstallPot: { pot_id: 'p-new', honeypot_type: 'cowrie', auto_start: true } } } });
    assert.equal(cmd.status, 201, JSON.stringify(cmd.body));
    const [potFailed] = await waitAlerts('pot_failed', 1);
    assert.equal(potFailed.subject, 'edge-a/p-new');
    assert.match(potFailed.text, /Git clone failed/);
    const [cmdFailed] = await waitAlerts('command_failed', 1);
    assert.equal(cmdFailed.subject, cmd.body.id);
    assert.equal(cmdFailed.details.kind, 'InstallPot');
    assert.equal(cmdFailed.details.reason, 'pot_failed');
    assert.equal(cmdFailed.details.requestedBy, 'bootstrap-admin');
  });

  it('a cowrie login fires once per source and user within the dedup window', async () => {
    assert.ok(cowrie('cowrie.login.success', '198.51.100.10', { username: 'root', password: 'hunter2' }));
    assert.ok(cowrie('cowrie.login.success', '198.51.100.10', { username: 'root', password: 'hunter2' }));
    assert.ok(cowrie('cowrie.login.failed', '198.51.100.11', { username: 'admin', password: 'x' }));
    const [login] = await waitAlerts('login_success', 1);
    assert.equal(login.details.srcIp, '198.51.100.10');
    assert.equal(login.details.username, 'root');
    assert.equal(login.details.password, 'hunter2');
    assert.match(login.title, /Successful login on honeypot edge-a\/cowrie-01/);
    // a second login from another address is another alert; the duplicate above never came
    assert.ok(cowrie('cowrie.login.success', '198.51.100.12', { username: 'root', password: 'toor' }));
    const logins = await waitAlerts('login_success', 2);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(alertsOf('login_success').length, 2);
    assert.deepEqual(logins.map((a) => a.details.srcIp), ['198.51.100.10', '198.51.100.12']);
    const metrics = (await admin('GET', '/metrics')).body as string;
    assert.match(metrics, /apiary_alerts_total\{kind="login_success",outcome="deduplicated"\} 1/);
  });

  it('a download fires; within the quiet period the next is held back and counted in the one after', async () => {
    const sha = (c: string) => c.repeat(64);
    assert.ok(cowrie('cowrie.session.file_download', '198.51.100.20', { url: 'http://203.0.113.5/a.sh', shasum: sha('a'), outfile: 'x' }));
    const [first] = await waitAlerts('file_download', 1);
    assert.equal(first.subject, sha('a'));
    assert.equal(first.details.url, 'http://203.0.113.5/a.sh');
    assert.equal(first.suppressed, 0);
    assert.ok(cowrie('cowrie.session.file_download', '198.51.100.20', { url: 'http://203.0.113.5/b.sh', shasum: sha('b'), outfile: 'y' }));
    await until(async () => /apiary_alerts_total\{kind="file_download",outcome="quiet"\} 1/.test((await admin('GET', '/metrics')).body), 'the held-back download counted');
    assert.equal(alertsOf('file_download').length, 1);
    await new Promise((r) => setTimeout(r, 2100));
    assert.ok(cowrie('cowrie.session.file_download', '198.51.100.20', { url: 'http://203.0.113.5/c.sh', shasum: sha('c'), outfile: 'z' }));
    const downloads = await waitAlerts('file_download', 2);
    assert.equal(downloads[1].subject, sha('c'));
    assert.equal(downloads[1].suppressed, 1);
  });

  it('an attacker crossing N events in M minutes fires once', async () => {
    for (let i = 0; i < 4; i++) assert.ok(cowrie('cowrie.command.input', '203.0.113.77', { input: `uname -a #${i}` }));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(alertsOf('attacker_events').length, 0, 'four events are below the threshold');
    for (let i = 4; i < 8; i++) assert.ok(cowrie('cowrie.command.input', '203.0.113.77', { input: `uname -a #${i}` }));
    const [attacker] = await waitAlerts('attacker_events', 1);
    assert.equal(attacker.subject, '203.0.113.77');
    assert.equal(attacker.details.events, 5);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(alertsOf('attacker_events').length, 1);
  });

  it('an output whose receiver keeps failing fires the backlog rule once its backlog passes the bound', async () => {
    // The events of the tests above were committed and are waiting for siem-1's receiver.
    const [backlog] = await waitAlerts('output_backlog', 1);
    assert.equal(backlog.subject, 'siem-1');
    assert.ok(backlog.details.backlog > 3, JSON.stringify(backlog.details));
    assert.ok(siem.hits.length > 0 && siem.hits.every((h) => h.path === '/ingest'), 'the output kept trying its receiver');
  });

  it('the node going offline fires; a disabled rule and the test endpoint', async () => {
    await node.stop();
    const [offline] = await waitAlerts('node_offline', 1);
    assert.equal(offline.subject, 'edge-a');
    assert.ok(!['shutdown', 'replaced'].includes(offline.details.reason));

    const patched = await admin('PATCH', `/api/v1/alerts/rules/${rules.node_online}`, { enabled: false });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.enabled, false);
    t.core.alerts.nodeOnline({ nodeName: 'edge-a' });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(alertsOf('node_online').length, 1);

    const before = hook.hits.length;
    const test = await admin('POST', `/api/v1/alerts/channels/${channelId}/test`);
    assert.deepEqual(test.body, { delivered: true });
    assert.equal(hook.hits.length, before + 1);
    assert.equal(hook.hits[before]!.json.test, true);
    const channel = await admin('GET', `/api/v1/alerts/channels/${channelId}`);
    assert.equal(channel.body.stats.failed, 0);
    assert.ok(channel.body.stats.delivered >= 9);

    // Rotating the webhook secret: merged, shown masked, audited masked; deleting a rule is audited.
    const rotated = await admin('PATCH', `/api/v1/alerts/channels/${channelId}`, { secrets: { hmacSecret: 'rotated-hmac-secret-abcdefWXYZ' } });
    assert.equal(rotated.status, 200);
    assert.deepEqual(rotated.body.secrets, { hmacSecret: '****WXYZ' });
    assert.equal(rotated.body.config.url, `${hook.url}/alerts`);
    assert.equal((await admin('DELETE', `/api/v1/alerts/rules/${rules.output_backlog}`)).status, 204);
    const audit = (await admin('GET', '/api/v1/audit?action=alerts.*&limit=500')).body.entries as any[];
    const update = audit.find((e) => e.action === 'alerts.channels.update' && e.target === channelId);
    assert.deepEqual(update.changes, { secrets: '[masked]' });
    assert.equal(audit.find((e) => e.action === 'alerts.rules.delete').target, rules.output_backlog);
    assert.ok(audit.some((e) => e.action === 'alerts.channels.test' && e.target === channelId));
    assert.ok(audit.some((e) => e.action === 'alerts.rules.update' && e.target === rules.node_online && e.changes.enabled === false));
    assert.ok(!JSON.stringify(audit).includes('rotated-hmac-secret'));
  });
});
