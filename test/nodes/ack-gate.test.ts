// The gateway holds a node's RegistrationAck until the work its ack gate names is done (several
// cores: reading what the others left for the node), at most the gate's bound; lines the node
// sends early wait behind the ack, other nodes do not wait, a failed gate holds nothing more, and
// without a gate nothing is held.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metricValue, parseAck, potStatus, registration, startHarness, tcpClient, waitFor, type Harness } from './harness.js';

describe('RegistrationAck held behind the ack gate', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ enrollment: 'open' });
  });
  after(async () => {
    await h.close();
  });

  it('without a gate the ack is written at once (one core pays nothing)', async () => {
    const c = await tcpClient(h.tcp.port);
    c.send(registration('plain-1', '11'));
    assert.equal(parseAck(await c.next(2000)).accepted, true);
    assert.equal(await metricValue(h.registry, 'apiary_node_ack_holds_total'), 0);
    c.close();
  });

  it("holds one node's ack until its gate resolves, with its early lines behind it, while another node goes through", async () => {
    let release!: () => void;
    const gated = new Set(['held-1']);
    const calls: string[] = [];
    h.gateway.setAckGate((name) => {
      calls.push(name);
      return gated.has(name) ? new Promise<void>((resolve) => (release = resolve)) : undefined;
    }, 5000);
    const statuses: string[] = [];
    h.gateway.on('attackEvent', ({ nodeName }) => statuses.push(nodeName));

    const held = await tcpClient(h.tcp.port);
    held.send(registration('held-1', '21'));
    await waitFor(() => calls.includes('held-1'), 5000, 'the gate asked about held-1');
    // A line sent before the ack (a node should not, but one may) waits with the ack.
    held.send(potStatus('21', 'vm', '', 'CMD: id', ''));
    await assert.rejects(held.next(300), /no message/);
    assert.equal(h.gateway.isOnline('held-1'), false);

    const other = await tcpClient(h.tcp.port);
    other.send(registration('free-1', '22'));
    assert.equal(parseAck(await other.next(2000)).accepted, true, 'another node is not held');

    release();
    assert.equal(parseAck(await held.next(2000)).accepted, true);
    assert.equal(h.gateway.isOnline('held-1'), true);
    await waitFor(() => statuses.includes('held-1'), 2000, 'the early line handled after the ack');
    assert.equal(await metricValue(h.registry, 'apiary_node_ack_holds_total', { result: 'ready' }), 1);
    held.close();
    other.close();
  });

  it('past the bound the ack goes out anyway, counted and logged', async () => {
    h.gateway.setAckGate(() => new Promise<void>(() => undefined), 250);
    const c = await tcpClient(h.tcp.port);
    const started = Date.now();
    c.send(registration('slow-1', '31'));
    assert.equal(parseAck(await c.next(3000)).accepted, true);
    assert.ok(Date.now() - started >= 240, 'the ack waited for the bound');
    assert.equal(await metricValue(h.registry, 'apiary_node_ack_holds_total', { result: 'timeout' }), 1);
    assert.ok(h.logs.some((l) => l.nodeName === 'slow-1' && /RegistrationAck sent before/.test(l.msg)));
    c.close();
  });

  it('a gate that fails lets the ack out at once, counted and logged', async () => {
    h.gateway.setAckGate(() => Promise.reject(new Error('redis gone')), 5000);
    const c = await tcpClient(h.tcp.port);
    const started = Date.now();
    c.send(registration('failed-1', '35'));
    assert.equal(parseAck(await c.next(3000)).accepted, true);
    assert.ok(Date.now() - started < 2000, 'not held to the bound');
    assert.equal(await metricValue(h.registry, 'apiary_node_ack_holds_total', { result: 'failed' }), 1);
    assert.ok(h.logs.some((l) => l.nodeName === 'failed-1' && /the read failed/.test(l.msg)));
    c.close();
  });

  it('a node that goes away while its ack is held is not made online', async () => {
    let release!: () => void;
    h.gateway.setAckGate(() => new Promise<void>((resolve) => (release = resolve)), 5000);
    const c = await tcpClient(h.tcp.port);
    c.send(registration('gone-1', '41'));
    await waitFor(() => release !== undefined, 5000, 'the gate was asked');
    c.close();
    await c.closed;
    await new Promise((r) => setTimeout(r, 50));
    release();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.gateway.isOnline('gone-1'), false);
    h.gateway.setAckGate(undefined);
  });
});
