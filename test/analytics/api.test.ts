// The analytics routes on the real HTTP server, fed through the real events service: events are
// ingested as the node gateway hands them over, the writer runs the analytics ingest in its batch
// transaction, and every answer is read back over HTTP. The STIX bundle is validated against the
// OASIS STIX 2.1 JSON schemas (vendored under test/fixtures/stix2.1-schemas).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { analyticsQueryModules, analyticsRoutes, analyticsWriterHook, geoSources, pooledAttackReader } from '../../src/analytics/index.js';
import { createHttpServer } from '../../src/api/index.js';
import { ReadPool } from '../../src/db/index.js';
import { createEventService, eventQueryModules, SqliteEventStore, type EventService } from '../../src/events/index.js';
import { newRegistry, potEvent, silentLogger, testDb, type TestDb } from '../events/helpers.js';

const SCHEMA_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '../fixtures/stix2.1-schemas');
const NOW = Date.parse('2026-11-30T18:00:00Z');
const T0 = Date.parse('2026-11-30T12:00:00Z');

function stixValidator() {
  const ajv = new Ajv2020({ strict: false, allErrors: true, unicodeRegExp: false });
  (addFormats as unknown as (a: unknown) => void)(ajv);
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : d.name.endsWith('.json') ? [join(dir, d.name)] : []));
  let bundleId = '';
  for (const file of walk(SCHEMA_DIR)) {
    const schema = JSON.parse(readFileSync(file, 'utf8')) as { $id: string };
    ajv.addSchema(schema);
    if (file.endsWith('common/bundle.json')) bundleId = schema.$id;
  }
  return ajv.getSchema(bundleId)!;
}

