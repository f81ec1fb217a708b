// The node gateway over WebSocket (GET /ws/node): the same session logic as TCP, one envelope per
// text frame.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metricValue, nodeLog, nodeRow, parseAck, registration, startHarness, statusUpdate, waitFor, wsClient, type Harness } from './harness.js';
import { fixtureLines } from '../helpers/fixture.js';

const nodeToCore = fixtureLines().filter((l) => !l.includes('"RegistrationAck"') && !l.includes('"NodeCommand"'));

describe('node gateway over WebSocket', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ enrollment: 'open', lineMaxBytes: 2048 });
  });
  after(async () => {
    await h.close();
  });

  it('replays the fixture node lines, one per frame', async () => {
    const attacks: unknown[] = [];
    const offline: string[] = [];
    h.gateway.on('attackEvent', (e) => attacks.push(e));
    h.gateway.on('offline', (e) => offline.push(`${e.nodeName}:${e.reason}`));
    const regs = nodeToCore.filter((l) => l.includes('"NodeRegistration"'));
    const c = await wsClient(h.wsUrl);
    c.send(regs[1]); // node_id above 2^63
    const ack = parseAck(await c.next());
    assert.equal(ack.accepted, true);
    assert.equal(ack.node_id_raw, '12891250069694539331');
    assert.equal(h.gateway.isOnline('hb-test-node'), true);
    assert.equal(await metricValue(h.registry, 'apiary_node_sessions', { transport: 'ws' }), 1);
    for (const line of nodeToCore.filter((l) => !l.includes('"NodeRegistration"'))) c.send(line);
    await c.closed;
    await waitFor(() => offline.length === 1);
    assert.deepEqual(offline, ['hb-test-node:drop']);
    assert.equal(attacks.length, 3);
    const row = nodeRow(h, 'hb-test-node')!;
    assert.equal(row.transport, 'ws');
    assert.equal(row.node_id, '12891250069694539331');
    const pot = h.db.sqlite.prepare('SELECT status FROM pots WHERE node_name = ? AND pot_id = ?').get('hb-test-node', 'pot-01') as { status: string };
    assert.equal(pot.status, 'Running');
    assert.ok(nodeLog(h, 'hb-test-node').some((e) => e.kind === 'event:Error'));
    for (let i = 0; i < 100 && (await metricValue(h.registry, 'apiary_node_sessions', { transport: 'ws' })) !== 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await metricValue(h.registry, 'apiary_node_sessions', { transport: 'ws' }), 0);
  });

  it('keeps the session through bad JSON, binary and oversized frames', async () => {
    const id = '18446744073709551615';
    const c = await wsClient(h.wsUrl);
    c.send(registration('ws-bad', id));
    assert.equal(parseAck(await c.next()).accepted, true);
    c.send('{"version":2,"message":');
    c.ws.send(Buffer.from(statusUpdate(id, 'Failed')), { binary: true });
    c.send(`{"version":2,"message":{"NodeEvent":{"type":"Alarm","message":"${'z'.repeat(4000)}"}}}`);
    c.send(statusUpdate(id, 'Deploying'));
    await waitFor(() => nodeRow(h, 'ws-bad')!.status === 'Deploying');
    assert.equal(await metricValue(h.registry, 'apiary_node_invalid_messages_total', { transport: 'ws', reason: 'json' }), 1);
    assert.equal(await metricValue(h.registry, 'apiary_node_invalid_messages_total', { transport: 'ws', reason: 'binary_frame' }), 1);
    assert.equal(await metricValue(h.registry, 'apiary_node_invalid_messages_total', { transport: 'ws', reason: 'oversized' }), 1);
    assert.equal(await metricValue(h.registry, 'apiary_node_oversized_lines_total'), 1);
    assert.equal(c.isClosed(), false);
    assert.equal(h.gateway.sendCommand('ws-bad', { StopPot: 'cowrie-01' }), true);
    assert.equal(await c.next(), `{"version":2,"message":{"NodeCommand":{"node_id":${id},"command":{"StopPot":"cowrie-01"}}}}`);
    c.close();
    await waitFor(() => !h.gateway.isOnline('ws-bad'));
    assert.equal(nodeRow(h, 'ws-bad')!.disconnect_reason, 'disconnect');
  });

  it('rejects a registration with a RegistrationAck and closes the socket', async () => {
    const c = await wsClient(h.wsUrl);
    c.send(registration('bad name!', '3'));
    const ack = parseAck(await c.next());
    assert.equal(ack.accepted, false);
    assert.match(ack.message ?? '', /^Invalid node name: contains characters outside/);
    await c.closed;
  });
});
