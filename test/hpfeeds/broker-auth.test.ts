// Authentication, channel ACLs and live revalidation of the hpfeeds broker, over real sockets.
// Kept apart from broker.test.ts (throughput, back-pressure, fuzz: ~25 s) so the mutation module
// hpfeeds-auth can run these in a few seconds per mutant.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { MemoryAuthStore } from '../../src/hpfeeds/auth-stores.js';
import { OP_INFO, encodeAuth, encodePublish, encodeSubscribe, encodeUnsubscribe } from '../../src/hpfeeds/codec.js';
import type { AuthKey, AuthStore } from '../../src/hpfeeds/types.js';
import { ALICE_BOB_KEYS, RawPeer, key, publishes, loginFrom, sleep, startBroker, waitFor, waitForMetric, waitSubscriptions, withTimeout, type TestBroker } from './harness.js';

const KEYS = ALICE_BOB_KEYS;


describe('hpfeeds broker: handshake and authentication', () => {
  let t: TestBroker;
  const peers: RawPeer[] = [];
  const track = (p: RawPeer) => (peers.push(p), p);
  before(async () => {
    t = await startBroker({ keys: KEYS });
  });
  after(async () => {
    peers.forEach((p) => p.destroy());
    await t.broker.close();
  });

  it('sends OP_INFO (name + 4-byte random nonce) in one piece', async () => {
    const a = track(await RawPeer.connect(t.port));
    const b = track(await RawPeer.connect(t.port));
    assert.equal(a.chunks[0].length, a.chunks[0].readUInt32BE(0), 'first chunk is exactly the INFO frame');
    assert.equal(a.info.op, OP_INFO);
    assert.equal(a.info.name, 'testbroker');
    assert.equal(a.info.nonce.length, 4);
    assert.notDeepEqual(a.info.nonce, b.info.nonce);
  });

  it('rejects a wrong secret and an unknown ident with the reference text', async () => {
    const wrong = track(await RawPeer.login(t.port, 'alice', 'nope'));
    assert.equal(await wrong.expectErrorAndClose(), 'Authentication failed for alice');
    const unknown = track(await RawPeer.login(t.port, 'mallory', 'x'));
    assert.equal(await unknown.expectErrorAndClose(), 'Authentication failed for mallory');
    const text = await t.metrics();
    assert.match(text, /hpfeeds_broker_connection_error\{ident="alice",category="invalid-secret"\} 1/);
    assert.match(text, /hpfeeds_broker_connection_error\{ident="",category="invalid-ident"\} 1/);
    assert.doesNotMatch(text, /mallory/, 'attacker-chosen idents stay out of label values');
  });

  it('requires AUTH first', async () => {
    const p = track(await RawPeer.connect(t.port));
    p.subscribe('alice', 'events');
    assert.equal(await p.expectErrorAndClose(), 'First message was not AUTH');
  });

  it('closes unauthenticated connections after the auth timeout', async () => {
    const quick = await startBroker({ keys: KEYS, authTimeoutMs: 150, registry: undefined });
    try {
      const p = track(await RawPeer.connect(quick.port));
      const started = Date.now();
      assert.equal(await p.expectErrorAndClose(), 'Authentication timed out');
      assert.ok(Date.now() - started < 2000);
    } finally {
      await quick.broker.close();
    }
  });

  it('holds frames sent with AUTH while an async lookup runs, then handles them in order', async () => {
    const memory = new MemoryAuthStore(KEYS);
    let lookups = 0;
    const slow: AuthStore = {
      get: async (ident) => {
        lookups++;
        await sleep(80);
        return memory.get(ident);
      },
    };
    const s = await startBroker({ authStore: slow });
    try {
      const peer = await RawPeer.connect(s.port);
      track(peer);
      peer.write(
        Buffer.concat([
          peer.auth('alice', 'alice-secret'),
          encodeSubscribe('alice', 'events'),
          encodePublish('alice', 'events', 'one'),
          encodePublish('alice', 'events', 'two'),
        ]),
      );
      await waitFor(() => publishes(peer).length === 2, 3000, 'echoed publishes');
      assert.deepEqual(publishes(peer).map((f) => f.payload.toString()), ['one', 'two']);
      assert.equal(lookups, 1);
    } finally {
      await s.broker.close();
    }
  });

  it('fails closed when the auth store throws', async () => {
    const s = await startBroker({ authStore: { get: () => Promise.reject(new Error('db down')) } });
    try {
      const p = track(await RawPeer.login(s.port, 'alice', 'alice-secret'));
      assert.equal(await p.expectErrorAndClose(), 'Authentication failed for alice');
      assert.match(s.logger.text(), /auth store lookup failed.*db down/);
    } finally {
      await s.broker.close();
    }
  });
});

