// "No event accepted by the core is lost on a core restart." Accepted = its batch transaction
// committed in SQLite (WAL, synchronous=NORMAL). Checked with the real gateway, real simulated
// nodes over TCP and real SQLite files: graceful close, and kill -9 of a core process.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { openDatabase } from '../../src/db/index.js';
import { createNodeGateway } from '../../src/nodes/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { createEventService } from '../../src/events/index.js';
import { trackChild } from '../helpers/children.js';
import { tempDir } from '../helpers/tmp.js';
import { silentLogger, waitFor } from './helpers.js';

describe('no accepted event is lost on a core restart', () => {
  let dir: ReturnType<typeof tempDir>;
  before(() => {
    dir = tempDir('apiary-events-durability-');
  });
  after(() => dir.cleanup());

  it('graceful: close() commits everything received before the listeners closed', async () => {
    const path = `${dir.path}/graceful.db`;
    const db = openDatabase(path);
    const logger = silentLogger();
    const registry = new Registry();
    const gateway = await createNodeGateway({ db, logger, registry, enrollment: 'open' });
    // Nothing commits on its own during the test: only close() can have stored these events.
    const events = createEventService({ db, logger, registry, batch: { maxSize: 100_000, maxDelayMs: 600_000 } });
    events.attach(gateway);
    let received = 0;
    gateway.on('attackEvent', () => received++);
    const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });
    const node = new SimulatedNode({ name: 'sim-graceful', port: tcp.port, host: '127.0.0.1', pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }] });
    node.start();
    await once(node, 'registered');
    const N = 1200;
    for (let i = 0; i < N; i++) node.sendAttack(i % 4 === 0 ? 'status' : 'potevent');
    await waitFor(() => received === N, 20_000, `gateway to receive ${N} events (has ${received})`);
    assert.equal(events.pendingCount, N, 'all still uncommitted');
    await node.stop();
    await gateway.close();
    await events.close();
    db.close();

    const reopened = openDatabase(path);
    const rows = reopened.sqlite.prepare("SELECT event_type, count(*) AS c FROM events WHERE node_name = 'sim-graceful' GROUP BY event_type").all() as { event_type: string; c: number }[];
    const total = rows.reduce((s, r) => s + r.c, 0);
    assert.equal(total, N);
    // the status form is the real node's cowrie text: read back into cowrie events like the rest
    assert.ok(rows.every((r) => r.event_type.startsWith('cowrie.') && r.event_type !== 'cowrie.unparsed'), JSON.stringify(rows));
    reopened.close();
  });

  it('kill -9: every batch the core reported as committed is in the database after restart', async () => {
    const path = `${dir.path}/crash.db`;
    const child: ChildProcess = fork(fileURLToPath(new URL('./core-child.ts', import.meta.url)), [path], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    trackChild(child.pid); // dies with this test process, whatever happens to it
    const accepted: { first: number; last: number; count: number; digest: string }[] = [];
    let port = 0;
    child.on('message', (m: any) => {
      if (m.type === 'listening') port = m.port;
      else if (m.type === 'committed') accepted.push(m);
    });
    const nodes: SimulatedNode[] = [];
    try {
      await waitFor(() => port !== 0, 30_000, 'child core to listen');
      for (let i = 0; i < 4; i++) {
        const node = new SimulatedNode({
          name: `sim-crash-${i}`,
          port,
          host: '127.0.0.1',
          eventsPerSecond: 1500,
          eventForm: i === 3 ? 'status' : 'potevent',
          reconnect: false,
          pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }],
        });
        node.on('connectError', () => undefined);
        node.start();
        nodes.push(node);
      }
      const acceptedCount = () => accepted.reduce((s, b) => s + b.count, 0);
      await waitFor(() => acceptedCount() >= 5000, 30_000, 'accepted events');
      // Kill while events are still streaming in: some are received but not yet committed.
      child.kill('SIGKILL');
      const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
      assert.equal(signal, 'SIGKILL', `child exited with ${code}/${signal}`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await Promise.all(nodes.map((n) => n.stop()));
    }

    const db = openDatabase(path);
    const select = db.sqlite.prepare('SELECT id, node_name, data FROM events WHERE id BETWEEN ? AND ? ORDER BY id');
    let checked = 0;
    for (const b of accepted) {
      const rows = select.all(b.first, b.last) as { id: number; node_name: string; data: string }[];
      assert.equal(rows.length, b.count, `batch ${b.first}..${b.last} complete`);
      const hash = createHash('sha1');
      for (const r of rows) hash.update(`${r.id}|${r.node_name}|${r.data}\n`);
      assert.equal(hash.digest('hex'), b.digest, `batch ${b.first}..${b.last} content`);
      checked += rows.length;
    }
    assert.ok(checked >= 5000);
    const total = (db.sqlite.prepare('SELECT count(*) AS c FROM events').get() as { c: number }).c;
    assert.ok(total >= checked);
    db.close();
  });
});
