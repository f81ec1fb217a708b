// Node socket input is handled in bounded slices: a large read does not hold the event loop in one
// go, each connection's lines stay in order, connections take turns, and back-pressure still stops
// the reading. Real sockets, a real SQLite file.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LineSplitter } from '../../src/nodes/line-splitter.js';
import { ReadScheduler, type QueuedReader } from '../../src/nodes/read-scheduler.js';
import { parseAck, potStatus, registration, startHarness, tcpClient, waitFor, type Harness } from './harness.js';

function splitter() {
  const lines: string[] = [];
  const s = new LineSplitter(100, { line: (t) => lines.push(t), oversized: () => lines.push('<oversized>') });
  return { s, lines };
}

describe('LineSplitter queue', () => {
  it('frames queued segments a bounded number of lines at a time, in order, across segment ends', () => {
    const { s, lines } = splitter();
    s.enqueue(Buffer.from('a1\na2\na'));
    s.enqueue(Buffer.from('3\n\nx'.padEnd(200, 'x') + '\na4\na5'));
    s.enqueue(Buffer.from('\n'));
    assert.equal(s.queuedBytes, 7 + 201 + 5 + 1);
    assert.equal(s.drain(2), false);
    assert.deepEqual(lines, ['a1', 'a2']);
    // the blank line and the oversized one count as lines handled
    assert.equal(s.drain(2), false);
    assert.deepEqual(lines, ['a1', 'a2', 'a3']);
    assert.equal(s.drain(1), false);
    assert.deepEqual(lines, ['a1', 'a2', 'a3', '<oversized>']);
    assert.equal(s.drain(10), true);
    assert.deepEqual(lines, ['a1', 'a2', 'a3', '<oversized>', 'a4', 'a5']);
    assert.equal(s.queuedBytes, 0);
  });

  it('stops when a line handler clears the queue (the connection went away)', () => {
    const lines: string[] = [];
    const s: LineSplitter = new LineSplitter(100, {
      line: (t) => {
        lines.push(t);
        if (t === 'stop') s.clearQueue();
      },
      oversized: () => undefined,
    });
    s.enqueue(Buffer.from('one\nstop\nlost\n'));
    s.enqueue(Buffer.from('lost too\n'));
    assert.equal(s.drain(100), true);
    assert.deepEqual(lines, ['one', 'stop']);
    assert.equal(s.queuedBytes, 0);
  });
});

describe('ReadScheduler', () => {
  it('gives connections slices in turn and yields to the event loop between turns', async () => {
    const scheduler = new ReadScheduler({ budgetMs: 0, sliceLines: 1 });
    const order: string[] = [];
    let turn = 0;
    const reader = (name: string, n: number): QueuedReader => ({
      drain: (max) => {
        assert.equal(max, 1);
        order.push(`${name}${n--}@${turn}`);
        return n === 0;
      },
    });
    // Counts event-loop turns: each tick of this chain is one turn of the loop.
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    scheduler.schedule(reader('a', 3));
    scheduler.schedule(reader('b', 2));
    await waitFor(() => scheduler.waiting === 0 && order.length === 5, 5000, 'both readers drained');
    ticking = false;
    assert.deepEqual(
      order.map((o) => o.split('@')[0]),
      ['a3', 'b2', 'a2', 'b1', 'a1'],
    );
    const turns = order.map((o) => Number(o.split('@')[1]));
    assert.equal(new Set(turns).size, 5, `one slice per turn with a zero budget (${order.join(' ')})`);
  });
});