describe('hpfeeds broker: channel ACLs', () => {
  let t: TestBroker;
  let peers: RawPeer[] = [];
  const login = async (ident: string, secret: string, then: Buffer[] = []) => {
    const p = await RawPeer.login(t.port, ident, secret, then);
    peers.push(p);
    return p;
  };
  beforeEach(async () => {
    t = await startBroker({ keys: KEYS });
  });
  afterEach(async () => {
    peers.forEach((p) => p.destroy());
    peers = [];
    await t.broker.close();
  });

  it('enforces pub ACLs', async () => {
    const bob = await login('bob', 'bob-secret', [encodePublish('bob', 'events', 'x')]);
    assert.equal(await bob.expectErrorAndClose(), 'Authkey not allowed to pub here. ident=bob, chan=events');
  });

  it('enforces sub ACLs', async () => {
    const bob = await login('bob', 'bob-secret', [encodeSubscribe('bob', 'alerts')]);
    assert.equal(await bob.expectErrorAndClose(), 'Authkey not allowed to sub here. ident=bob, chan=alerts');
  });

  it('rejects publishing under another ident', async () => {
    const alice = await login('alice', 'alice-secret', [encodePublish('bob', 'events', 'x')]);
    assert.equal(await alice.expectErrorAndClose(), 'Invalid authkey in message, ident=bob');
  });
});

