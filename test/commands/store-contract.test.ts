// One CommandStore contract, run against both implementations (SQLite and PostgreSQL). The command
// state machine as the store enforces it: every transition is a compare-and-set on `status`, so each
// one succeeds exactly once and only from its own state (queued -> sent -> queued on a failed write;
// queued|sent -> terminal; queued -> withdrawn); a claim (markSent) also holds the one-in-flight,
// in-order rule per node, atomically, however many claims race (from several connections, and on
// PostgreSQL from several cores); the queries the delivery and expiry loops decide on see exactly
// the rows they should.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { INSERT_LOCK, PgCommandStore } from '../../src/commands/pg-store.js';
import { SqliteCommandStore } from '../../src/commands/sqlite-store.js';
import type { CommandStore, NewCommand } from '../../src/commands/store.js';
import type { TerminalStatus } from '../../src/commands/types.js';
import { openPgDatabase, type PgDatabaseHandle } from '../../src/db/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';

let n = 0;
function cmd(nodeName: string, extra: Partial<NewCommand> = {}): NewCommand {
  n++;
  return {
    id: `c${n}`,
    nodeName,
    kind: 'Restart',
    potId: null,
    command: { Restart: {} } as unknown as NewCommand['command'],
    batchId: null,
    requestedBy: 'op',
    createdAt: 1_000 + n,
    expiresAt: 100_000,
    ...extra,
  };
}