describe('node socket input in slices', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ enrollment: 'open', authTimeoutMs: 2000 });
  });
  after(async () => {
    await h.close();
  });

  async function registered(name: string, nodeId: string) {
    const c = await tcpClient(h.tcp.port);
    c.send(registration(name, nodeId));
    assert.equal(parseAck(await c.next()).accepted, true);
    return c;
  }

  function attackLines(nodeId: string, n: number): string {
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(potStatus(nodeId, 'cowrie-01', '', `event ${i} ${'x'.repeat(200)}`));
    return lines.join('\n') + '\n';
  }

  it('handles one large read across several event-loop turns, in order, losing nothing', async () => {
    const N = 4000; // ~1 MB: far beyond one turn's budget
    const c = await registered('slice-node', '301');
    const seen: { i: number; turn: number }[] = [];
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    const onAttack = (e: { nodeName: string; message: { message?: string } }) => {
      if (e.nodeName !== 'slice-node') return;
      seen.push({ i: Number(/^event (\d+)/.exec(e.message.message ?? '')![1]), turn });
      // Costly handling (0.1 ms an event): one 64 KiB read (~270 lines) is ~27 ms of work.
      const until = performance.now() + 0.1;
      while (performance.now() < until);
    };
    h.gateway.on('attackEvent', onAttack as never);
    try {
      setImmediate(tick);
      c.write(attackLines('301', N));
      await waitFor(() => seen.length === N, 20_000, `all ${N} events handled (${seen.length})`);
      ticking = false;
      assert.deepEqual(
        seen.map((s) => s.i),
        Array.from({ length: N }, (_, i) => i),
        'in the order sent',
      );
      const perTurn = new Map<number, number>();
      for (const s of seen) perTurn.set(s.turn, (perTurn.get(s.turn) ?? 0) + 1);
      const most = Math.max(...perTurn.values());
      // The 2 ms budget is checked after each 32-line slice: one slice of this costly input fills it.
      assert.ok(most <= 64, `at most a slice or two per event-loop turn, not whole reads (${most} in one turn)`);
    } finally {
      ticking = false;
      h.gateway.off('attackEvent', onAttack as never);
      c.close();
    }
  });

  it('reads nothing more while input is paused, then everything in order once resumed', async () => {
    const N = 2000;
    const c = await registered('paused-node', '302');
    const seen: number[] = [];
    const onAttack = (e: { nodeName: string; message: { message?: string } }) => {
      if (e.nodeName === 'paused-node') seen.push(Number(/^event (\d+)/.exec(e.message.message ?? '')![1]));
    };
    h.gateway.on('attackEvent', onAttack as never);
    try {
      h.gateway.setInputPaused(true);
      c.write(attackLines('302', N));
      // Give the socket ample time to deliver; while paused nothing of it may be handled.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(seen.length, 0, 'nothing handled while paused');
      h.gateway.setInputPaused(false);
      await waitFor(() => seen.length === N, 20_000, `all ${N} events after resume (${seen.length})`);
      assert.deepEqual(seen, Array.from({ length: N }, (_, i) => i));
    } finally {
      h.gateway.setInputPaused(false);
      h.gateway.off('attackEvent', onAttack as never);
      c.close();
    }
  });

  it('handles what a node sent just before closing its connection', async () => {
    const N = 1500;
    const c = await registered('closing-node', '303');
    const seen: number[] = [];
    const onAttack = (e: { nodeName: string; message: { message?: string } }) => {
      if (e.nodeName === 'closing-node') seen.push(Number(/^event (\d+)/.exec(e.message.message ?? '')![1]));
    };
    const offline: string[] = [];
    const onOffline = (e: { nodeName: string }) => {
      if (e.nodeName === 'closing-node') offline.push(`offline after ${seen.length}`);
    };
    h.gateway.on('attackEvent', onAttack as never);
    h.gateway.on('offline', onOffline);
    try {
      c.write(attackLines('303', N));
      c.end();
      await waitFor(() => offline.length === 1, 20_000, 'the node went offline');
      assert.deepEqual(offline, [`offline after ${N}`], 'every line handled before the session ended');
      assert.deepEqual(seen, Array.from({ length: N }, (_, i) => i));
    } finally {
      h.gateway.off('attackEvent', onAttack as never);
      h.gateway.off('offline', onOffline);
      c.close();
    }
  });
});