describe('hpfeeds broker: revalidation of live connections', () => {
  it('closes connections whose key was removed or whose secret changed (store change feed)', async () => {
    const t = await startBroker({ keys: KEYS });
    try {
      const alice = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]);
      const bob = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
      await waitSubscriptions(t, 'alice', 'events', 1);
      await waitSubscriptions(t, 'bob', 'events', 1);
      t.store.set(key('alice', 'rotated', ['events'], ['events']));
      assert.equal(await alice.expectErrorAndClose(), 'Authentication failed for alice');
      assert.match(t.logger.text(), /secret changed/);
      assert.ok(!bob.isClosed, 'other idents untouched');
      t.store.delete('bob');
      assert.equal(await bob.expectErrorAndClose(), 'Authentication failed for bob');
      assert.match(t.logger.text(), /authkey removed/);
      assert.match(await t.metrics(), /hpfeeds_broker_connection_error\{ident="bob",category="authkey-revoked"\} 1/);
      // The rotated secret works for new logins.
      const again = await RawPeer.login(t.port, 'alice', 'rotated', [encodeSubscribe('alice', 'events')]);
      await waitSubscriptions(t, 'alice', 'events', 1);
      assert.ok(!again.isClosed);
      again.destroy();
    } finally {
      await t.broker.close();
    }
  });

  it('applies changed channel lists on revalidate(): drops subscriptions and publish rights no longer allowed', async () => {
    const keys = new Map<string, AuthKey>(KEYS.map((k) => [k.ident, k]));
    const plainStore: AuthStore = { get: (ident) => keys.get(ident) }; // no change feed: explicit revalidate
    const t = await startBroker({ authStore: plainStore });
    try {
      const alice = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events'), encodeSubscribe('alice', 'alerts')]);
      await waitSubscriptions(t, 'alice', 'alerts', 1);
      keys.set('alice', key('alice', 'alice-secret', ['alerts'], ['alerts']));
      await t.broker.revalidate('alice');
      t.broker.publish('core', 'events', 'not for alice any more');
      t.broker.publish('core', 'alerts', 'still for alice');
      await waitFor(() => publishes(alice).length >= 1);
      await sleep(50);
      assert.deepEqual(publishes(alice).map((f) => f.channel), ['alerts']);
      assert.match(t.logger.text(), /subscription dropped.*"chan":"events"/);
      assert.match(await t.metrics(), /hpfeeds_broker_subscriptions\{ident="alice",chan="events"\} 0/);
      assert.ok(!alice.isClosed);
      alice.publish('alice', 'events', 'x');
      assert.equal(await alice.expectErrorAndClose(), 'Authkey not allowed to pub here. ident=alice, chan=events');
    } finally {
      await t.broker.close();
    }
  });

  it('re-checks a login whose lookup raced with a revocation', async () => {
    const keys = new Map<string, AuthKey>(KEYS.map((k) => [k.ident, k]));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const store: AuthStore = {
      get: async (ident) => {
        const snapshot = keys.get(ident);
        if (++calls === 1) await gate; // first lookup returns the stale key late
        return snapshot;
      },
    };
    const t = await startBroker({ authStore: store });
    try {
      const p = await RawPeer.login(t.port, 'alice', 'alice-secret');
      await waitFor(() => calls === 1);
      keys.delete('alice');
      await t.broker.revalidate('alice');
      release();
      assert.equal(await p.expectErrorAndClose(), 'Authentication failed for alice');
      assert.equal(calls, 2);
    } finally {
      await t.broker.close();
    }
  });
});
describe('hpfeeds broker: AUTH failure limits', () => {
  it('rate limits failed AUTHs per address and per ident, without locking out the ident\'s last good address', async () => {
    const t = await startBroker({ keys: KEYS, authFailuresPerAddress: 5, authFailuresPerIdent: 8, authFailureWindowMs: 60_000 });
    try {
      // alice last logged in from 127.0.0.1.
      const good = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]);
      await waitSubscriptions(t, 'alice', 'events', 1);
      good.destroy();
      // An attacker at 127.0.0.5 guesses: 5 failures, then even the right secret is refused unchecked.
      for (let i = 0; i < 5; i++) {
        const a = await loginFrom(t.port, '127.0.0.5', 'alice', `guess-${i}`);
        assert.equal(await withTimeout(a.error, 3000, 'guess answered'), 'Authentication failed for alice');
      }
      const blocked = await loginFrom(t.port, '127.0.0.5', 'alice', 'alice-secret');
      assert.equal(await withTimeout(blocked.error, 3000, 'blocked answered'), 'Authentication failed for alice');
      // A second attacker address uses up alice's per-ident budget (8 failures in all).
      for (let i = 0; i < 3; i++) {
        const a = await loginFrom(t.port, '127.0.0.6', 'alice', `guess-${i}`);
        assert.equal(await withTimeout(a.error, 3000, 'guess answered'), 'Authentication failed for alice');
      }
      const third = await loginFrom(t.port, '127.0.0.7', 'alice', 'alice-secret');
      assert.equal(await withTimeout(third.error, 3000, 'third address answered'), 'Authentication failed for alice', 'ident locked for new addresses');
      // The real client at its last good address still gets in.
      const again = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]);
      await waitSubscriptions(t, 'alice', 'events', 1);
      assert.ok(!again.isClosed);
      again.destroy();
      const text = await t.metrics();
      assert.match(text, /hpfeeds_broker_auth_rate_limited_total\{scope="address"\} 1/);
      assert.match(text, /hpfeeds_broker_auth_rate_limited_total\{scope="ident"\} 1/);
      assert.match(text, /hpfeeds_broker_connection_error\{ident="",category="auth-rate-limited"\} 2/);
      const lines = t.logger.entries.filter((e) => e.msg.includes('too many failed attempts'));
      assert.equal(lines.length, 2);
      assert.deepEqual(
        lines.map((e) => [e.obj.scope, e.obj.attemptedIdent, e.obj.limitPerWindow, e.obj.address]),
        [
          ['address', 'alice', 5, '127.0.0.5'],
          ['ident', 'alice', 8, '127.0.0.7'],
        ],
      );
      // A refusal logs only that throttled line: a guessing flood cannot flood the log.
      assert.equal(t.logger.entries.filter((e) => e.obj.category === 'auth-rate-limited').length, 0);
    } finally {
      await t.broker.close();
    }
  });
});


