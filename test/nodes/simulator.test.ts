// Realistic flows with the SimulatedNode (a real-node-like client): approval and key delivery
// through a restart, provisioned nodes answering commands, attack traffic, TLS, code reuse on
// reconnect.
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { SimulatedNode, type SimulatedNodeOptions } from '../../src/simulator/index.js';
import { makeTestCertificate } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';
import { bounded, metricValue, nodeRow, startHarness, waitFor, type Harness } from './harness.js';

const nodes: SimulatedNode[] = [];
const harnesses: Harness[] = [];
const cleanups: (() => void)[] = [];

async function harness(opts: Parameters<typeof startHarness>[0]): Promise<Harness> {
  const h = await startHarness(opts);
  harnesses.push(h);
  return h;
}

function simulate(h: Harness, opts: Omit<SimulatedNodeOptions, 'port' | 'host' | 'url'> & { via?: 'tcp' | 'ws' }): SimulatedNode {
  const { via = 'tcp', ...rest } = opts;
  const node = new SimulatedNode({
    reconnectDelayMs: 100,
    ...rest,
    transport: via,
    ...(via === 'ws' ? { url: h.wsUrl } : { host: '127.0.0.1', port: h.tcp.port }),
  });
  node.on('connectError', () => {});
  node.on('protocolError', () => {});
  nodes.push(node);
  return node;
}

afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});
after(async () => {
  for (const h of harnesses) await h.close();
  for (const c of cleanups) c();
});

