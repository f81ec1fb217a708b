// cowrie.sessions across cores: two aggregators (as two cores would run them) share their
// in-progress sessions through one real redis-server. One session's events arrive partly at one,
// partly at the other (a node that reconnected elsewhere mid-session): one summary, with all of it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisCowrieSessionState } from '../../src/cluster/index.js';
import { SharedCowrieSessions, type CowrieCommitted } from '../../src/events/cowrie-shared.js';
import type { CowrieSessionSummary } from '../../src/events/index.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

interface Emitted {
  core: string;
  node: string;
  summary: CowrieSessionSummary;
  reason: string;
}

let nextId = 0;
function cowrie(node: string, session: string, eventType: string, data: Record<string, unknown> = {}): CowrieCommitted {
  const full = { session, timestamp: new Date(1_714_557_600_000 + ++nextId * 1000).toISOString(), ...data };
  return { node, potId: 'cowrie-01', eventType, timestamp: Date.parse(full.timestamp), data: full, dataJson: JSON.stringify(full), fromStatus: false };
}

describe('cowrie.sessions aggregated across cores through Redis', () => {
  let redis: TestRedis;
  let client: Redis;
  let prefix = 0;
  const emitted: Emitted[] = [];

  const cores = (opts: { idleTimeoutMs?: number; maxOpenSessions?: number } = {}) => {
    const state = new RedisCowrieSessionState({ redis: client, prefix: `t${++prefix}:`, tombstoneMs: 60_000 });
    const errors: unknown[] = [];
    const make = (core: string) =>
      new SharedCowrieSessions(state, (node, summary, reason) => emitted.push({ core, node, summary, reason }), { ...opts, onError: (e) => errors.push(e) });
    return { a: make('a'), b: make('b'), errors };
  };

  before(async () => {
    redis = await startTestRedis({ appendOnly: false });
    client = new Redis(redis.url);
  });
  after(async () => {
    client.disconnect();
    await redis.dispose();
  });

  it('a session begun on core A and ended on core B gets one summary holding both halves', async () => {
    emitted.length = 0;
    const { a, b, errors } = cores();
    const now = Date.now();
    a.add(
      [
        cowrie('edge-1', 's1', 'cowrie.session.connect', { src_ip: '203.0.113.5', src_port: 40022, dst_ip: '10.0.0.2', dst_port: 2222, protocol: 'ssh' }),
        cowrie('edge-1', 's1', 'cowrie.client.version', { version: 'SSH-2.0-Go' }),
        cowrie('edge-1', 's1', 'cowrie.login.failed', { username: 'root', password: '123' }),
        cowrie('edge-1', 's1', 'cowrie.login.success', { username: 'root', password: 'admin' }),
        // another session of the same node in the same slice, still open
        cowrie('edge-1', 's2', 'cowrie.session.connect', { src_ip: '198.51.100.7' }),
      ],
      now,
    );
    await a.settle();
    assert.equal(emitted.length, 0, 'nothing closed yet');
    b.add(
      [
        cowrie('edge-1', 's1', 'cowrie.command.input', { input: 'uname -a' }),
        cowrie('edge-1', 's1', 'cowrie.session.file_download', { url: 'http://x/y.sh', shasum: 'abc' }),
        cowrie('edge-1', 's1', 'cowrie.session.closed'),
      ],
      now + 5,
    );
    await b.settle();
    assert.deepEqual(errors, []);
    assert.equal(emitted.length, 1);
    const [{ core, node, summary, reason }] = emitted as [Emitted];
    assert.equal(core, 'b');
    assert.equal(node, 'edge-1');
    assert.equal(reason, 'closed');
    assert.equal(summary.session, 's1');
    assert.equal(summary.peerIP, '203.0.113.5');
    assert.equal(summary.peerPort, 40022);
    assert.equal(summary.hostPort, 2222);
    assert.equal(summary.version, 'SSH-2.0-Go');
    assert.deepEqual(summary.credentials, [['root', '123']]);
    assert.deepEqual(summary.loggedin, ['root', 'admin']);
    assert.deepEqual(summary.commands, ['uname -a']);
    assert.deepEqual(summary.urls, ['http://x/y.sh']);
    assert.deepEqual(summary.hashes, ['abc']);
    assert.ok(summary.startTime < summary.endTime && summary.endTime !== '');
  });

  it("the old connection's late tail, committed after the close, starts no second summary", async () => {
    emitted.length = 0;
    const { a, b } = cores({ idleTimeoutMs: 50 });
    a.add([cowrie('edge-2', 't1', 'cowrie.session.connect', { src_ip: '203.0.113.9' })], Date.now());
    await a.settle();
    b.add([cowrie('edge-2', 't1', 'cowrie.session.closed')], Date.now());
    await b.settle();
    a.add([cowrie('edge-2', 't1', 'cowrie.command.input', { input: 'late' })], Date.now());
    await a.settle();
    await new Promise((r) => setTimeout(r, 80));
    a.expireIdle(Date.now());
    b.expireIdle(Date.now());
    await Promise.all([a.settle(), b.settle()]);
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.reason, 'closed');
  });

  it('an idle session is emitted once even when every core sweeps at the same time', async () => {
    emitted.length = 0;
    const { a, b } = cores({ idleTimeoutMs: 50 });
    a.add([cowrie('edge-3', 'u1', 'cowrie.session.connect', { src_ip: '192.0.2.1' })], Date.now());
    b.add([cowrie('edge-3', 'u1', 'cowrie.command.input', { input: 'id' })], Date.now());
    await Promise.all([a.settle(), b.settle()]);
    a.expireIdle(Date.now());
    b.expireIdle(Date.now());
    await Promise.all([a.settle(), b.settle()]);
    assert.equal(emitted.length, 0, 'not idle yet');
    await new Promise((r) => setTimeout(r, 80));
    for (let i = 0; i < 5; i++) {
      a.expireIdle(Date.now());
      b.expireIdle(Date.now());
    }
    await Promise.all([a.settle(), b.settle()]);
    assert.equal(emitted.length, 1);
    assert.equal(emitted[0]!.reason, 'idle');
    assert.deepEqual(emitted[0]!.summary.commands, ['id']);
    assert.equal(emitted[0]!.summary.peerIP, '192.0.2.1');
  });

  it('beyond the open-session cap the least recently active go first (evicted), once', async () => {
    emitted.length = 0;
    const { a, b } = cores({ idleTimeoutMs: 600_000, maxOpenSessions: 2 });
    const now = Date.now();
    a.add([cowrie('edge-4', 'v1', 'cowrie.session.connect')], now);
    await a.settle();
    b.add([cowrie('edge-4', 'v2', 'cowrie.session.connect')], now + 1);
    await b.settle();
    a.add([cowrie('edge-4', 'v3', 'cowrie.session.connect')], now + 2);
    await a.settle();
    a.expireIdle(now + 3);
    b.expireIdle(now + 3);
    await Promise.all([a.settle(), b.settle()]);
    assert.deepEqual(
      emitted.map((e) => [e.summary.session, e.reason]),
      [['v1', 'evicted']],
    );
  });

  it('a slice without cowrie session events costs no Redis call', async () => {
    const { a } = cores();
    const before = Number((await client.info('stats')).match(/total_commands_processed:(\d+)/)![1]);
    a.add([{ ...cowrie('edge-5', '', 'cowrie.session.connect') }, { node: 'n', potId: 'p', eventType: 'dionaea.connection', timestamp: 1, data: {}, dataJson: '{}', fromStatus: false }], Date.now());
    await a.settle();
    const afterCount = Number((await client.info('stats')).match(/total_commands_processed:(\d+)/)![1]);
    assert.equal(afterCount - before, 1, 'only the INFO itself');
  });
});
