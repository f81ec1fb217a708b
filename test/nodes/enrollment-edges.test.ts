// Enrollment decisions edge by edge, on the Enrollment class with a real SQLite node store (found
// by mutation testing of src/nodes/enrollment.ts): the exact answer of every outcome, what each
// writes to node_log, the logs and metrics, the per-address and total pending caps, the node_log
// throttle of repeated rejections, and the expiry of pending rows.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { openDatabase } from '../../src/db/index.js';
import { totpCode } from '../../src/protocol/index.js';
import { Enrollment, type EnrollmentOptions, type RegistrationRequest } from '../../src/nodes/enrollment.js';
import { NodeMetrics } from '../../src/nodes/metrics.js';
import { SqliteNodeStore } from '../../src/nodes/sqlite-store.js';
import { tempDir } from '../helpers/tmp.js';
import type { LogRecord } from './harness.js';

const dir = tempDir('apiary-enrollment-');
const closers: (() => void)[] = [];
after(() => {
  for (const c of closers.reverse()) c();
  dir.cleanup();
});

let n = 0;
function setup(mode: EnrollmentOptions['mode'], opts: Partial<EnrollmentOptions> = {}) {
  const db = openDatabase(join(dir.path, `e${n++}.sqlite`));
  closers.push(() => db.close());
  const registry = new Registry();
  const logs: LogRecord[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as LogRecord) });
  const store = new SqliteNodeStore(db);
  const enrollment = new Enrollment({ store, metrics: new NodeMetrics(registry), logger, mode, ...opts });
  const metric = async (name: string, labels: Record<string, string>) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
    return v?.value ?? 0;
  };
  const nodeLog = (name: string) =>
    (db.sqlite.prepare('SELECT kind, message FROM node_log WHERE node_name = ? ORDER BY id').all(name) as { kind: string; message: string }[]).map((r) => [r.kind, r.message]);
  return { db, store, enrollment, logs, metric, nodeLog };
}

const req = (nodeName: string, extra: Partial<RegistrationRequest> = {}): RegistrationRequest => ({
  nodeName,
  nodeId: '42',
  nodeType: 'honeybee',
  address: '10.0.0.5',
  port: 2222,
  remoteAddress: '192.0.2.7',
  transport: 'tcp',
  ...extra,
});

const refused = (result: string, message: string) => ({ accepted: false, result, message });

/** An enrolled node with a known secret, as after a confirmed key. */
async function enrolled(s: ReturnType<typeof setup>, name: string, secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP') {
  await s.store.insert({ name, enrollment: 'enrolled', totpSecret: secret, now: Date.now() });
  return secret;
}