for (const backend of await databaseBackends()) {
  describe(`CommandStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedBackend;
    let store: CommandStore;
    const exec = async (sql: string) => {
      if (opened.kind === 'sqlite') opened.database.sqlite.exec(sql);
      else await opened.database.pool.query(sql);
    };
    const newStore = (): CommandStore => (opened.kind === 'sqlite' ? new SqliteCommandStore(opened.database) : new PgCommandStore(opened.database));
    before(async () => {
      opened = await backend.open();
    });
    after(() => opened?.close());
    beforeEach(async () => {
      await exec('DELETE FROM commands; DELETE FROM nodes;');
      store = newStore();
    });

    const status = async (id: string) => (await store.get(id))?.status;

    it('insert gives every field back as stored; get and list read the same row', async () => {
      const input = cmd('n1', { kind: 'InstallPot', potId: 'p1', command: { InstallPot: { pot_id: 'p1', honeypot_type: 'cowrie' } } as unknown as NewCommand['command'], batchId: 'b1', requestedBy: null });
      const [row] = await store.insert([input]);
      const expected = {
        id: input.id,
        seq: row.seq,
        nodeName: 'n1',
        kind: 'InstallPot',
        potId: 'p1',
        command: JSON.stringify(input.command),
        status: 'queued',
        result: null,
        batchId: 'b1',
        requestedBy: null,
        createdAt: input.createdAt,
        sentAt: null,
        finishedAt: null,
        expiresAt: input.expiresAt,
      };
      assert.deepEqual(row, expected);
      assert.deepEqual(await store.get(input.id), expected);
      assert.deepEqual(await store.list({ limit: 10 }), [expected]);
      assert.equal(await store.get('missing'), undefined);
      assert.deepEqual(await store.insert([]), []);
    });

    it('markSent and unmarkSent are compare-and-set on queued / sent', async () => {
      const [a] = await store.insert([cmd('n1')]);
      assert.equal(await status(a.id), 'queued');
      assert.equal(await store.unmarkSent(a.id), false, 'a queued command cannot be un-sent');
      assert.equal(await store.markSent(a.id, 5_000), true);
      assert.equal(await status(a.id), 'sent');
      assert.equal((await store.get(a.id))?.sentAt, 5_000);
      assert.equal(await store.markSent(a.id, 6_000), false, 'sent twice');
      assert.equal((await store.get(a.id))?.sentAt, 5_000);
      assert.equal(await store.unmarkSent(a.id), true);
      assert.equal(await status(a.id), 'queued');
      assert.equal((await store.get(a.id))?.sentAt, null);
      assert.equal(await store.unmarkSent(a.id), false, 'un-sent twice');
      assert.equal(await store.markSent('missing', 1), false);
      assert.equal(await store.unmarkSent('missing'), false);
    });

    it('markSent claims only the head of its node: nothing sent, nothing earlier queued', async () => {
      const [a1, a2, a3] = await store.insert([cmd('a'), cmd('a'), cmd('a')]);
      const [b1] = await store.insert([cmd('b')]);
      assert.equal(await store.markSent(a2.id, 1), false, 'a1 is queued before it');
      assert.equal(await status(a2.id), 'queued');
      assert.equal(await store.markSent(a1.id, 1), true);
      assert.equal(await store.markSent(a2.id, 2), false, 'a1 is in flight');
      assert.equal(await store.markSent(b1.id, 2), true, 'other nodes are independent');
      assert.ok(await store.finish(a1.id, 'sent', 'succeeded', null, 3));
      assert.equal(await store.markSent(a3.id, 4), false, 'a2 is still queued before it');
      assert.equal(await store.markSent(a2.id, 4), true);
      assert.ok(await store.finish(a2.id, 'sent', 'failed', null, 5));
      assert.ok(await store.unmarkSent(b1.id));
      assert.equal(await store.markSent(a3.id, 6), true);
    });

    it('finish checks the status it moves from; a terminal status is final', async () => {
      const [q] = await store.insert([cmd('n1')]);
      const [s] = await store.insert([cmd('n2')]);
      assert.ok(await store.markSent(s.id, 10));
      assert.equal(await store.finish(q.id, 'sent', 'succeeded', null, 20), false, 'queued is not sent');
      assert.equal(await store.finish(s.id, 'queued', 'cancelled', null, 20), false, 'sent is not queued');
      assert.equal(await status(q.id), 'queued');
      assert.equal(await status(s.id), 'sent');
      assert.equal(await store.finish(s.id, 'sent', 'failed', { reason: 'node_error', message: 'boom' }, 30), true);
      const done = (await store.get(s.id))!;
      assert.equal(done.status, 'failed');
      assert.deepEqual(JSON.parse(done.result!), { reason: 'node_error', message: 'boom' });
      assert.equal(done.finishedAt, 30);
      assert.equal(await store.finish(s.id, 'sent', 'succeeded', null, 40), false, 'a terminal state is final');
      assert.equal(await status(s.id), 'failed');
      assert.equal(await store.markSent(s.id, 50), false);
      assert.equal(await store.unmarkSent(s.id), false);
      assert.equal(await store.finish(q.id, 'queued', 'cancelled', null, 60), true);
      assert.equal((await store.get(q.id))?.result, null, 'no result is stored as NULL');
      assert.equal((await store.get(q.id))?.finishedAt, 60);
      assert.equal(await store.finish(q.id, 'queued', 'expired', null, 70), false);
      assert.equal(await store.finish('missing', 'queued', 'expired', null, 70), false);
    });

    it('every terminal status can be reached from its source state', async () => {
      const cases: Array<['queued' | 'sent', TerminalStatus]> = [
        ['sent', 'succeeded'],
        ['sent', 'failed'],
        ['queued', 'expired'],
        ['queued', 'cancelled'],
      ];
      for (const [from, to] of cases) {
        const [row] = await store.insert([cmd('n1')]);
        if (from === 'sent') assert.ok(await store.markSent(row.id, 1));
        assert.equal(await store.finish(row.id, from, to, { message: to }, 2), true, `${from} -> ${to}`);
        assert.equal(await status(row.id), to);
      }
    });

    it('progress() updates the result of a sent command only', async () => {
      const [a] = await store.insert([cmd('n1')]);
      await store.progress(a.id, { potStatus: 'Installing' });
      assert.equal((await store.get(a.id))?.result, null, 'queued: no progress');
      await store.markSent(a.id, 1);
      await store.progress(a.id, { potStatus: 'Installing' });
      assert.deepEqual(JSON.parse((await store.get(a.id))!.result!), { potStatus: 'Installing' });
      assert.equal(await status(a.id), 'sent', 'progress is not a transition');
      await store.finish(a.id, 'sent', 'succeeded', { potStatus: 'Running' }, 2);
      await store.progress(a.id, { potStatus: 'Installing' });
      assert.deepEqual(JSON.parse((await store.get(a.id))!.result!), { potStatus: 'Running' }, 'finished: result is final');
    });

    it('withdraw() removes a queued command only', async () => {
      const [a] = await store.insert([cmd('n1')]);
      const [b] = await store.insert([cmd('n2')]);
      await store.markSent(b.id, 1);
      assert.equal(await store.withdraw(b.id), false);
      assert.equal(await status(b.id), 'sent');
      assert.equal(await store.withdraw(a.id), true);
      assert.equal(await store.get(a.id), undefined);
      assert.equal(await store.withdraw(a.id), false);
    });

    it('delivery queries: in flight, next queued and earlier queued are per node, in seq order', async () => {
      const [a1, a2, a3] = await store.insert([cmd('a'), cmd('a'), cmd('a')]);
      const [b1] = await store.insert([cmd('b')]);
      assert.deepEqual([a1.seq + 1, a1.seq + 2, a1.seq + 3], [a2.seq, a3.seq, b1.seq], 'consecutive seq');
      assert.equal(await store.inFlight('a'), undefined);
      assert.equal((await store.nextQueued('a'))?.id, a1.id);
      assert.equal((await store.nextQueued('b'))?.id, b1.id);
      assert.equal(await store.nextQueued('c'), undefined);
      assert.equal(await store.hasEarlierQueued('a', a1.seq), false, 'strictly earlier');
      assert.equal(await store.hasEarlierQueued('a', a2.seq), true);
      assert.equal(await store.hasEarlierQueued('b', b1.seq), false, 'other nodes do not count');

      await store.markSent(a1.id, 1);
      assert.equal((await store.inFlight('a'))?.id, a1.id);
      assert.equal(await store.inFlight('b'), undefined);
      assert.equal((await store.nextQueued('a'))?.id, a2.id);
      assert.equal(await store.hasEarlierQueued('a', a2.seq), false, 'a sent command is not queued');
      assert.equal(await store.hasEarlierQueued('a', a3.seq), true);
      await store.finish(a1.id, 'sent', 'succeeded', null, 2);
      assert.equal(await store.inFlight('a'), undefined);
      assert.deepEqual((await store.nodesWithQueued()).sort(), ['a', 'b']);
      await store.finish(b1.id, 'queued', 'cancelled', null, 3);
      assert.deepEqual(await store.nodesWithQueued(), ['a']);
    });

    it('pending, due for expiry and counts see only the rows in those states', async () => {
      const [q, s, f] = await store.insert([cmd('n1', { expiresAt: 500 }), cmd('n3', { expiresAt: 500 }), cmd('n1', { expiresAt: 400 })]);
      const [late] = await store.insert([cmd('n2', { expiresAt: 501 })]);
      assert.ok(await store.markSent(s.id, 1));
      await store.finish(f.id, 'queued', 'cancelled', null, 2);
      assert.deepEqual((await store.pending()).map((r) => r.id), [q.id, s.id, late.id]);
      assert.deepEqual((await store.dueForExpiry(499)).map((r) => r.id), []);
      assert.deepEqual((await store.dueForExpiry(500)).map((r) => r.id), [q.id], 'expires_at <= now; sent commands are timed by their answer');
      assert.deepEqual((await store.dueForExpiry(501)).map((r) => r.id), [q.id, late.id]);
      assert.deepEqual(
        await Promise.all((['queued', 'sent', 'cancelled', 'failed'] as const).map((st) => store.count(st))),
        [2, 1, 1, 0],
      );
    });

    it('list filters by node, status, batch, kind and pages by seq, newest first', async () => {
      const rows = await store.insert([
        cmd('a', { batchId: 'x' }),
        cmd('b', { batchId: 'x' }),
        cmd('a', { kind: 'GetInstalledPots', command: { GetInstalledPots: {} } as unknown as NewCommand['command'] }),
        cmd('b'),
      ]);
      await store.finish(rows[3].id, 'queued', 'cancelled', null, 1);
      const ids = async (f: Parameters<CommandStore['list']>[0]) => (await store.list(f)).map((r) => r.id);
      const [r0, r1, r2, r3] = rows.map((r) => r.id);
      assert.deepEqual(await ids({ limit: 10 }), [r3, r2, r1, r0]);
      assert.deepEqual(await ids({ node: 'a', limit: 10 }), [r2, r0]);
      assert.deepEqual(await ids({ status: 'cancelled', limit: 10 }), [r3]);
      assert.deepEqual(await ids({ batchId: 'x', limit: 10 }), [r1, r0]);
      assert.deepEqual(await ids({ kind: 'GetInstalledPots', limit: 10 }), [r2]);
      assert.deepEqual(await ids({ node: 'b', status: 'queued', batchId: 'x', kind: 'Restart', limit: 10 }), [r1]);
      assert.deepEqual(await ids({ limit: 2 }), [r3, r2]);
      assert.deepEqual(await ids({ beforeSeq: rows[2].seq, limit: 10 }), [r1, r0]);
    });

    it('installedPotTypes lists the distinct honeypot_type of InstallPot commands', async () => {
      const install = (t: string) =>
        cmd('a', { kind: 'InstallPot', potId: 'p', command: { InstallPot: { pot_id: 'p', honeypot_type: t } } as unknown as NewCommand['command'] });
      await store.insert([install('cowrie'), install('dionaea'), install('cowrie'), cmd('a')]);
      assert.deepEqual((await store.installedPotTypes(10)).sort(), ['cowrie', 'dionaea']);
      assert.equal((await store.installedPotTypes(1)).length, 1);
    });

    it('knownNodes and selectNodes read the nodes table: enrollment, status, names in byte order', async () => {
      const node = (name: string, enrollment: string, st: string) =>
        exec(`INSERT INTO nodes (name, status, enrollment, created_at, updated_at) VALUES ('${name}', '${st}', '${enrollment}', 1, 1)`);
      await node('b-node', 'approved', 'Running');
      await node('B-node', 'enrolled', 'Offline');
      await node('a-node', 'pending', 'Offline');
      await node('c-node', 'revoked', 'Running');
      await node('_node', 'approved', 'Failed');
      const known = await store.knownNodes(['b-node', 'a-node', 'c-node', 'nope']);
      assert.deepEqual([...known.entries()].sort(), [['a-node', 'pending'], ['b-node', 'approved'], ['c-node', 'revoked']]);
      assert.equal((await store.knownNodes([])).size, 0);
      assert.deepEqual(await store.selectNodes(), ['B-node', '_node', 'b-node']);
      assert.deepEqual(await store.selectNodes(['Running', 'Failed']), ['_node', 'b-node']);
      assert.deepEqual(await store.selectNodes([]), []);
    });

    it('concurrent claims of one node: exactly the head is sent, once', async () => {
      const [h, ...rest] = await store.insert([cmd('race'), cmd('race'), cmd('race'), cmd('race')]);
      const claims = await Promise.all([...rest, h, h, ...rest, h].map((r, i) => store.markSent(r.id, 100 + i)));
      assert.equal(claims.filter(Boolean).length, 1);
      assert.equal((await store.inFlight('race'))?.id, h.id);
      assert.equal(await store.count('sent'), 1);
    });

    it('a reopened store continues the seq after the highest one', async () => {
      const rows = await store.insert([cmd('n1'), cmd('n1')]);
      const [next] = await newStore().insert([cmd('n1')]);
      assert.ok(next.seq > rows[1].seq);
    });

    describe('two cores on one database', { skip: backend.name === 'PostgreSQL' ? false : 'SQLite has one core' }, () => {
      let second: PgDatabaseHandle;
      let other: CommandStore;
      before(async () => {
        if (opened.kind !== 'pg') return;
        second = await openPgDatabase(opened.database.pool.options.connectionString!, { max: 4 });
        other = new PgCommandStore(second);
      });
      after(() => second?.close());

      it('concurrent inserts from both: seq unique, and per node in commit order', async () => {
        const batches = Array.from({ length: 20 }, (_, i) => [cmd(`n${i % 3}`), cmd(`n${(i + 1) % 3}`), cmd('all')]);
        const inserted = (await Promise.all(batches.map((b, i) => (i % 2 ? store : other).insert(b)))).flat();
        const seqs = inserted.map((r) => r.seq);
        assert.equal(new Set(seqs).size, seqs.length, 'no seq twice');
        for (const b of await Promise.all(batches.map((b) => Promise.all(b.map((c) => store.get(c.id)))))) {
          assert.ok(b[0]!.seq < b[1]!.seq && b[1]!.seq < b[2]!.seq, 'batch order');
        }
        // Every node's commands, by seq, were committed in that order: claiming the head each time
        // walks them all (one at a time, never skipping a lower seq).
        const all = (await store.list({ node: 'all', limit: 100 })).reverse();
        for (const [i, r] of all.entries()) {
          assert.equal((await other.nextQueued('all'))?.id, r.id, `head ${i}`);
          assert.ok(await (i % 2 ? store : other).markSent(r.id, i));
          assert.ok(await store.finish(r.id, 'sent', 'succeeded', null, i));
        }
      });

      it('an insert waits for one in flight to commit: its seq is higher, and visible after it', async () => {
        // A transaction of the other core in the middle of its insert: lock held, seq drawn.
        const client = await second.pool.connect();
        try {
          await client.query('BEGIN');
          await client.query('SELECT pg_advisory_xact_lock($1, 0)', [INSERT_LOCK]);
          const early = (await client.query<{ seq: number }>("SELECT nextval('commands_seq') AS seq")).rows[0]!.seq;
          let done = false;
          const late = store.insert([cmd('w')]).then((r) => ((done = true), r[0]!));
          await new Promise((r) => setTimeout(r, 300));
          assert.equal(done, false, 'the insert waits for the lock');
          await client.query('COMMIT');
          assert.ok((await late).seq > early);
        } finally {
          client.release();
        }
      });

      it('claims racing from both cores: one in flight per node', async () => {
        const nodes = ['x', 'y', 'z'];
        const rows = await store.insert(nodes.flatMap((node) => [cmd(node), cmd(node), cmd(node)]));
        for (let round = 0; round < 3; round++) {
          const open = await store.pending();
          const tries = [...open, ...open].map((r, i) => (i % 2 ? store : other).markSent(r.id, round));
          assert.equal((await Promise.all(tries)).filter(Boolean).length, nodes.length, `round ${round}: one claim per node`);
          for (const node of nodes) {
            const sent = (await store.list({ node, status: 'sent', limit: 10 }))!;
            assert.equal(sent.length, 1);
            assert.equal(sent[0].id, rows[nodes.indexOf(node) * 3 + round].id, 'in seq order');
            assert.ok(await other.finish(sent[0].id, 'sent', 'succeeded', null, round));
          }
        }
      });
    });
  });
}