describe('analytics API', () => {
  let db: TestDb;
  let events: EventService;
  let readPool: ReadPool;
  let store: SqliteEventStore;
  let app: FastifyInstance;
  let base: string;

  const session = (node: string, ip: string, id: string, t: number, steps: [string, Record<string, unknown>][]) => {
    const all: [string, Record<string, unknown>][] = [
      ['cowrie.session.connect', { src_port: 40000, dst_ip: '10.0.0.5', dst_port: 22, protocol: 'ssh' }],
      ...steps,
      ['cowrie.session.closed', { duration: 5 }],
    ];
    all.forEach(([eventid, extra], i) => {
      const ts = new Date(t + i * 1000).toISOString();
      events.ingest(potEvent(node, { pot_id: 'cowrie-1', pot_type: 'cowrie', event_type: eventid, timestamp: ts, data: { eventid, session: id, src_ip: ip, timestamp: ts, ...extra } }, t));
    });
  };

  before(async () => {
    db = testDb();
    // The core's own wiring: the ingest is the writer thread's batch hook, the reads run in the read pool.
    // flushMs 0: rollups are written with each batch, so they are complete once flush() resolves.
    const settings = { ignoreCidrs: ['203.0.113.0/24'], scannerCidrs: ['45.148.10.0/24 test-scanner'], bruteforceMinFailures: 3, flushMs: 0 };
    readPool = new ReadPool({ dbPath: db.path, modules: { ...eventQueryModules(), ...analyticsQueryModules({ bruteforceMinFailures: 3 }) }, size: 1 });
    store = new SqliteEventStore({ dbPath: db.path, readPool, batchHooks: [{ url: analyticsWriterHook(), options: settings }] });
    events = createEventService({ store, logger: silentLogger(), registry: newRegistry(), batch: { maxDelayMs: 1 } });
    session('hb-a', '::ffff:45.148.10.242', 'aaa111', T0, [
      ['cowrie.login.failed', { username: 'root', password: '123456' }],
      ['cowrie.login.failed', { username: 'root', password: 'admin' }],
      ['cowrie.login.failed', { username: 'admin', password: 'admin' }],
      ['cowrie.login.success', { username: 'root', password: 'hunter2' }],
      ['cowrie.command.input', { input: 'uname -a' }],
      ['cowrie.session.file_download', { url: "http://198.51.100.7/x.sh?a='b'", shasum: 'ab'.repeat(32) }],
    ]);
    session('hb-b', '8.8.8.8', 'bbb222', T0 + 3_600_000, [['cowrie.login.failed', { username: 'root', password: '123456' }]]);
    session('hb-b', '203.0.113.5', 'ccc333', T0, [['cowrie.login.failed', { username: 'ignored', password: 'ignored' }]]);
    assert.ok(await events.flush());
    app = await createHttpServer();
    await app.register(analyticsRoutes, {
      prefix: '/api/v1',
      reader: pooledAttackReader(readPool),
      geoSources: geoSources({}),
      now: () => NOW,
      eventById: async (id) => {
        const e = await events.get(id);
        return e && { id: e.id, node: e.node, potId: e.pot_id, potType: e.pot_type, eventType: e.event_type, timestamp: Date.parse(e.timestamp), data: e.data };
      },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/v1`;
  });

  after(async () => {
    await events.close();
    await store.close();
    await readPool.close();
    await app.close();
    db.cleanup();
  });

  const get = async (path: string) => {
    const res = await fetch(base + path);
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', text, body: text.startsWith('{') ? JSON.parse(text) : undefined };
  };

  it('top and timeline answer from the rollups written in the events transaction', async () => {
    const top = await get('/attacks/top?by=credential&limit=2');
    assert.equal(top.status, 200);
    assert.deepEqual(top.body.items[0], { key: '["root","123456"]', count: 2, username: 'root', password: '123456' });
    assert.equal(top.body.exact, true);
    assert.equal(top.body.max_undercount, 0);
    const ips = await get('/attacks/top?by=src_ip');
    assert.deepEqual(ips.body.items.map((i: { key: string }) => i.key), ['45.148.10.242', '8.8.8.8'], 'mapped address folded; ignored range absent');
    const asn = await get('/attacks/top?by=asn');
    assert.ok(asn.body.items.some((i: { key: string; as_org: string }) => i.key === '15169' && i.as_org === 'Google LLC'));
    const country = await get(`/attacks/top?by=country&node=hb-b`);
    assert.deepEqual(country.body.items, [{ key: 'US', count: 3 }]);
    const tl = await get(`/attacks/timeline?bucket=hour&since=${T0}&until=${T0 + 2 * 3_600_000}`);
    assert.deepEqual(tl.body.series[0].points, [
      { start: new Date(T0).toISOString(), count: 8 },
      { start: new Date(T0 + 3_600_000).toISOString(), count: 3 },
    ]);
    const bad = await get('/attacks/top?by=nope');
    assert.equal(bad.status, 400);
    const inverted = await get(`/attacks/top?by=src_ip&since=${T0}&until=${T0 - 1}`);
    assert.equal(inverted.status, 400);
  });

  it('attacker profile: geo, tags, credentials, commands, sessions', async () => {
    const r = await get('/attackers/' + encodeURIComponent('::ffff:45.148.10.242'));
    assert.equal(r.status, 200);
    assert.equal(r.body.ip, '45.148.10.242');
    assert.equal(r.body.events, 8);
    assert.equal(r.body.scanner, 'test-scanner');
    assert.deepEqual(r.body.tags, ['scanner', 'bruteforce', 'logged_in', 'downloaded', 'ran_commands']);
    assert.equal(r.body.credentials.length, 4);
    assert.deepEqual(r.body.commands.map((c: { value: string }) => c.value), ['uname -a']);
    assert.equal(r.body.sessions[0].session, 'aaa111');
    assert.equal(r.body.geo.scope, 'public');
    assert.equal((await get('/attackers/10.9.9.9')).status, 404);
    assert.equal((await get('/attackers/not-an-ip')).status, 400);
  });

  it('sessions list and detail with steps in order; normalised record of an event', async () => {
    const list = await get('/sessions?limit=1');
    assert.equal(list.body.sessions.length, 1);
    assert.ok(list.body.next_cursor);
    const next = await get('/sessions?limit=5&cursor=' + list.body.next_cursor);
    assert.equal(next.body.sessions.length, 1, 'ignored source has no session');
    const a = [...list.body.sessions, ...next.body.sessions].find((s: { session: string }) => s.session === 'aaa111');
    const detail = await get('/sessions/' + a.id);
    assert.deepEqual(detail.body.steps.map((s: { kind: string; value: string }) => `${s.kind}:${s.value}`), [
      'login.failed:root', 'login.failed:root', 'login.failed:admin', 'login.success:root', 'command:uname -a', "download:http://198.51.100.7/x.sh?a='b'",
    ]);
    assert.equal(detail.body.username, 'root');
    assert.equal(detail.body.password, 'hunter2');
    assert.equal(detail.body.closed, true);
    const rec = await get('/attacks/records/2');
    assert.equal(rec.body.ssh_username, 'root');
    assert.equal(rec.body.src_ip, '45.148.10.242');
    assert.equal(rec.body.dest_port, null);
  });

  it('intel feeds: JSON in the MHN/CHN item shape, CSV, TXT, credentials, tag and min_count filters', async () => {
    const json = await get(`/intel/ips?since=${T0}`);
    assert.equal(json.status, 200);
    assert.match(json.type, /application\/json/);
    assert.deepEqual(Object.keys(json.body.data[0]).sort(), ['count', 'destination_port', 'honeypot', 'meta', 'protocol', 'source_ip']);
    assert.deepEqual(json.body.data[0], {
      source_ip: '45.148.10.242', count: 8, destination_port: 22, honeypot: 'cowrie', protocol: 'ssh',
      meta: {
        first_seen: new Date(T0).toISOString(), last_seen: new Date(T0 + 7000).toISOString(), country: json.body.data[0].meta.country,
        asn: json.body.data[0].meta.asn, as_org: json.body.data[0].meta.as_org, tags: ['scanner', 'bruteforce', 'logged_in', 'downloaded', 'ran_commands'],
      },
    });
    const txt = await get(`/intel/ips?format=txt&since=${T0}`);
    assert.match(txt.type, /text\/plain/);
    assert.equal(txt.text, '45.148.10.242\n8.8.8.8\n');
    const csv = await get(`/intel/ips?format=csv&since=${T0}&min_count=5`);
    assert.match(csv.type, /text\/csv/);
    const lines = csv.text.trim().split('\r\n');
    assert.equal(lines[0], 'source_ip,count,destination_port,honeypot,protocol,first_seen,last_seen,country,asn,as_org,tags');
    assert.equal(lines.length, 2);
    assert.ok(lines[1]!.startsWith('45.148.10.242,8,22,cowrie,ssh,'));
    const tagged = await get(`/intel/ips?format=txt&since=${T0}&tag=logged_in`);
    assert.equal(tagged.text, '45.148.10.242\n');
    const creds = await get(`/intel/credentials?since=${T0}`);
    assert.deepEqual(creds.body.data[0], { username: 'root', password: '123456', count: 2 });
    const credCsv = await get(`/intel/credentials?format=csv&since=${T0}`);
    assert.ok(credCsv.text.startsWith('username,password,count\r\nroot,123456,2\r\n'));
  });

  it('STIX 2.1 bundle validates against the OASIS STIX 2.1 JSON schemas, with valid patterns', async () => {
    const r = await get(`/intel/stix?since=${T0}`);
    assert.equal(r.status, 200);
    assert.match(r.type, /application\/stix\+json/);
    const bundle = r.body;
    const validate = stixValidator();
    const ok = validate(bundle);
    assert.ok(ok, JSON.stringify(validate.errors?.slice(0, 5), null, 1));
    const byType = (t: string) => bundle.objects.filter((o: { type: string }) => o.type === t);
    assert.equal(byType('identity').length, 1);
    assert.equal(byType('indicator').length, 4, '2 addresses, 1 URL, 1 hash');
    assert.deepEqual(byType('indicator').map((i: { pattern: string }) => i.pattern).sort(), [
      "[file:hashes.'SHA-256' = '" + 'ab'.repeat(32) + "']",
      "[ipv4-addr:value = '45.148.10.242']",
      "[ipv4-addr:value = '8.8.8.8']",
      "[url:value = 'http://198.51.100.7/x.sh?a=\\'b\\'']",
    ]);
    const sighting = byType('sighting').find((s: { sighting_of_ref: string }) =>
      byType('indicator').find((i: { id: string; pattern: string }) => i.id === s.sighting_of_ref && i.pattern.includes('45.148.10.242')));
    assert.equal(sighting.count, 8);
    assert.equal(sighting.first_seen, new Date(T0).toISOString());
    // A broken object must fail the same schema check (the check can fail).
    const broken = structuredClone(bundle);
    delete broken.objects[1].pattern_type;
    broken.objects.find((o: { type: string }) => o.type === 'indicator').pattern_type = undefined;
    delete broken.objects.find((o: { type: string }) => o.type === 'indicator').pattern_type;
    assert.equal(validate(broken), false);
  });

  it('credits name the data and its license', async () => {
    const r = await get('/attacks/credits');
    assert.match(r.body.country, /DB-IP/);
    assert.match(r.body.notice, /CC BY 4\.0/);
  });
});