describe('enrollment decisions', () => {
  it('a bad name is refused with the reason, counted, logged once per address, never written to node_log', async () => {
    const s = setup('open');
    const long = 'x'.repeat(300);
    assert.deepEqual(await s.enrollment.decide(req(long)), refused('bad_name', 'Invalid node name: is 300 characters long'));
    assert.deepEqual(await s.enrollment.decide(req('bad name')), refused('bad_name', 'Invalid node name: contains characters outside A-Z a-z 0-9 . _ -'));
    assert.equal(await s.metric('apiary_node_registrations_total', { result: 'bad_name' }), 2);
    assert.equal(await s.metric('apiary_node_auth_failures_total', { reason: 'bad_name' }), 2);
    const warned = s.logs.filter((l) => l.msg.startsWith('node registration of an unknown name refused'));
    assert.equal(warned.length, 1, 'one line per address per minute');
    assert.equal(warned[0]!.msg, 'node registration of an unknown name refused: Invalid node name: is 300 characters long (one line per address per minute)');
    assert.equal(warned[0]!.level, 40);
    assert.equal(warned[0]!.nodeName, 'x'.repeat(253), 'a long name is cut in the log');
    assert.equal(warned[0]!.result, 'bad_name');
    assert.equal(s.db.sqlite.prepare('SELECT count(*) AS n FROM nodes').pluck().get(), 0);
    assert.equal(s.db.sqlite.prepare('SELECT count(*) AS n FROM node_log').pluck().get(), 0);
  });

  it('provisioned: an unknown name is refused as unknown_node, nothing written per name', async () => {
    const s = setup('provisioned');
    assert.deepEqual(await s.enrollment.decide(req('stranger')), refused('unknown_node', 'Unknown node'));
    assert.equal(await s.store.get('stranger'), undefined);
    assert.deepEqual(s.nodeLog('stranger'), []);
    assert.equal(await s.metric('apiary_node_auth_failures_total', { reason: 'unknown_node' }), 1);
  });

  it('approve: an unknown name becomes a pending row carrying what the node sent', async () => {
    const s = setup('approve');
    assert.deepEqual(await s.enrollment.decide(req('newbie')), refused('pending', 'Node pending approval'));
    const row = (await s.store.get('newbie'))!;
    assert.deepEqual(
      [row.enrollment, row.nodeId, row.nodeType, row.address, row.port, row.remoteAddress, row.transport, row.pendingSource],
      ['pending', '42', 'honeybee', '10.0.0.5', 2222, '192.0.2.7', 'tcp', '192.0.2.7'],
    );
    assert.deepEqual(s.nodeLog('newbie'), [
      ['pending', 'awaiting approval (from 192.0.2.7)'],
      ['rejected', 'Node pending approval (from 192.0.2.7 via tcp)'],
    ]);
    const info = s.logs.find((l) => l.msg === 'unknown node recorded as pending approval');
    assert.ok(info, 'logged');
    assert.equal(info.level, 30);
    assert.deepEqual([info.nodeName, info.remoteAddress], ['newbie', '192.0.2.7']);
    // Pending is expected, not an attack: info, not warn.
    const refusal = s.logs.find((l) => l.msg === 'node registration refused: Node pending approval');
    assert.equal(refusal?.level, 30);

    // A retry of a pending node updates what it sent, and is told the same.
    assert.deepEqual(await s.enrollment.decide(req('newbie', { nodeId: '43', port: 2223, transport: 'ws' })), refused('pending', 'Node pending approval'));
    const again = (await s.store.get('newbie'))!;
    assert.deepEqual([again.nodeId, again.port, again.transport], ['43', 2223, 'ws']);
  });

  it('approve: pending rows are capped per source address first, then in total', async () => {
    const s = setup('approve', { maxPendingPerAddress: 2, maxPendingNodes: 3 });
    for (const name of ['p1', 'p2']) assert.equal((await s.enrollment.decide(req(name))).result, 'pending');
    assert.deepEqual(await s.enrollment.decide(req('p3')), refused('too_many_pending', 'Too many nodes pending approval: from 192.0.2.7'));
    assert.equal(await s.store.get('p3'), undefined);
    // A name without a row: aggregated per address, no node_log of its own.
    assert.deepEqual(s.nodeLog('p3'), []);
    assert.ok(s.logs.some((l) => l.msg === 'node registration of an unknown name refused: Too many nodes pending approval: from 192.0.2.7 (one line per address per minute)'));
    assert.equal((await s.enrollment.decide(req('p4', { remoteAddress: '198.51.100.1' }))).result, 'pending');
    assert.deepEqual(await s.enrollment.decide(req('p5', { remoteAddress: '203.0.113.9' })), refused('too_many_pending', 'Too many nodes pending approval'));
    assert.equal(await s.store.countByEnrollment('pending'), 3);
  });

  it('open: an unknown name is created approved and gets a key at once', async () => {
    const s = setup('open');
    const d = await s.enrollment.decide(req('walk-in'));
    assert.equal(d.accepted, true);
    assert.ok(d.accepted && d.result === 'key_issued' && d.issuedKey);
    const row = (await s.store.get('walk-in'))!;
    assert.equal(row.enrollment, 'approved');
    assert.equal(row.totpSecret, d.issuedKey);
    assert.equal(row.lastTotpStep, null);
    assert.deepEqual(s.nodeLog('walk-in'), [
      ['created', 'first contact from 192.0.2.7 (open enrollment)'],
      ['key_issued', 'TOTP key sent in RegistrationAck (via tcp from 192.0.2.7)'],
    ]);
    assert.equal(await s.metric('apiary_node_registrations_total', { result: 'key_issued' }), 1);
    const info = s.logs.find((l) => l.msg === 'approved node registered; TOTP key issued');
    assert.deepEqual([info?.level, info?.nodeName, info?.remoteAddress], [30, 'walk-in', '192.0.2.7']);
    // Until the key is confirmed delivered, every registration gets a fresh one.
    const d2 = await s.enrollment.decide(req('walk-in'));
    assert.ok(d2.accepted && d2.issuedKey && d2.issuedKey !== d.issuedKey);
    assert.equal((await s.store.get('walk-in'))!.totpSecret, d2.issuedKey);
  });

  it('revoked, enrolled without a secret, and an unknown state are refused', async () => {
    const s = setup('open');
    await s.store.insert({ name: 'gone', enrollment: 'revoked', now: Date.now() });
    assert.deepEqual(await s.enrollment.decide(req('gone')), refused('revoked', 'Node revoked'));
    assert.equal(s.logs.find((l) => l.msg === 'node registration refused: Node revoked')?.level, 40);
    await s.store.insert({ name: 'keyless', enrollment: 'enrolled', now: Date.now() });
    assert.deepEqual(await s.enrollment.decide(req('keyless', { totpCode: '123456' })), refused('internal_error', 'Internal error'));
    assert.deepEqual(
      s.logs.filter((l) => l.level === 50).map((l) => [l.msg, l.nodeName]),
      [['enrolled node has no TOTP secret', 'keyless']],
    );
    s.db.sqlite.prepare("INSERT INTO nodes (name, enrollment, status, created_at, updated_at) VALUES ('odd', 'frozen', 'Offline', 1, 1)").run();
    assert.deepEqual(await s.enrollment.decide(req('odd')), refused('internal_error', 'Internal error'));
    const err = s.logs.filter((l) => l.level === 50).at(-1)!;
    assert.deepEqual([err.msg, err.nodeName, err.enrollment], ['node row has an unknown enrollment state', 'odd', 'frozen']);
    assert.equal((await s.store.get('odd'))!.enrollment, 'frozen', 'left as it was');
  });

  it('enrolled: missing, invalid, valid, reused and older codes', async () => {
    const s = setup('provisioned');
    const secret = await enrolled(s, 'bee');
    const now = Date.now();
    assert.deepEqual(await s.enrollment.decide(req('bee')), refused('missing_code', 'TOTP code required'));
    const wrong = totpCode(secret, now + 10 * 30_000);
    assert.deepEqual(await s.enrollment.decide(req('bee', { totpCode: wrong })), refused('invalid_code', 'TOTP code invalid'));
    assert.deepEqual(await s.enrollment.decide(req('bee', { totpCode: totpCode(secret, now) })), { accepted: true, result: 'accepted' });
    assert.equal(await s.metric('apiary_node_registrations_total', { result: 'accepted' }), 1);
    assert.equal((await s.store.get('bee'))!.lastTotpStep, Math.floor(now / 30_000));
    // The same code again, and the code of the step before (still inside the +-1 window).
    assert.deepEqual(await s.enrollment.decide(req('bee', { totpCode: totpCode(secret, now) })), refused('code_reused', 'TOTP code already used'));
    assert.deepEqual(await s.enrollment.decide(req('bee', { totpCode: totpCode(secret, now - 30_000) })), refused('code_reused', 'TOTP code already used'));
    assert.equal(s.logs.filter((l) => l.msg === 'node registration refused: TOTP code already used').every((l) => l.level === 30), true);
    assert.equal(s.logs.filter((l) => l.msg === 'node registration refused: TOTP code invalid')[0]?.level, 40);
    // The next step is still good.
    assert.equal((await s.enrollment.decide(req('bee', { totpCode: totpCode(secret, now + 30_000) }))).result, 'accepted');
  });

  it('wrong codes are limited per name and address; reused codes are not guesses', async () => {
    const s = setup('provisioned', { rateLimit: { maxFailuresPerName: 2 } });
    const secret = await enrolled(s, 'bee');
    const now = Date.now();
    assert.equal((await s.enrollment.decide(req('bee', { totpCode: totpCode(secret, now) }))).result, 'accepted');
    for (let i = 0; i < 4; i++) assert.equal((await s.enrollment.decide(req('bee', { totpCode: totpCode(secret, now) }))).result, 'code_reused');
    assert.equal((await s.enrollment.decide(req('bee'))).result, 'missing_code');
    assert.equal((await s.enrollment.decide(req('bee', { totpCode: '000000' }))).result, 'invalid_code');
    assert.deepEqual(await s.enrollment.decide(req('bee', { totpCode: totpCode(secret, now + 30_000) })), refused('rate_limited', 'Too many failed attempts'));
    assert.equal(s.logs.find((l) => l.msg === 'node registration refused: Too many failed attempts')?.level, 40);
    // Another address is another pair (and this one is not the node's trusted address either).
    assert.equal((await s.enrollment.decide(req('bee', { remoteAddress: '198.51.100.1', totpCode: totpCode(secret, now + 30_000) }))).result, 'accepted');
  });
});