/** Waits until the broker counted a connection error of `category` under the metric label `ident`. */
function countedError(t: TestBroker, ident: string, category: string, count = 1): Promise<void> {
  return waitForMetric(t, new RegExp(`^hpfeeds_broker_connection_error\\{ident="${ident}",category="${category}"\\} ${count}$`, 'm'));
}

describe('hpfeeds broker: every AUTH outcome, with its metric and log', () => {
  let t: TestBroker;
  const peers: RawPeer[] = [];
  const track = (p: RawPeer) => (peers.push(p), p);
  before(async () => {
    t = await startBroker({ keys: KEYS });
  });
  after(async () => {
    peers.forEach((p) => p.destroy());
    await t.broker.close();
  });

  it('a login is logged with ident, owner and peer, and counted as ready under its ident', async () => {
    const alice = track(await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]));
    await waitSubscriptions(t, 'alice', 'events', 1);
    const logins = t.logger.entries.filter((e) => e.msg === 'hpfeeds client authenticated');
    assert.deepEqual(logins.map((e) => e.obj), [{ ident: 'alice', owner: 'alice-owner', peer: `127.0.0.1:${alice.socket.localPort}` }]);
    assert.match(await t.metrics(), /^hpfeeds_broker_connection_ready\{ident="alice"\} 1$/m);
  });

  it('an AUTH hash of the wrong length is a wrong secret, not an internal error', async () => {
    const p = track(await RawPeer.connect(t.port));
    p.write(encodeAuth('alice', Buffer.alloc(3)));
    assert.equal(await p.expectErrorAndClose(), 'Authentication failed for alice');
    await countedError(t, 'alice', 'invalid-secret');
  });

  it('a failed login is logged with the ident it tried, known or not', async () => {
    const known = track(await RawPeer.login(t.port, 'bob', 'wrong'));
    const unknown = track(await RawPeer.login(t.port, 'trudy', 'x'));
    await known.waitClosed();
    await unknown.waitClosed();
    const failures = t.logger.entries
      .filter((e) => e.msg === 'hpfeeds connection error' && (e.obj.category === 'invalid-secret' || e.obj.category === 'invalid-ident'))
      .map((e) => [e.obj.category, e.obj.attemptedIdent, e.obj.error]);
    assert.deepEqual(
      failures.filter((f) => f[1] === 'bob' || f[1] === 'trudy'),
      [
        ['invalid-secret', 'bob', 'Authentication failed for bob'],
        ['invalid-ident', 'trudy', 'Authentication failed for trudy'],
      ],
    );
  });

  it('a frame before AUTH and a second AUTH are counted by category', async () => {
    const first = track(await RawPeer.connect(t.port));
    first.subscribe('alice', 'events');
    assert.equal(await first.expectErrorAndClose(), 'First message was not AUTH');
    await countedError(t, '', 'invalid-first-message');
    const twice = track(await RawPeer.connect(t.port));
    twice.write(Buffer.concat([twice.auth('bob', 'bob-secret'), twice.auth('bob', 'bob-secret')]));
    assert.equal(await twice.expectErrorAndClose(), 'Unexpected opcode 2 from client');
    await countedError(t, 'bob', 'unexpected-opcode');
  });
});

