import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseIsoTimestamp, nodeAuthkeyFor, resolveChannels, channelsForPotType, STATUS_MESSAGE_EVENT_TYPE } from '../../src/events/index.js';
import { normaliseAttackEvent, parseIsoTimestampGeneral, PotTypeCache, type PendingEvent } from '../../src/events/normalize.js';
import { dionaeaChannelFor } from '../../src/events/channels.js';
import { potEvent, statusEvent } from './helpers.js';

function ok(out: ReturnType<typeof normaliseAttackEvent>): PendingEvent {
  if ('error' in out) assert.fail(`unexpected error ${out.error}`);
  return out as PendingEvent;
}

describe('parseIsoTimestamp', () => {
  it('parses the forms nodes send', () => {
    assert.equal(parseIsoTimestamp('2024-03-01T12:34:56Z'), Date.UTC(2024, 2, 1, 12, 34, 56));
    assert.equal(parseIsoTimestamp('2024-03-01T12:34:56.789Z'), Date.UTC(2024, 2, 1, 12, 34, 56, 789));
    // cowrie: microseconds
    assert.equal(parseIsoTimestamp('2020-10-06T06:45:02.021156Z'), Date.UTC(2020, 9, 6, 6, 45, 2, 21));
    assert.equal(parseIsoTimestamp('2024-03-01T12:34:56+02:00'), Date.UTC(2024, 2, 1, 10, 34, 56));
    assert.equal(parseIsoTimestamp('2024-03-01T12:34:56-0530'), Date.UTC(2024, 2, 1, 18, 4, 56));
    // no offset: UTC, not the core's local time
    assert.equal(parseIsoTimestamp('2024-03-01T12:34:56.5'), Date.UTC(2024, 2, 1, 12, 34, 56, 500));
    assert.equal(parseIsoTimestamp('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
  });

  it('rejects what is not ISO 8601', () => {
    for (const bad of ['', 'yesterday', 'March 7 2020', '1700000000', '2023-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T25:00:00Z', '2024-01-01', '2024-01-01T00:00:00+25:00']) {
      assert.ok(Number.isNaN(parseIsoTimestamp(bad)), bad);
    }
  });
});

describe('parseIsoTimestamp fast path', () => {
  it('agrees with the general parser on the compact UTC form and its near misses', () => {
    // a deterministic walk over digits and separators around "YYYY-MM-DDTHH:MM:SS.fffZ"
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const pad = (v: number, w: number) => String(v).padStart(w, '0');
    const samples = ['2024-02-29T23:59:60Z', '1900-02-29T00:00:00Z', '2000-02-29T00:00:00.1Z', '0099-01-01T00:00:00Z', '0100-01-01T00:00:00Z', '2024-01-01T00:00:00.Z', '2024-01-01T00:00:00.1234567890Z', '2024-01-01T00:00:00z', '2024-01-01t00:00:00Z', '2024-01-01 00:00:00Z', '2024-01-01T00:00:00.12a4Z', '+024-01-01T00:00:00Z'];
    for (let i = 0; i < 20_000; i++) {
      const frac = rnd(4) === 0 ? '' : '.' + pad(rnd(1_000_000_000), 9).slice(0, 1 + rnd(10));
      let t = `${pad(rnd(3000), 4)}-${pad(rnd(14), 2)}-${pad(rnd(33), 2)}T${pad(rnd(26), 2)}:${pad(rnd(61), 2)}:${pad(rnd(62), 2)}${frac}Z`;
      if (rnd(5) === 0) {
        const at = rnd(t.length);
        t = t.slice(0, at) + '0-:.TZz +'[rnd(9)] + t.slice(at + 1);
      }
      samples.push(t);
    }
    let valid = 0;
    for (const t of samples) {
      const general = parseIsoTimestampGeneral(t);
      assert.equal(parseIsoTimestamp(t), general, t);
      if (!Number.isNaN(general)) valid++;
    }
    assert.ok(valid > 5000, `valid timestamps exercised (${valid})`);
  });
});

describe('normaliseAttackEvent', () => {
  const noLookup = new PotTypeCache(undefined);

  it('maps a PotEvent to one record with the node timestamp', () => {
    const e = ok(normaliseAttackEvent(potEvent('hb-1', { timestamp: '2024-03-01T12:00:00.250Z', data: { session: 'a', n: 1 } }, 1_800_000_000_000), noLookup));
    assert.equal(e.node, 'hb-1');
    assert.equal(e.potId, 'pot-01');
    assert.equal(e.potType, 'cowrie');
    assert.equal(e.eventType, 'cowrie.login.failed');
    assert.equal(e.timestamp, Date.UTC(2024, 2, 1, 12, 0, 0, 250));
    assert.equal(e.receivedAt, 1_800_000_000_000);
    assert.equal(e.dataJson, '{"session":"a","n":1}');
    assert.equal(e.timestampInvalid, false);
  });

  it('substitutes the receive time for an invalid timestamp and says so', () => {
    const e = ok(normaliseAttackEvent(potEvent('hb-1', { timestamp: 'not a time' }, 1_700_000_000_123), noLookup));
    assert.equal(e.timestamp, 1_700_000_000_123);
    assert.equal(e.timestampInvalid, true);
  });

  it('maps an event-shaped PotStatusUpdate to status_message with data {message}', () => {
    const e = ok(normaliseAttackEvent(statusEvent('hb-1', 'login attempt [root/123456] failed', '', 'pot-01', 1_700_000_000_000), noLookup));
    assert.equal(e.eventType, STATUS_MESSAGE_EVENT_TYPE);
    assert.deepEqual(e.data, { message: 'login attempt [root/123456] failed' });
    assert.equal(e.timestamp, 1_700_000_000_000);
    assert.equal(e.potType, 'unknown');
    const noMessage = ok(normaliseAttackEvent(statusEvent('hb-1', undefined, 'testpot'), noLookup));
    assert.deepEqual(noMessage.data, {});
    assert.equal(noMessage.potType, 'testpot');
  });

  it('falls back to the pot type lookup for an empty pot_type, caching it', () => {
    let calls = 0;
    const cache = new PotTypeCache((node, pot) => {
      calls++;
      return node === 'hb-1' && pot === 'pot-01' ? 'cowrie' : undefined;
    });
    assert.equal(ok(normaliseAttackEvent(statusEvent('hb-1', 'x'), cache)).potType, 'cowrie');
    assert.equal(ok(normaliseAttackEvent(statusEvent('hb-1', 'y'), cache)).potType, 'cowrie');
    assert.equal(calls, 1);
    assert.equal(ok(normaliseAttackEvent(statusEvent('hb-1', 'x', '', 'other'), cache)).potType, 'unknown');
    const throwing = new PotTypeCache(() => {
      throw new Error('db gone');
    });
    assert.equal(ok(normaliseAttackEvent(statusEvent('hb-1', 'x'), throwing)).potType, 'unknown');
  });

  it('prefers the pot type a live PotStatusUpdate reported over the lookup', () => {
    const cache = new PotTypeCache(() => 'from-db');
    assert.equal(ok(normaliseAttackEvent(statusEvent('hb-1', 'x'), cache)).potType, 'from-db');
    cache.learn('hb-1', 'pot-01', 'cowrie');
    assert.equal(ok(normaliseAttackEvent(statusEvent('hb-1', 'x'), cache)).potType, 'cowrie');
    assert.equal(ok(normaliseAttackEvent(statusEvent('hb-1', 'x', '', 'pot-02'), cache)).potType, 'from-db');
  });

  it('rejects real statuses and garbage without throwing', () => {
    const real = normaliseAttackEvent({ nodeName: 'n', receivedAt: 1, message: { type: 'PotStatusUpdate', pot_id: 'p', pot_type: 't', status: 'Running' } }, noLookup);
    assert.ok('error' in real);
    assert.ok('error' in normaliseAttackEvent({ nodeName: '', receivedAt: 1, message: potEvent('x').message }, noLookup));
    assert.ok('error' in normaliseAttackEvent({ nodeName: 'n', receivedAt: 1, message: null as never }, noLookup));
    assert.ok('error' in normaliseAttackEvent({ nodeName: 'n', receivedAt: 1, message: { type: 'NodeDrop' } as never }, noLookup));
  });

  it('keeps big integers from a lossless codec as strings instead of throwing', () => {
    const e = ok(normaliseAttackEvent(potEvent('n', { data: { big: 18446744073709551615n } as never }), noLookup));
    assert.equal(e.dataJson, '{"big":"18446744073709551615"}');
  });
});

describe('channel mapping', () => {
  it('defaults to <pot_type>.events plus apiary.events', () => {
    const ch = resolveChannels();
    assert.deepEqual(channelsForPotType(ch, 'cowrie'), ['cowrie.events', 'apiary.events']);
  });

  it('honours overrides, disabling and explicit per-type lists', () => {
    const ch = resolveChannels({ allEvents: null, perPotType: 'honeybee.{pot_type}', byPotType: { dionaea: ['dio.all', 'dio.extra'] } });
    assert.deepEqual(channelsForPotType(ch, 'cowrie'), ['honeybee.cowrie']);
    assert.deepEqual(channelsForPotType(ch, 'dionaea'), ['dio.all', 'dio.extra']);
    const none = resolveChannels({ allEvents: 'all', perPotType: null });
    assert.deepEqual(channelsForPotType(none, 'x'), ['all']);
    assert.throws(() => resolveChannels({ allEvents: 'x'.repeat(256) }));
    // a pot type too long for an hpfeeds channel name still reaches the all-events channel
    assert.deepEqual(channelsForPotType(resolveChannels(), 'p'.repeat(300)), ['apiary.events']);
  });

  it('routes classic dionaea event types to their channels', () => {
    const ch = resolveChannels();
    assert.equal(dionaeaChannelFor(ch, 'dionaea', 'dionaea.connections'), 'dionaea.connections');
    assert.equal(dionaeaChannelFor(ch, 'dionaea', 'capture'), 'dionaea.capture');
    assert.equal(dionaeaChannelFor(ch, 'dionaea', 'dionaea.whatever'), undefined);
    assert.equal(dionaeaChannelFor(ch, 'cowrie', 'dionaea.connections'), undefined);
    assert.equal(dionaeaChannelFor(resolveChannels({ dionaea: null }), 'dionaea', 'dionaea.connections'), undefined);
  });

  it('nodeAuthkeyFor: ident = node, random secret, pubchans = where its events go', () => {
    const a = nodeAuthkeyFor('hb-1');
    const b = nodeAuthkeyFor('hb-1');
    assert.equal(a.ident, 'hb-1');
    assert.notEqual(a.secret, b.secret);
    assert.ok(a.secret.length >= 32);
    assert.deepEqual(a.subchans, []);
    for (const c of ['apiary.events', 'cowrie.events', 'cowrie.sessions', 'dionaea.events', 'dionaea.connections', 'unknown.events']) {
      assert.ok(a.pubchans.includes(c), c);
    }
    const only = nodeAuthkeyFor('hb-2', { cowrieSessions: null }, { potTypes: ['testpot'] });
    assert.deepEqual(only.pubchans.sort(), ['apiary.events', 'testpot.events']);
    assert.throws(() => nodeAuthkeyFor(''));
  });
});

describe('timestamps of years 0000-0099', () => {
  it('keeps the year the node wrote (Date.UTC would read it as 19xx)', () => {
    for (const iso of ['0000-01-01T00:00:00.000Z', '0042-03-04T05:06:07.000Z', '0099-12-31T23:59:59.000Z', '0100-01-01T00:00:00.000Z']) {
      assert.equal(new Date(parseIsoTimestamp(iso)).toISOString(), iso);
    }
    assert.equal(new Date(parseIsoTimestamp('0042-03-04T05:06:07+01:00')).toISOString(), '0042-03-04T04:06:07.000Z');
  });
});
