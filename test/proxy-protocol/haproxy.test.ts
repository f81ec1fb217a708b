// A real HAProxy (the one deploy/haproxy.cfg is written for) in TCP mode in front of the node
// listener (send-proxy-v2, with a health check that carries a LOCAL header) and the hpfeeds
// broker (send-proxy, v1). Clients connect to HAProxy from 127.0.0.3 and 127.0.0.4; HAProxy
// connects to the core from 127.0.0.1, the trusted proxy; the core must record the clients'
// addresses. Skipped (saying so) where no haproxy binary is installed.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ProxyProtocol } from '../../src/proxy-protocol/index.js';
import { freePort } from '../../src/redis/private-server.js';
import { trackChild, untrackChild } from '../helpers/children.js';
import { tempDir } from '../helpers/tmp.js';
import { ALICE_BOB_KEYS, CaptureLogger, RawPeer, startBroker, waitFor as waitForHp, type TestBroker } from '../hpfeeds/harness.js';
import { metricValue, nodeRow, parseAck, registration, startHarness, tcpClient, waitFor, type Harness } from '../nodes/harness.js';
import { connectFrom } from './client.js';

function haproxyAvailable(): boolean {
  try {
    execFileSync('haproxy', ['-v'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}
const skip = haproxyAvailable() ? false : 'haproxy is not installed';

describe('behind a real HAProxy', { skip }, () => {
  const dir = tempDir('apiary-haproxy-');
  let nodes: Harness;
  let hp: TestBroker;
  const registry = new Registry();
  const logger = new CaptureLogger();
  let haproxy: ChildProcess | undefined;
  let haproxyOutput = '';
  let nodesPort = 0;
  let hpfeedsPort = 0;

  before(async () => {
    const pp = new ProxyProtocol({ trusted: ['127.0.0.1'], registry, logger });
    nodes = await startHarness({ enrollment: 'open', resolvePeer: pp.resolver('nodes') });
    hp = await startBroker({ keys: ALICE_BOB_KEYS, resolvePeer: pp.resolver('hpfeeds') });
    nodesPort = await freePort();
    hpfeedsPort = await freePort();
    const cfg = join(dir.path, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        '    maxconn 200',
        'defaults',
        '    mode tcp',
        '    timeout connect 2s',
        '    timeout client 30s',
        '    timeout server 30s',
        'frontend nodes',
        `    bind 127.0.0.1:${nodesPort}`,
        '    default_backend cores_nodes',
        'backend cores_nodes',
        `    server core1 127.0.0.1:${nodes.tcp.port} send-proxy-v2 source 127.0.0.1`,
        // Health checks on the node port itself carry a header too: a LOCAL one. HAProxy resets a
        // plain connect check at once, often before the core can even read the peer's address, so
        // this check waits (for a reply that never comes) and the header is read each time.
        'backend node_port_checks',
        '    timeout check 300ms',
        '    option tcp-check',
        '    tcp-check expect string never-sent',
        `    server core1 127.0.0.1:${nodes.tcp.port} send-proxy-v2 check inter 300ms source 127.0.0.1`,
        'frontend hpfeeds',
        `    bind 127.0.0.1:${hpfeedsPort}`,
        '    default_backend cores_hpfeeds',
        'backend cores_hpfeeds',
        `    server core1 127.0.0.1:${hp.port} send-proxy source 127.0.0.1`,
        '',
      ].join('\n'),
    );
    execFileSync('haproxy', ['-c', '-q', '-f', cfg], { stdio: 'pipe' });
    const child = (haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] }));
    trackChild(child.pid);
    child.stdout!.on('data', (d) => (haproxyOutput += d));
    child.stderr!.on('data', (d) => (haproxyOutput += d));
    // Ready once it accepts on its node frontend.
    await waitFor(
      async () => {
        try {
          (await tcpClient(nodesPort)).close();
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      'haproxy listening',
    );
  });

  after(async () => {
    if (haproxy && haproxy.exitCode === null) {
      const exited = new Promise((resolve) => haproxy!.once('exit', resolve));
      haproxy.kill('SIGTERM');
      await exited;
    }
    untrackChild(haproxy?.pid);
    await nodes?.close();
    await hp?.broker.close();
    dir.cleanup();
  });

  it("a node connecting through HAProxy is recorded with its own address, not HAProxy's", async () => {
    const s = await connectFrom(nodesPort, '127.0.0.3');
    let buf = '';
    s.on('data', (d: Buffer) => (buf += d.toString()));
    s.write(registration('via-haproxy', '501') + '\n');
    await waitFor(() => buf.includes('\n'), 5000, `the ack (haproxy said: ${haproxyOutput})`);
    assert.equal(parseAck(buf.slice(0, buf.indexOf('\n'))).accepted, true);
    await waitFor(() => nodeRow(nodes, 'via-haproxy')?.remote_address === '127.0.0.3', 5000, 'remote_address 127.0.0.3');
    assert.ok((await metricValue(registry, 'apiary_proxy_protocol_headers_total', { listener: 'nodes', version: '2', command: 'proxy' })) >= 1);
    s.destroy();
  });

  it("HAProxy's health checks (PROXY v2 LOCAL) are accepted", async () => {
    await waitFor(async () => (await metricValue(registry, 'apiary_proxy_protocol_headers_total', { listener: 'nodes', version: '2', command: 'local' })) >= 2, 5000, 'two LOCAL checks');
    assert.equal(await metricValue(registry, 'apiary_proxy_protocol_rejected_total'), 0);
  });

  it('an hpfeeds client through HAProxy (v1 header) is logged and limited under its own address', async () => {
    const socket = await connectFrom(hpfeedsPort, '127.0.0.4');
    const peer = await RawPeer.over(socket);
    peer.write(peer.auth('alice', 'alice-secret'));
    await waitForHp(
      () => hp.logger.entries.some((e) => e.msg === 'hpfeeds client authenticated' && String(e.obj.peer).startsWith('127.0.0.4:')),
      5000,
      'alice authenticated from 127.0.0.4',
    );
    assert.ok((await metricValue(registry, 'apiary_proxy_protocol_headers_total', { listener: 'hpfeeds', version: '1', command: 'proxy' })) >= 1);
    peer.destroy();
  });
});