describe('hpfeeds broker: auth store failures and slow lookups', () => {
  it('fails closed when the store throws synchronously or rejects, under no ident label', async () => {
    for (const [name, get] of [
      ['throws', () => { throw new Error('db down (sync)'); }],
      ['rejects', () => Promise.reject(new Error('db down (async)'))],
    ] as Array<[string, AuthStore['get']]>) {
      const s = await startBroker({ authStore: { get } });
      try {
        const p = await RawPeer.login(s.port, 'alice', 'alice-secret');
        assert.equal(await p.expectErrorAndClose(), 'Authentication failed for alice', name);
        await countedError(s, '', 'auth-store-error');
        const failed = s.logger.entries.filter((e) => e.msg === 'hpfeeds auth store lookup failed');
        assert.equal(failed.length, 1, name);
        assert.equal(failed[0].obj.attemptedIdent, 'alice');
        assert.match(String(failed[0].obj.err), /db down/);
      } finally {
        await s.broker.close();
      }
    }
  });

  it('a lookup slower than the auth timeout times the login out, and its late answer is ignored', async () => {
    for (const outcome of ['key', 'error'] as const) {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let pending: Promise<AuthKey | undefined> | undefined;
      const memory = new MemoryAuthStore(KEYS);
      const store: AuthStore = {
        get: (ident) =>
          (pending = gate.then(() => {
            if (outcome === 'error') throw new Error('late failure');
            return memory.get(ident);
          })),
      };
      // The timeout runs from accept: it must leave the client time to send AUTH even on a
      // loaded machine, so the lookup (held by the gate) is what it times out.
      const s = await startBroker({ authStore: store, authTimeoutMs: 1000 });
      try {
        const p = await RawPeer.login(s.port, 'alice', 'alice-secret');
        assert.equal(await p.expectErrorAndClose(), 'Authentication timed out', outcome);
        assert.ok(pending, 'the lookup had started when the login timed out');
        await countedError(s, '', 'auth-timeout');
        release();
        // The broker's handler was attached to the lookup first, so it has run once this settles.
        await pending!.catch(() => {});
        await new Promise((r) => setImmediate(r));
        assert.equal(s.logger.entries.filter((e) => e.msg === 'hpfeeds client authenticated').length, 0, outcome);
        assert.equal(s.logger.entries.filter((e) => e.msg === 'hpfeeds auth store lookup failed').length, 0, outcome);
        assert.doesNotMatch(await s.metrics(), /^hpfeeds_broker_connection_ready\{/m);
      } finally {
        await s.broker.close();
      }
    }
  });
});

describe('hpfeeds broker: publish checks byte for byte', () => {
  const CAROL = key('carol', 'carol-secret', ['events', 'events2'], ['events', 'events2', 'alerts']);
  let t: TestBroker;
  let peers: RawPeer[] = [];
  const login = async (ident: string, secret: string, then: Buffer[] = []) => {
    const p = await RawPeer.login(t.port, ident, secret, then);
    peers.push(p);
    return p;
  };
  beforeEach(async () => {
    t = await startBroker({ keys: [...KEYS, CAROL] });
  });
  afterEach(async () => {
    peers.forEach((p) => p.destroy());
    peers = [];
    await t.broker.close();
  });

  it('refuses an ident that is a prefix of, as long as, or longer than the authenticated one', async () => {
    for (const other of ['ali', 'alicx', 'alice2']) {
      const p = await login('alice', 'alice-secret', [encodePublish(other, 'events', 'x')]);
      assert.equal(await p.expectErrorAndClose(), `Invalid authkey in message, ident=${other}`);
    }
    await countedError(t, 'alice', 'ident-mismatch-pub', 3);
  });

  it('checks the channel of every publish that changes it, whatever its length', async () => {
    const p = await login('carol', 'carol-secret', [
      encodeSubscribe('carol', 'events'),
      encodeSubscribe('carol', 'events2'),
      encodePublish('carol', 'events', 'a'),
      encodePublish('carol', 'events2', 'b'),
      encodePublish('carol', 'events', 'c'),
    ]);
    await waitFor(() => publishes(p).length === 3, 5000, 'three echoes');
    assert.deepEqual(publishes(p).map((f) => `${f.channel}:${f.payload}`), ['events:a', 'events2:b', 'events:c']);
    p.publish('carol', 'event', 'shorter, a prefix of the last channel');
    assert.equal(await p.expectErrorAndClose(), 'Authkey not allowed to pub here. ident=carol, chan=event');

    const q = await login('carol', 'carol-secret', [encodePublish('carol', 'events', 'a'), encodePublish('carol', 'alerts', 'same length')]);
    assert.equal(await q.expectErrorAndClose(), 'Authkey not allowed to pub here. ident=carol, chan=alerts');
    await countedError(t, 'carol', 'no-pub-permission', 2);
  });

  it('pub and sub refusals are counted by category under the ident', async () => {
    const pub = await login('bob', 'bob-secret', [encodePublish('bob', 'events', 'x')]);
    await pub.waitClosed();
    await countedError(t, 'bob', 'no-pub-permission');
    const sub = await login('bob', 'bob-secret', [encodeSubscribe('bob', 'alerts')]);
    await sub.waitClosed();
    await countedError(t, 'bob', 'no-sub-permission');
  });

  it('UNSUBSCRIBE needs no permission and stops delivery of that channel only', async () => {
    const alice = await login('alice', 'alice-secret', [encodeSubscribe('alice', 'events'), encodeSubscribe('alice', 'alerts')]);
    await waitSubscriptions(t, 'alice', 'alerts', 1);
    alice.write(Buffer.concat([encodeUnsubscribe('alice', 'not-allowed-anyway'), encodeUnsubscribe('alice', 'events')]));
    await waitSubscriptions(t, 'alice', 'events', 0);
    t.broker.publish('core', 'events', 'x');
    t.broker.publish('core', 'alerts', 'y');
    await waitFor(() => publishes(alice).length >= 1, 5000, 'alerts delivery');
    // Same connection, same turn: had 'x' been delivered it would have come first.
    assert.deepEqual(publishes(alice).map((f) => `${f.channel}:${f.payload}`), ['alerts:y']);
    assert.ok(!alice.isClosed);
  });
});

describe('hpfeeds broker: revalidation, more cases', () => {
  it('a publish right withdrawn is re-checked on the channel already in use', async () => {
    const keys = new Map<string, AuthKey>(KEYS.map((k) => [k.ident, k]));
    const t = await startBroker({ authStore: { get: (ident) => keys.get(ident) } });
    try {
      const alice = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events'), encodePublish('alice', 'events', 'one')]);
      await waitFor(() => publishes(alice).length === 1, 5000, 'echo');
      keys.set('alice', key('alice', 'alice-secret', ['alerts'], ['events']));
      await t.broker.revalidate('alice');
      alice.publish('alice', 'events', 'two');
      assert.equal(await alice.expectErrorAndClose(), 'Authkey not allowed to pub here. ident=alice, chan=events');
      assert.equal(publishes(alice).length, 1);
    } finally {
      await t.broker.close();
    }
  });

  it('revalidate() without an ident re-checks every connection, each of one ident, and looks up no anonymous one', async () => {
    const keys = new Map<string, AuthKey>(KEYS.map((k) => [k.ident, k]));
    const lookups: string[] = [];
    const t = await startBroker({ authStore: { get: (ident) => (lookups.push(ident), keys.get(ident)) } });
    try {
      const a1 = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]);
      const a2 = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'alerts')]);
      const bob = await RawPeer.login(t.port, 'bob', 'bob-secret', [encodeSubscribe('bob', 'events')]);
      await waitSubscriptions(t, 'alice', 'alerts', 1);
      await waitSubscriptions(t, 'alice', 'events', 1);
      await waitSubscriptions(t, 'bob', 'events', 1);
      const anonymous = await RawPeer.connect(t.port);
      lookups.length = 0;
      await t.broker.revalidate('bob');
      assert.deepEqual(lookups, ['bob'], 'revalidate(ident) looks up that ident only');
      lookups.length = 0;
      keys.set('alice', key('alice', 'rotated', ['events'], ['events']));
      keys.delete('bob');
      await t.broker.revalidate();
      assert.deepEqual(lookups.sort(), ['alice', 'bob'], 'one lookup per ident, none for the unauthenticated peer');
      for (const [p, ident] of [[a1, 'alice'], [a2, 'alice'], [bob, 'bob']] as const) {
        assert.equal(await p.expectErrorAndClose(), `Authentication failed for ${ident}`);
      }
      assert.ok(!anonymous.isClosed);
      anonymous.destroy();
    } finally {
      await t.broker.close();
    }
  });

  it('a lookup that fails during revalidation keeps the connections as they are (fail safe)', async () => {
    let failing = false;
    const memory = new MemoryAuthStore(KEYS);
    const t = await startBroker({ authStore: { get: (ident) => (failing ? Promise.reject(new Error('db hiccup')) : memory.get(ident)) } });
    try {
      const alice = await RawPeer.login(t.port, 'alice', 'alice-secret', [encodeSubscribe('alice', 'events')]);
      await waitSubscriptions(t, 'alice', 'events', 1);
      failing = true;
      await t.broker.revalidate('alice');
      assert.match(t.logger.text(), /revalidation lookup failed.*db hiccup/);
      t.broker.publish('core', 'events', 'still here');
      await waitFor(() => publishes(alice).length === 1, 5000, 'delivery after the failed lookup');
      assert.ok(!alice.isClosed);
      alice.destroy();
    } finally {
      await t.broker.close();
    }
  });
});

