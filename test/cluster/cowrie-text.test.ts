// The real node's cowrie text names a session only on its connect line. Two cores share the open
// sessions through one real redis-server: the node opens a session at core A, reconnects to core
// B, and B attributes the rest of its lines to that session; when the node comes back to A after
// the session ended at B, A has forgotten it too.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisCowrieTextState } from '../../src/cluster/index.js';
import { SharedCowrieText } from '../../src/events/cowrie-text-shared.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

const CONNECT = 'New connection: 203.0.113.5:50218 (10.0.0.2:2222) [session: 695f09473589]';

describe('cowrie text sessions shared between cores', () => {
  let redis: TestRedis;
  let client: Redis;
  let n = 0;
  const errors: unknown[] = [];
  const cores = () => {
    const state = new RedisCowrieTextState({ redis: client, prefix: `t${++n}:` });
    return { a: new SharedCowrieText(state, {}, (e) => errors.push(e)), b: new SharedCowrieText(state, {}, (e) => errors.push(e)) };
  };

  before(async () => {
    redis = await startTestRedis({ appendOnly: false });
    client = new Redis(redis.url);
  });
  after(async () => {
    client.disconnect();
    await redis.dispose();
  });

  it('a session opened at A goes on at B after the node reconnects there; ended at B, A forgets it', async () => {
    const { a, b } = cores();
    const now = Date.now();
    assert.equal(a.sessions.event('edge', 'vm', CONNECT, now).data.session, '695f09473589');
    await a.settle();
    // Without the hand-over B could not tell whose line this is.
    assert.equal(b.sessions.event('edge', 'vm', 'CMD: id', now).data.session, undefined);
    b.nodeOnline('edge');
    await b.settle();
    const cmd = b.sessions.event('edge', 'vm', 'CMD: uname -a', now + 1000);
    assert.equal(cmd.eventType, 'cowrie.command.input');
    assert.equal(cmd.data.session, '695f09473589');
    assert.equal(cmd.data.src_ip, '203.0.113.5');
    assert.equal(b.sessions.event('edge', 'vm', 'Connection lost after 2 seconds', now + 2000).data.session, '695f09473589');
    await b.settle();
    // A still remembers the session from before: the node's return there clears it.
    assert.equal(a.sessions.openSessions, 1);
    a.nodeOnline('edge');
    await a.settle();
    assert.equal(a.sessions.openSessions, 0);
    assert.equal(a.sessions.event('edge', 'vm', 'CMD: ls', now + 3000).data.session, undefined);
    assert.deepEqual(errors, []);
  });

  it('a sensor whose sessions changed here while the shared ones were read keeps this core\'s view', async () => {
    const { a, b } = cores();
    const now = Date.now();
    a.sessions.event('edge', 'vm', CONNECT, now);
    a.sessions.event('edge', 'other', 'New connection: 198.51.100.1:1 (10.0.0.2:2222) [session: aaaaaaaaaaaa]', now);
    await a.settle();
    b.nodeOnline('edge');
    // Before the read answers, the node opens a new session on sensor vm at B.
    b.sessions.event('edge', 'vm', 'New connection: 192.0.2.9:7 (10.0.0.2:2222) [session: bbbbbbbbbbbb]', now + 10);
    await b.settle();
    assert.equal(b.sessions.event('edge', 'vm', 'CMD: w', now + 20).data.session, 'bbbbbbbbbbbb');
    assert.equal(b.sessions.event('edge', 'other', 'CMD: w', now + 20).data.session, 'aaaaaaaaaaaa');
  });

  it('lines that change nothing open write nothing to Redis', async () => {
    const { a } = cores();
    const now = Date.now();
    a.sessions.event('edge', 'vm', CONNECT, now);
    await a.settle();
    const count = async () => Number((await client.info('stats')).match(/total_commands_processed:(\d+)/)![1]);
    const before = await count();
    for (let i = 0; i < 50; i++) a.sessions.event('edge', 'vm', `CMD: echo ${i}`, now + i);
    await a.settle();
    assert.equal((await count()) - before, 1, 'only the INFO itself');
  });
});
