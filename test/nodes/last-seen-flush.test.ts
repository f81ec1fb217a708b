// The periodic last_seen flush runs on the event loop: while another connection (in the core, the
// events writer thread) holds the database write lock it is put off, not waited for.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/db/index.js';
import { metricValue, nodeRow, parseAck, registration, startHarness, statusUpdate, tcpClient, waitFor, type Harness } from './harness.js';

describe('last_seen flush under a busy database', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ enrollment: 'open', lastSeenWriteIntervalMs: 50 });
  });
  after(async () => {
    await h.close();
  });

  it('does not block the event loop on the write lock, and writes once the lock is free', async () => {
    const c = await tcpClient(h.tcp.port);
    c.send(registration('busy-node', '401'));
    assert.equal(parseAck(await c.next()).accepted, true);
    c.send(statusUpdate('401', 'Running'));
    await waitFor(() => nodeRow(h, 'busy-node')?.status === 'Running', 5000, 'status stored');
    const blocker = openDatabase(h.db.path);
    try {
      blocker.sqlite.exec('BEGIN IMMEDIATE');
      const before = Number(nodeRow(h, 'busy-node')!.last_seen_at);
      await new Promise((r) => setTimeout(r, 20));
      c.send(statusUpdate('401', 'Running')); // same status: only last_seen moves
      // Ticks every 5 ms; a flush waiting for the lock (busy_timeout 5 s, held by this same thread's
      // other connection) would stop them for seconds.
      let last = performance.now();
      let widest = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        widest = Math.max(widest, now - last);
        last = now;
      }, 5);
      try {
        // the message made the node dirty; each 50 ms flush finds the lock taken
        let deferred = 0;
        const deadline = Date.now() + 5000;
        while (deferred < 3 && Date.now() < deadline) {
          deferred = await metricValue(h.registry, 'apiary_node_last_seen_flushes_deferred_total');
          await new Promise((r) => setTimeout(r, 10));
        }
        assert.ok(deferred >= 3, `flushes deferred (${deferred})`);
      } finally {
        clearInterval(ticker);
      }
      assert.ok(widest < 1000, `event loop kept turning (widest gap ${widest.toFixed(0)} ms)`);
      assert.equal(Number(nodeRow(h, 'busy-node')!.last_seen_at), before, 'nothing written while locked');
      blocker.sqlite.exec('COMMIT');
      await waitFor(() => Number(nodeRow(h, 'busy-node')!.last_seen_at) > before, 5000, 'last_seen written after the lock was released');
    } finally {
      if (blocker.sqlite.inTransaction) blocker.sqlite.exec('ROLLBACK');
      blocker.close();
      c.close();
    }
  });
});