describe('hpfeeds broker: AUTH failure limits, more cases', () => {
  it('an address refused for its own failures and for an ident\'s gets a log line for each', async () => {
    const t = await startBroker({ keys: KEYS, authFailuresPerAddress: 3, authFailuresPerIdent: 2, authFailureWindowMs: 60_000 });
    const answer = async (address: string, ident: string, secret: string) => {
      const a = await loginFrom(t.port, address, ident, secret);
      return withTimeout(a.error, 3000, `${ident} from ${address} answered`);
    };
    try {
      // alice's ident budget is spent from elsewhere: 127.0.0.20 is refused for alice's sake...
      assert.equal(await answer('127.0.0.21', 'alice', 'guess-1'), 'Authentication failed for alice');
      assert.equal(await answer('127.0.0.22', 'alice', 'guess-2'), 'Authentication failed for alice');
      assert.equal(await answer('127.0.0.20', 'alice', 'alice-secret'), 'Authentication failed for alice');
      // ...then for its own failures (refusals are not failures: three real ones, on unknown idents).
      for (let i = 0; i < 3; i++) assert.equal(await answer('127.0.0.20', `nobody${i}`, 'x'), `Authentication failed for nobody${i}`);
      assert.equal(await answer('127.0.0.20', 'bob', 'bob-secret'), 'Authentication failed for bob');
      const lines = t.logger.entries.filter((e) => e.msg.includes('too many failed attempts')).map((e) => [e.obj.scope, e.obj.address]);
      assert.deepEqual(lines, [
        ['ident', '127.0.0.20'],
        ['address', '127.0.0.20'],
      ]);
    } finally {
      await t.broker.close();
    }
  });

  it('failures against an ident that did not exist yet do not count against it once it does', async () => {
    const t = await startBroker({ keys: KEYS, authFailuresPerAddress: 100, authFailuresPerIdent: 3, authFailureWindowMs: 60_000 });
    try {
      for (let i = 0; i < 4; i++) {
        const a = await loginFrom(t.port, '127.0.0.8', 'carol', `guess-${i}`);
        assert.equal(await withTimeout(a.error, 3000, 'guess answered'), 'Authentication failed for carol');
      }
      t.store.set(key('carol', 'carol-secret', [], ['events']));
      const first = await loginFrom(t.port, '127.0.0.9', 'carol', 'carol-secret');
      await Promise.race([
        waitForMetric(t, /^hpfeeds_broker_connection_ready\{ident="carol"\} 1$/m),
        first.error.then((text) => Promise.reject(new Error(`login refused: ${text}`))),
      ]);
      first.socket.destroy();
      assert.doesNotMatch(await t.metrics(), /hpfeeds_broker_auth_rate_limited_total\{scope="ident"\} [1-9]/);
    } finally {
      await t.broker.close();
    }
  });
});