describe('with the simulated node', () => {
  it('approve mode: pending, approved, key stored in the secret file, survives a Restart with a new node_id', async () => {
    const h = await harness({ enrollment: 'approve' });
    const dir = tempDir('apiary-sim-');
    cleanups.push(dir.cleanup);
    // The restarted process registers in the same 30 s window; a clock one step ahead gives it a
    // fresh, unused code, as a real node would have after its restart in a later window.
    let offset = 0;
    const node = simulate(h, { name: 'sim-approve', secretDir: dir.path, clock: () => Date.now() + offset, heartbeatMs: 200 });
    const ownSecretRejected = node.waitFor('rejected');
    node.start();
    const [rej] = await ownSecretRejected;
    assert.equal(rej.message, 'Node pending approval');
    const selfMade = node.secret;

    const registered = node.waitFor('registered');
    await h.gateway.service.approveNode('sim-approve');
    const [ack] = await registered;
    assert.match(ack.totp_key ?? '', /^[A-Z2-7]{32}$/);
    assert.notEqual(node.secret, selfMade);
    assert.equal(node.secret, ack.totp_key);
    await waitFor(() => nodeRow(h, 'sim-approve')!.enrollment === 'enrolled', 5000, 'key delivered');
    await waitFor(() => nodeRow(h, 'sim-approve')!.status === 'Running');

    const oldId = node.nodeId;
    offset = 30_000;
    const back = node.waitFor('registered', { filter: (a) => a.node_id !== oldId });
    assert.equal(h.gateway.sendCommand('sim-approve', { Restart: {} }), true);
    const [ack2] = await back;
    assert.equal(ack2.accepted, true);
    assert.equal(ack2.totp_key, undefined);
    assert.notEqual(node.nodeId, oldId);
    await waitFor(() => nodeRow(h, 'sim-approve')!.node_id === node.nodeId);
    assert.equal(h.gateway.isOnline('sim-approve'), true);
  });

  it('provisioned node over WebSocket answers InstallPot / StopPot and streams attack events in both forms', async () => {
    const h = await harness({ enrollment: 'provisioned' });
    const { secret } = await h.gateway.service.createNode('sim-prov');
    const statuses: string[] = [];
    const attacks: string[] = [];
    h.gateway.on('potStatus', (u) => statuses.push(`${u.potId}:${u.status}`));
    h.gateway.on('attackEvent', (e) => attacks.push(e.message.type));
    const node = simulate(h, { name: 'sim-prov', secret, via: 'ws' });
    const registered = node.waitFor('registered');
    node.start();
    await registered;
    assert.equal(
      h.gateway.sendCommand('sim-prov', { InstallPot: { pot_id: 'cowrie-01', honeypot_type: 'cowrie', git_url: null, git_branch: null, config: { ssh_port: '2222' }, auto_start: true } }),
      true,
    );
    await waitFor(() => statuses.length === 3);
    assert.deepEqual(statuses, ['cowrie-01:Installing', 'cowrie-01:Stopped', 'cowrie-01:Running']);
    node.sendAttack('potevent', 'cowrie-01');
    node.sendAttack('status', 'cowrie-01');
    await waitFor(() => attacks.length === 2);
    assert.deepEqual(attacks, ['PotEvent', 'PotStatusUpdate']);
    h.gateway.sendCommand('sim-prov', { StopPot: 'cowrie-01' });
    await waitFor(() => statuses.length === 4);
    const pots = await h.app.inject({ method: 'GET', url: '/api/v1/nodes/sim-prov/pots' });
    assert.deepEqual(pots.json().pots.map((p: { potId: string; status: string; potType: string }) => [p.potId, p.potType, p.status]), [['cowrie-01', 'cowrie', 'Stopped']]);
    const nodeEvents: string[] = [];
    h.gateway.on('nodeEvent', (e) => nodeEvents.push(`${e.event}:${e.message}`));
    h.gateway.sendCommand('sim-prov', { DeployPot: 'nope' });
    await waitFor(() => nodeEvents.length === 1);
    assert.deepEqual(nodeEvents, ['Error:Failed to deploy pot: pot nope not found']);
  });

  it('a reconnect inside the same 30 s window is refused as a reused code, without tripping the limiter', async () => {
    const h = await harness({ enrollment: 'provisioned', rateLimit: { maxFailuresPerName: 2 } });
    const { secret } = await h.gateway.service.createNode('sim-reuse');
    // A frozen clock keeps the node on one code however long the test takes (the core's +-1 step
    // window still accepts it), as a real node does within one 30 s window.
    const t0 = Date.now();
    const node = simulate(h, { name: 'sim-reuse', secret, clock: () => t0 });
    const registered = node.waitFor('registered');
    node.start();
    await registered;
    let rejections = 0;
    const messages = new Set<string>();
    node.on('rejected', (a) => {
      rejections++;
      messages.add(a.message ?? '');
    });
    h.gateway.disconnect('sim-reuse', 'test');
    await waitFor(() => rejections >= 4, 10_000, 'several reconnect attempts');
    assert.deepEqual([...messages], ['TOTP code already used']);
    assert.equal(await metricValue(h.registry, 'apiary_node_auth_failures_total', { reason: 'rate_limited' }), 0);
  });

  it('registers over TLS 1.3 and keeps the node online with heartbeats', async () => {
    const cert = makeTestCertificate();
    cleanups.push(cert.cleanup);
    // Stale after 1 s of silence; the node beats every 100 ms (wide margins for a busy machine).
    const h = await harness({ enrollment: 'open', tls: { certPath: cert.certPath, keyPath: cert.keyPath }, heartbeatIntervalMs: 500, staleFactor: 2, sweepIntervalMs: 20 });
    const node = simulate(h, { name: 'sim-tls', tls: true, ca: cert.ca, servername: 'localhost', heartbeatMs: 100 });
    const registered = node.waitFor('registered');
    node.start();
    await registered;
    // Online for well past the stale period (1 s), measured by its own heartbeats, not a sleep.
    const registeredAt = Date.now();
    const linesAtRegistration = node.stats.linesSent;
    await waitFor(() => node.stats.linesSent - linesAtRegistration >= 15 && Date.now() - registeredAt > 1500, 15_000, 'heartbeats past the stale period');
    assert.equal(h.gateway.isOnline('sim-tls'), true);
    assert.equal(nodeRow(h, 'sim-tls')!.enrollment, 'enrolled');
    const offline = new Promise<string>((resolve) => h.gateway.once('offline', (e) => resolve(e.reason)));
    // NodeDrop, then wait for the core to act on it (stop() right after the write may tear a TLS
    // socket down before the line is flushed, which the core rightly sees as a disconnect).
    assert.ok(node.sendNodeDrop());
    assert.equal(await bounded(offline, 10_000, 'the node to go offline'), 'drop');
    await node.stop();
  });
});