describe('trusted address and concurrent codes', () => {
  const limits = { rateLimit: { maxUntrustedFailuresPerName: 2, maxFailuresPerName: 5, maxFailuresPerAddress: 20 } };

  it('the address a node last authenticated from is not held to the untrusted budget others used up', async () => {
    const s = setup('provisioned', limits);
    const secret = await enrolled(s, 'bee');
    await s.store.update('bee', { connectedAt: Date.now() - 1000, remoteAddress: '192.0.2.7' }, Date.now());
    for (const a of ['198.51.100.1', '198.51.100.2']) assert.equal((await s.enrollment.decide(req('bee', { remoteAddress: a }))).result, 'missing_code');
    // A third untrusted address is refused unchecked: the name's untrusted budget is spent.
    assert.deepEqual(await s.enrollment.decide(req('bee', { remoteAddress: '203.0.113.5', totpCode: totpCode(secret, Date.now()) })), refused('rate_limited', 'Too many failed attempts'));
    // The node itself, from its trusted address, gets in.
    assert.equal((await s.enrollment.decide(req('bee', { totpCode: totpCode(secret, Date.now()) }))).result, 'accepted');
  });

  it('an address is trusted only once the node has authenticated from it', async () => {
    const s = setup('provisioned', limits);
    const secret = await enrolled(s, 'fresh');
    // Known address but never connected (connectedAt null): not trusted.
    await s.store.update('fresh', { remoteAddress: '192.0.2.7' }, Date.now());
    for (const a of ['198.51.100.1', '198.51.100.2']) assert.equal((await s.enrollment.decide(req('fresh', { remoteAddress: a }))).result, 'missing_code');
    assert.equal((await s.enrollment.decide(req('fresh', { totpCode: totpCode(secret, Date.now()) }))).result, 'rate_limited');
  });

  it('one code on two registrations decided at once is accepted once', async () => {
    const s = setup('provisioned');
    const secret = await enrolled(s, 'twin');
    const code = totpCode(secret, Date.now());
    // Both read the node row before either spends the step: the store's compare-and-set decides.
    const results = (await Promise.all([s.enrollment.decide(req('twin', { totpCode: code })), s.enrollment.decide(req('twin', { totpCode: code }))])).map((d) => d.result);
    assert.deepEqual(results.sort(), ['accepted', 'code_reused']);
  });
});

