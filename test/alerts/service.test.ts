// The alerts service alone, on a real SQLite store and a real webhook receiver, with its clock
// injected: the dedup window expiring, the quiet period counting what it held back, the attacker
// window sliding, the bound on tracked sources, and a full channel queue dropping (counted).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { AlertService, SqliteAlertStore, type AttackFact } from '../../src/alerts/index.js';
import { AttackerWindows } from '../../src/alerts/rules.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { tempDir } from '../helpers/tmp.js';
import { startHttpReceiver, until, type HttpReceiver } from './receivers.js';

const SECRET = 'service-test-hmac-secret-0123';

const fact = (srcIp: string, receivedAt: number, extra: Partial<AttackFact> = {}): AttackFact => ({
  eventId: 1,
  node: 'n1',
  potId: 'cowrie-01',
  potType: 'cowrie',
  type: 'cowrie.command.input',
  receivedAt,
  srcIp,
  login: null,
  username: null,
  password: null,
  url: null,
  md5: null,
  sha256: null,
  ...extra,
});

describe('alerts service: windows and bounds', () => {
  const dir = tempDir('apiary-alerts-svc-');
  let db: DatabaseHandle;
  let http: HttpReceiver;
  let clock = 1_800_000_000_000;
  let alerts: AlertService;
  let channel: string;

  before(async () => {
    db = openDatabase(join(dir.path, 'a.sqlite'));
    http = await startHttpReceiver();
    alerts = new AlertService({ store: new SqliteAlertStore(db), logger: pino({ level: 'silent' }) as any, registry: new Registry(), now: () => clock, maxAttempts: 1, retryDelayMs: 10 });
    await alerts.load();
    channel = (await alerts.createChannel({ name: 'hook', type: 'webhook', config: { url: `${http.url}/a` }, secrets: { hmacSecret: SECRET } })).id;
  });
  after(async () => {
    alerts?.close();
    await http?.close();
    db?.close();
    dir.cleanup();
  });

  const hitsOf = (kind: string) => http.hits.map((h) => h.json).filter((a) => a.rule.kind === kind);

  it('the same alert is sent again once its dedup window has passed', async () => {
    await alerts.createRule({ name: 'dedup', kind: 'node_offline', channels: [channel], dedupSeconds: 60 });
    alerts.nodeOffline({ nodeName: 'n1', reason: 'stale' });
    clock += 59_000;
    alerts.nodeOffline({ nodeName: 'n1', reason: 'stale' });
    alerts.nodeOffline({ nodeName: 'n2', reason: 'stale' }); // another subject is another alert
    alerts.nodeOffline({ nodeName: 'n1', reason: 'shutdown' }); // the core stopping is no alert
    clock += 1_000;
    alerts.nodeOffline({ nodeName: 'n1', reason: 'stale' });
    await until(() => hitsOf('node_offline').length === 3, 'three alerts');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(hitsOf('node_offline').map((a) => a.subject), ['n1', 'n2', 'n1']);
  });

  it('the quiet period holds back every alert of the rule and counts them in the next', async () => {
    await alerts.createRule({ name: 'quiet', kind: 'pot_failed', channels: [channel], dedupSeconds: 0, quietSeconds: 30 });
    const failed = (potId: string) => alerts.potStatus({ nodeName: 'n1', potId, potType: 'cowrie', status: 'Failed', message: 'boom' });
    failed('p1');
    clock += 10_000;
    failed('p2');
    failed('p3');
    alerts.potStatus({ nodeName: 'n1', potId: 'p4', potType: 'cowrie', status: 'Running' }); // not a failure
    clock += 20_000;
    failed('p5');
    await until(() => hitsOf('pot_failed').length === 2, 'two alerts');
    const sent = hitsOf('pot_failed');
    assert.deepEqual(sent.map((a) => [a.subject, a.suppressed]), [['n1/p1', 0], ['n1/p5', 2]]);
  });

  it('attacker windows: N events must fall within M minutes; the count starts again after firing', () => {
    const w = new AttackerWindows();
    const t0 = 0;
    assert.equal(w.observe('a', t0, 3, 1), false);
    assert.equal(w.observe('a', t0 + 30_000, 3, 1), false);
    assert.equal(w.observe('a', t0 + 61_000, 3, 1), false, 'first event fell out of the minute');
    assert.equal(w.observe('a', t0 + 62_000, 3, 1), true, 'three within a minute');
    assert.equal(w.observe('a', t0 + 63_000, 3, 1), false, 'counting again');
    const bounded = new AttackerWindows(100);
    for (let i = 0; i < 1000; i++) bounded.observe(`10.0.${i >> 8}.${i & 255}`, i, 5, 1);
    assert.equal(bounded.size, 100);
  });

  it('attacker_events through the service fires once per source', async () => {
    await alerts.createRule({ name: 'attacker', kind: 'attacker_events', params: { events: 3, minutes: 1 }, channels: [channel], dedupSeconds: 0 });
    assert.ok(alerts.wantsEvents);
    alerts.eventsCommitted([fact('203.0.113.1', clock), fact('203.0.113.2', clock), fact('203.0.113.1', clock + 1), fact('203.0.113.1', clock + 2), fact('203.0.113.1', clock + 3)]);
    await until(() => hitsOf('attacker_events').length === 1, 'one alert');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(hitsOf('attacker_events').length, 1);
    assert.equal(hitsOf('attacker_events')[0].subject, '203.0.113.1');
  });

  it('a full channel queue drops new alerts and counts them', async () => {
    const slow = await startHttpReceiver();
    const stalled = new AlertService({
      store: new SqliteAlertStore(db),
      logger: pino({ level: 'silent' }) as any,
      registry: new Registry(),
      queueMax: 2,
      maxAttempts: 3,
      retryDelayMs: 60_000,
    });
    try {
      const ch = await stalled.createChannel({ name: 'stalled', type: 'webhook', config: { url: `${slow.url}/s` }, secrets: { hmacSecret: SECRET } });
      await stalled.createRule({ name: 'stalled-rule', kind: 'node_online', channels: [ch.id], dedupSeconds: 0 });
      slow.failNext(1000);
      for (let i = 0; i < 6; i++) stalled.nodeOnline({ nodeName: `n${i}` });
      // the first is in flight (waiting a minute to retry), two wait, three are dropped
      await until(() => slow.hits.length === 1, 'first attempt');
      const stats = stalled.channelView(stalled.getChannel(ch.id)).stats;
      assert.equal(stats.dropped, 3);
      assert.equal(stats.queued, 2);
    } finally {
      stalled.close();
      await slow.close();
    }
  });
});
