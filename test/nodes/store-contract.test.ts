// One NodeStore contract, run against both implementations (SQLite and PostgreSQL): what the
// gateway, enrollment, the operator service and retention rely on, asserted on the store itself.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PgNodeStore, SqliteNodeStore, type NodeStore, type NodeStoreLimits } from '../../src/nodes/index.js';
import { databaseBackends, type OpenedBackend } from '../helpers/backends.js';

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const info = { nodeId: '18446744073709551615', nodeType: 'Full', address: '10.0.0.5', port: 8080, remoteAddress: '192.0.2.7', transport: 'tcp' };

for (const backend of await databaseBackends()) {
  describe(`NodeStore contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedBackend;
    const capped: string[] = [];
    const truncated: string[] = [];
    const limits: NodeStoreLimits = {
      logMessageMaxBytes: 48,
      potMessageMaxBytes: 40,
      maxLogRowsPerNode: 20,
      unknownNamesSample: 3,
      maxPotsPerNode: 3,
      onPotCapped: (n) => capped.push(n),
      onTruncated: (f) => truncated.push(f),
    };
    let store: NodeStore;
    const make = (l: NodeStoreLimits): NodeStore => (opened.kind === 'sqlite' ? new SqliteNodeStore(opened.database, l) : new PgNodeStore(opened.database, l));
    before(async () => {
      opened = await backend.open();
      store = make(limits);
    });
    after(() => opened?.close());

    it('insert once per name; get, list (by name, filtered), update, count, delete', async () => {
      assert.equal(await store.insert({ name: 'b-node', enrollment: 'enrolled', totpSecret: SECRET, now: 10 }), true);
      assert.equal(await store.insert({ name: 'b-node', enrollment: 'pending', now: 11 }), false, 'name taken');
      assert.equal(await store.insert({ name: 'A-node', enrollment: 'pending', address: '10.1.1.1', remoteAddress: '192.0.2.1', pendingSource: '192.0.2.1', now: 12 }), true);
      assert.deepEqual(await store.get('b-node'), {
        name: 'b-node', nodeId: null, nodeType: null, address: null, port: null, status: 'Offline', enrollment: 'enrolled', totpSecret: SECRET,
        lastTotpStep: null, remoteAddress: null, transport: null, connectedAt: null, lastSeenAt: null, disconnectedAt: null, disconnectReason: null,
        pendingSource: null, createdAt: 10, updatedAt: 10,
      });
      assert.equal(await store.get('nobody'), undefined);
      assert.deepEqual((await store.list()).map((n) => n.name), ['A-node', 'b-node'], 'byte order: upper case first');
      assert.deepEqual((await store.list({ enrollment: 'pending' })).map((n) => n.name), ['A-node']);
      assert.deepEqual((await store.list({ status: 'Running' })).map((n) => n.name), []);
      assert.equal(await store.countByEnrollment('pending'), 1);
      assert.equal(await store.update('A-node', { nodeType: 'Full', port: 2222 }, 20), true);
      assert.deepEqual([(await store.get('A-node'))?.port, (await store.get('A-node'))?.updatedAt], [2222, 20]);
      assert.equal(await store.update('nobody', { port: 1 }, 20), false);
      assert.equal(await store.delete('A-node'), true);
      assert.equal(await store.delete('A-node'), false);
      assert.equal(await store.countPendingFrom('192.0.2.1'), 0);
    });

    it('TOTP step claim: one use per step, later steps only, the current secret only, enrolled only; atomic', async () => {
      assert.equal(await store.claimTotpStep('b-node', SECRET, 100, 30), true);
      assert.equal(await store.claimTotpStep('b-node', SECRET, 100, 31), false, 'the same step again');
      assert.equal(await store.claimTotpStep('b-node', SECRET, 99, 31), false, 'an earlier step');
      assert.equal(await store.claimTotpStep('b-node', 'OTHERSECRETOTHERSECRETOTHERSECRE', 101, 31), false, 'a rotated-away secret');
      assert.equal((await store.get('b-node'))?.lastTotpStep, 100);
      // Many claims of one step at once (several cores): exactly one wins.
      const claims = await Promise.all(Array.from({ length: 8 }, () => store.claimTotpStep('b-node', SECRET, 101, 32)));
      assert.equal(claims.filter(Boolean).length, 1);
      await store.update('b-node', { enrollment: 'approved' }, 33);
      assert.equal(await store.claimTotpStep('b-node', SECRET, 102, 34), false, 'not enrolled');
    });

    it('confirmKey: approved -> enrolled with the issued key only', async () => {
      assert.equal(await store.confirmKey('b-node', 'WRONGKEYWRONGKEYWRONGKEYWRONGKEY', 40), false);
      assert.equal(await store.confirmKey('b-node', SECRET, 41), true);
      assert.equal((await store.get('b-node'))?.enrollment, 'enrolled');
      assert.equal(await store.confirmKey('b-node', SECRET, 42), false, 'already enrolled');
    });

    it('session state: registered, status, last_seen batches, offline, all offline at start', async () => {
      await store.insert({ name: 'c-node', enrollment: 'enrolled', now: 1 });
      await store.markRegistered('b-node', info, 50);
      const reg = (await store.get('b-node'))!;
      assert.deepEqual(
        [reg.nodeId, reg.nodeType, reg.address, reg.port, reg.remoteAddress, reg.transport, reg.status, reg.connectedAt, reg.lastSeenAt, reg.disconnectedAt, reg.updatedAt],
        [info.nodeId, 'Full', '10.0.0.5', 8080, '192.0.2.7', 'tcp', 'Connected', 50, 50, null, 50],
      );
      await store.setStatus('b-node', 'Running', 55);
      await store.markRegistered('c-node', info, 50);
      await store.touchAll([['b-node', 60], ['c-node', 61], ['ghost', 62]]);
      assert.equal(await store.tryTouchAll([['c-node', 63]]), true);
      assert.equal(await store.tryTouchAll([]), true);
      await store.touchAll([]);
      assert.deepEqual([(await store.get('b-node'))?.status, (await store.get('b-node'))?.lastSeenAt, (await store.get('c-node'))?.lastSeenAt], ['Running', 60, 63]);
      await store.markOffline('b-node', 'stale', 64, 70);
      const off = (await store.get('b-node'))!;
      assert.deepEqual([off.status, off.disconnectReason, off.disconnectedAt, off.lastSeenAt, off.updatedAt], ['Offline', 'stale', 70, 64, 70]);
      assert.equal(await store.markAllOffline('restart', 80), 1, 'only c-node was not Offline');
      const c = (await store.get('c-node'))!;
      assert.deepEqual([c.status, c.disconnectReason, c.disconnectedAt, c.lastSeenAt], ['Offline', 'restart', 80, 63]);
      assert.equal(await store.markAllOffline('restart', 81), 0);
      await store.markRegistered('b-node', info, 90);
      await store.markRegistered('c-node', info, 90);
      assert.equal(await store.markAllOffline('restart', 91, new Set(['b-node', 'ghost'])), 1, 'b-node is online elsewhere');
      assert.deepEqual([(await store.get('b-node'))?.status, (await store.get('c-node'))?.status], ['Connected', 'Offline']);
      assert.equal(await store.markAllOffline('restart', 92, new Set()), 1, 'an empty set keeps none');
    });

    it('pots: upsert keeps a known type and message, caps new pots and text; cowriePot; missing; cascade', async () => {
      assert.equal(await store.upsertPot('b-node', 'p2', 'cowrie', 'Installing', 'hello', 100), true);
      assert.equal(await store.upsertPot('b-node', 'p2', '', 'Running', null, 101), true);
      assert.deepEqual(await store.pots('b-node'), [{ nodeName: 'b-node', potId: 'p2', potType: 'cowrie', status: 'Running', lastMessage: 'hello', updatedAt: 101 }]);
      assert.equal(await store.upsertPot('b-node', 'P1', 'cowrie', 'Stopped', 'm'.repeat(100), 102), true);
      const cut = (await store.pots('b-node')).find((p) => p.potId === 'P1')?.lastMessage ?? '';
      assert.ok(Buffer.byteLength(cut) <= 40 && cut.startsWith('mmm') && cut.endsWith('(100 bytes)'), cut);
      assert.ok(truncated.includes('pots.last_message'));
      assert.equal(await store.upsertPot('b-node', 'p3', 'glutton', 'Running', null, 103), true);
      assert.equal(await store.upsertPot('b-node', 'p4', 'glutton', 'Running', null, 104), false, 'a fourth pot over the cap of 3');
      assert.deepEqual(capped, ['b-node']);
      assert.equal(await store.upsertPot('b-node', 'p3', 'glutton', 'Stopped', null, 105), true, 'a known pot at the cap is still updated');
      assert.deepEqual((await store.pots('b-node')).map((p) => p.potId), ['P1', 'p2', 'p3'], 'by pot id, byte order');

      assert.equal(await store.cowriePot('b-node'), 'p2', 'the Running cowrie pot');
      await store.upsertPot('b-node', 'p2', '', 'Stopped', null, 106);
      assert.equal(await store.cowriePot('b-node'), 'p2', 'then the most recently updated');
      await store.upsertPot('b-node', 'P1', '', 'Stopped', null, 107);
      assert.equal(await store.cowriePot('b-node'), 'P1');
      assert.equal(await store.cowriePot('c-node'), undefined);

      // p3 reported again since 106; P1 and p2 not: P1 updated at 107 counts as recent.
      assert.deepEqual(await store.markPotsMissing('b-node', new Set(['p3']), 107, 110), ['p2']);
      assert.deepEqual(await store.markPotsMissing('b-node', new Set(['p3']), 200, 111), ['P1'], 'p2 is missing already');
      const p2 = (await store.pots('b-node')).find((p) => p.potId === 'p2')!;
      assert.deepEqual([p2.status, p2.potType, p2.lastMessage, p2.updatedAt], ['missing', 'cowrie', 'hello', 110]);
      assert.equal(await store.cowriePot('b-node'), 'P1', 'only missing ones left: the most recently updated (P1 at 111)');
      assert.deepEqual(await store.markPotsMissing('b-node', new Set(), 0, 112), [], 'nothing older than since');

      await store.insert({ name: 'doomed', enrollment: 'enrolled', now: 1 });
      await store.upsertPot('doomed', 'x', 'cowrie', 'Running', null, 1);
      await store.delete('doomed');
      assert.deepEqual(await store.pots('doomed'), [], 'pots go with their node');
    });

    it('node log: capped messages, newest first with a cursor, trimmed per name, pruned by age and cap', async () => {
      await store.log('loggy', 'registered', 'l'.repeat(100), 1_000);
      assert.ok(truncated.includes('node_log.message'));
      await store.log('loggy', 'event:x', null, 1_001);
      const entries = await store.logEntries('loggy', { limit: 10 });
      assert.deepEqual(entries.map((e) => [e.nodeName, e.kind, e.at]), [['loggy', 'event:x', 1_001], ['loggy', 'registered', 1_000]]);
      assert.equal(entries[0]!.message, null);
      assert.ok(Buffer.byteLength(entries[1]!.message!) <= 48 && entries[1]!.message!.endsWith('(100 bytes)'), entries[1]!.message!);
      assert.ok(entries[0]!.id > entries[1]!.id);
      assert.deepEqual((await store.logEntries('loggy', { limit: 10, before: 1_001 })).map((e) => e.at), [1_000]);
      assert.deepEqual((await store.logEntries('loggy', { limit: 1 })).map((e) => e.at), [1_001]);
      // Cap 20, trimmed every 2 writes: never more than 21 rows of one name.
      for (let i = 0; i < 30; i++) await store.log('chatty', 'event:x', String(i), 2_000 + i);
      const kept = await store.logEntries('chatty', { limit: 100 });
      assert.ok(kept.length >= 20 && kept.length <= 21, `${kept.length} rows kept`);
      assert.equal(kept[0]!.message, '29', 'the newest kept');

      // Rows written by another process (no trim counted here), then retention.
      const fresh = make({ ...limits, maxLogRowsPerNode: 1_000 });
      for (let i = 0; i < 25; i++) await fresh.log('flood', 'event:x', String(i), 3_000 + i);
      const deleted = await store.pruneLog(1_001);
      assert.equal(deleted, 1 + 5, 'one row older than the cutoff, then flood down to 20');
      assert.deepEqual((await store.logEntries('loggy', { limit: 10 })).map((e) => e.at), [1_001]);
      assert.equal((await store.logEntries('flood', { limit: 100 })).length, 20);
    });

    it('pending nodes: counted per source; deleted by source, age and silence, all conditions at once', async () => {
      for (const [name, source, created, updated] of [['p-a', 's1', 100, 100], ['p-b', 's1', 200, 900], ['p-c', 's2', 100, 100]] as const) {
        await store.insert({ name, enrollment: 'pending', pendingSource: source, now: created });
        await store.update(name, { port: 1 }, updated);
      }
      await store.insert({ name: 'not-pending', enrollment: 'approved', pendingSource: 's1', now: 1 });
      assert.equal(await store.countPendingFrom('s1'), 2);
      assert.deepEqual((await store.deletePending({ source: 's1', createdBefore: 150 })).sort(), ['p-a']);
      assert.deepEqual((await store.deletePending({ updatedBefore: 500 })).sort(), ['p-c']);
      assert.deepEqual(await store.deletePending({ source: 's3' }), []);
      assert.deepEqual(await store.deletePending({ source: 's1' }), ['p-b']);
      assert.ok(await store.get('not-pending'), 'only pending rows are deleted');
    });

    it('unknown-name aggregates: merged per address (attempts add up, names sampled newest last), listed, pruned', async () => {
      await store.recordUnknown([
        { addressKey: '198.51.100.1', lastAddress: '198.51.100.1', attempts: 2, firstSeenAt: 500, lastSeenAt: 510, names: ['x', 'y'], lastResult: 'unknown_node' },
        { addressKey: '2001:db8::/64', lastAddress: '2001:db8::1', attempts: 1, firstSeenAt: 520, lastSeenAt: 520, names: ['z'], lastResult: 'bad_name' },
      ]);
      await store.recordUnknown([{ addressKey: '198.51.100.1', lastAddress: '198.51.100.1', attempts: 3, firstSeenAt: 400, lastSeenAt: 600, names: ['w', 'x', 'v'], lastResult: 'too_many_pending' }]);
      await store.recordUnknown([]);
      const rows = await store.listUnknown(10);
      assert.deepEqual(rows, [
        { addressKey: '198.51.100.1', lastAddress: '198.51.100.1', attempts: 5, firstSeenAt: 400, lastSeenAt: 600, lastNames: '["w","x","v"]', lastResult: 'too_many_pending' },
        { addressKey: '2001:db8::/64', lastAddress: '2001:db8::1', attempts: 1, firstSeenAt: 520, lastSeenAt: 520, lastNames: '["z"]', lastResult: 'bad_name' },
      ]);
      assert.equal((await store.listUnknown(1)).length, 1);
      // Flushes of two cores at once: no attempt lost.
      await Promise.all(
        Array.from({ length: 4 }, () => store.recordUnknown([{ addressKey: '203.0.113.9', lastAddress: '203.0.113.9', attempts: 1, firstSeenAt: 700, lastSeenAt: 700, names: ['q'], lastResult: 'unknown_node' }])),
      );
      assert.equal((await store.listUnknown(10)).find((r) => r.addressKey === '203.0.113.9')?.attempts, 4);
      assert.equal(await store.pruneUnknown(521, 10), 1, 'the one not seen since 521');
      assert.equal(await store.pruneUnknown(0, 1), 1, 'then the oldest beyond one row');
      assert.deepEqual((await store.listUnknown(10)).map((r) => r.addressKey), ['203.0.113.9']);
    });
  });
}