describe('node_log of rejections and housekeeping', () => {
  it('one node_log row per name and reason per interval; other reasons are logged apart', async () => {
    const s = setup('provisioned', { rejectLogIntervalMs: 200, rateLimit: { maxFailuresPerName: 100 } });
    await enrolled(s, 'bee');
    for (let i = 0; i < 3; i++) await s.enrollment.decide(req('bee'));
    await s.enrollment.decide(req('bee', { totpCode: '000000' }));
    await s.enrollment.decide(req('bee'));
    assert.deepEqual(s.nodeLog('bee'), [
      ['rejected', 'TOTP code required (from 192.0.2.7 via tcp)'],
      ['rejected', 'TOTP code invalid (from 192.0.2.7 via tcp)'],
    ]);
    await new Promise((r) => setTimeout(r, 250));
    await s.enrollment.decide(req('bee', { transport: 'ws' }));
    assert.deepEqual(s.nodeLog('bee').at(-1), ['rejected', 'TOTP code required (from 192.0.2.7 via ws)']);
    assert.equal(s.nodeLog('bee').length, 3);
  });

  it('sweep forgets throttle marks older than the interval, so the next rejection is written again', async () => {
    const s = setup('provisioned', { rejectLogIntervalMs: 60_000 });
    await enrolled(s, 'bee');
    await s.enrollment.decide(req('bee'));
    await s.enrollment.decide(req('bee'));
    assert.equal(s.nodeLog('bee').length, 1);
    // The mark carries the time of the row it throttles.
    const at = s.db.sqlite.prepare('SELECT at FROM node_log WHERE node_name = ?').pluck().get('bee') as number;
    s.enrollment.sweep(at + 59_999);
    await s.enrollment.settled();
    await s.enrollment.decide(req('bee'));
    assert.equal(s.nodeLog('bee').length, 1, 'a mark younger than the interval is kept');
    s.enrollment.sweep(at + 60_000);
    await s.enrollment.settled();
    await s.enrollment.decide(req('bee'));
    assert.equal(s.nodeLog('bee').length, 2);
  });

  it('sweep deletes pending rows not retried within the TTL, counts and logs them', async () => {
    const s = setup('approve', { pendingTtlMs: 10_000 });
    await s.enrollment.decide(req('old-1'));
    await s.enrollment.decide(req('old-2'));
    const t = Date.now();
    s.enrollment.sweep(t + 5_000);
    await s.enrollment.settled();
    assert.equal(await s.store.countByEnrollment('pending'), 2, 'inside the TTL');
    assert.equal(s.logs.filter((l) => l.msg.startsWith('pending nodes expired')).length, 0);
    s.enrollment.sweep(t + 10_001);
    await s.enrollment.settled();
    assert.equal(await s.store.countByEnrollment('pending'), 0);
    assert.equal(await s.metric('apiary_node_pending_removed_total', { reason: 'expired' }), 2);
    const line = s.logs.find((l) => l.msg === 'pending nodes expired (no registration attempt within the pending TTL)');
    assert.deepEqual([line?.level, line?.count, (line?.sample as string[] | undefined)?.sort(), line?.ttlMs], [30, 2, ['old-1', 'old-2'], 10_000]);
    // Many at once: all counted, ten named.
    for (let i = 0; i < 12; i++) await s.store.insert({ name: `many-${i}`, enrollment: 'pending', now: t - 20_000 });
    s.enrollment.sweep(t);
    await s.enrollment.settled();
    const many = s.logs.filter((l) => l.msg.startsWith('pending nodes expired')).at(-1);
    assert.deepEqual([many?.count, (many?.sample as string[]).length], [12, 10]);
    assert.equal(await s.metric('apiary_node_pending_removed_total', { reason: 'expired' }), 14);
  });

  it('a failed write of the unknown-name aggregate is logged, not thrown', async () => {
    const s = setup('provisioned');
    await s.enrollment.decide(req('stranger'));
    s.db.close();
    s.enrollment.flush();
    await s.enrollment.settled();
    const err = s.logs.find((l) => l.msg === 'could not record unknown-name registrations');
    assert.equal(err?.level, 50);
    assert.ok(err?.err, 'with the error');
  });

  it('sweep survives a store that fails, and says so', async () => {
    const s = setup('approve');
    s.db.close();
    s.enrollment.sweep(Date.now());
    await s.enrollment.settled();
    const err = s.logs.find((l) => l.msg === 'could not expire pending nodes');
    assert.equal(err?.level, 50);
    assert.ok(err?.err, 'with the error');
  });
});
