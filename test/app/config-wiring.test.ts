// Every configuration option reaches the part of the composed core it configures: one core is
// started with a non-default value for every option, and each value is observed in behaviour
// (or, where behaviour would take minutes to show, on the part that received it).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildCore } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { HpfeedsClient } from '../../src/hpfeeds/index.js';
import { startTestCore, until, type TestCore } from '../helpers/core.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';
import { tempDir } from '../helpers/tmp.js';
import { metricValue, parseAck, registration, statusUpdate, tlsClient, type TestClient } from '../nodes/harness.js';
import { closedByServer, connectFrom } from '../proxy-protocol/client.js';

describe('config wiring into the composed core', () => {
  let t: TestCore;
  let cert: TestCertificate;
  const elsewhere = tempDir('apiary-db-');
  const presetToken = 'preset-admin-token-0123456789abcdef';
  const clients: TestClient[] = [];
  const hp: HpfeedsClient[] = [];

  before(async () => {
    cert = makeTestCertificate();
    const authFile = join(elsewhere.path, 'auth.json');
    writeFileSync(authFile, JSON.stringify({ 'from-file': { owner: 'file', secret: 'file-secret-123456', pubchans: [], subchans: ['x'] } }));
    t = await startTestCore({
      args: [
        '--metrics-public',
        '--db', join(elsewhere.path, 'custom.sqlite'),
        '--log-level', 'error',
        '--node-tls-cert', cert.certPath,
        '--node-tls-key', cert.keyPath,
        '--node-line-max-bytes', '4096',
        '--enrollment', 'open',
        '--heartbeat-interval', '1',
        '--heartbeat-stale-factor', '2',
        '--hpfeeds-name', 'wired-broker',
        '--hpfeeds-auth-file', authFile,
        '--hpfeeds-send-buffer-bytes', '123456',
        '--hpfeeds-backpressure-deadline', '3',
        '--hpfeeds-flush-linger-ms', '7',
        '--command-ttl', '600',
        '--command-answer-timeout', '1',
        '--git-url-allow', 'https://git.example/',
        '--event-retention-days', '2',
        '--event-max-rows', '5',
        '--event-all-channel', 'everything',
        '--event-channel-map', '{"cowrie":["c.one","c.two"]}',
        '--session-idle-minutes', '5',
        '--session-max-hours', '2',
        '--trust-proxy', '127.0.0.1',
        // Connections from 127.0.0.2 only (the tests' other connections come from 127.0.0.1).
        '--proxy-protocol-from', '127.0.0.2/32',
        '--proxy-protocol-timeout-ms', '700',
      ],
      env: { APIARY_ADMIN_TOKEN: presetToken },
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const c of hp) await c.close(1000).catch(() => {});
    await t?.close();
    cert?.cleanup();
    elsewhere.cleanup();
  });

  const admin = (method: string, path: string, body?: unknown) => t.api(method, path, { token: presetToken, body });

  it('listeners: API, node TCP with TLS, hpfeeds, each on 127.0.0.1 at the port it was given (0 = resolved)', () => {
    assert.equal(t.core.addresses.api.host, '127.0.0.1');
    assert.ok(t.core.addresses.api.port > 0);
    assert.equal(t.core.addresses.nodeTcp.host, '127.0.0.1');
    assert.equal(t.core.addresses.nodeTcp.tls, true);
    assert.equal(t.core.addresses.hpfeeds.length, 1);
    assert.equal(t.core.addresses.hpfeeds[0]!.host, '127.0.0.1');
  });

  it('METRICS_PUBLIC serves /metrics without a token, and OpenAPI says so', async () => {
    const res = await t.api('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.body), /apiary_node_/);
    const spec = (await t.api('GET', '/docs/json')).body;
    assert.equal(spec.paths['/metrics'].get['x-role'], undefined);
    assert.deepEqual(spec.paths['/metrics'].get.security, []);
  });

  it('the SQLite WAL is copied back by the checkpointer thread, not by commits (metrics)', async () => {
    // Migrations and the first writes left pages in the WAL; no connection of the core checkpoints.
    const pages = async () => Number(/^apiary_sqlite_wal_checkpointed_pages_total (\d+)$/m.exec(String((await t.api('GET', '/metrics')).body))?.[1] ?? 0);
    await until(async () => (await pages()) > 0, 'the checkpointer to copy pages back');
    assert.equal(t.core.database?.sqlite.pragma('wal_autocheckpoint', { simple: true }), 0, 'the main connection never checkpoints');
    assert.match(String((await t.api('GET', '/metrics')).body), /^apiary_sqlite_wal_pages \d+$/m);
  });

  it('APIARY_DB, APIARY_ADMIN_TOKEN, APIARY_DATA_DIR, LOG_LEVEL, REDIS_URL', async () => {
    assert.ok(existsSync(join(elsewhere.path, 'custom.sqlite')), 'the database is where --db says');
    assert.equal(existsSync(join(t.dataDir, 'apiary.sqlite')), false, 'and not in the data dir');
    assert.equal((await admin('GET', '/api/v1/tokens')).status, 200, 'the preset admin token works');
    // The preset token is the bootstrap admin: written to <data-dir>/admin-token like a generated one.
    assert.equal(t.core.adminTokenFile, join(t.dataDir, 'admin-token'));
    assert.equal(readFileSync(join(t.dataDir, 'admin-token'), 'utf8').trim(), presetToken);
    assert.equal(t.core.app.log.level, 'error');
    assert.equal(t.core.redisUrl, t.redis.url);
  });

  it('SESSION_IDLE_MINUTES, SESSION_MAX_HOURS and TRUST_PROXY: session lifetimes; forwarded address and https believed from the proxy', async () => {
    assert.equal((await admin('POST', '/api/v1/users', { username: 'wired-user', role: 'viewer', password: 'wired password 123' })).status, 201);
    const before = Date.now();
    const res = await t.api('POST', '/api/v1/session', {
      body: { username: 'wired-user', password: 'wired password 123' },
      headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(Math.abs(res.body.expires_at - (before + 2 * 3_600_000)) < 5000, 'absolute: 2 h');
    assert.ok(Math.abs(res.body.idle_expires_at - (before + 5 * 60_000)) < 5000, 'idle: 5 min');
    const cookie = (res.headers.get('set-cookie') ?? '').split(';').map((a) => a.trim());
    assert.ok(cookie.includes('Secure') && cookie.includes('Max-Age=7200'), cookie.join('; '));
    const login = (await admin('GET', '/api/v1/audit?action=session.login')).body.entries[0];
    assert.equal(login.source, '203.0.113.9');
  });

  it('PROXY_PROTOCOL_FROM and PROXY_PROTOCOL_TIMEOUT_MS: node TLS and hpfeeds connections from the proxy give the client address; a slow header is cut at 700 ms', async () => {
    // A node behind the proxy: the header, then TLS over the same connection.
    const raw = await connectFrom(t.core.addresses.nodeTcp.port, '127.0.0.2');
    raw.write('PROXY TCP4 198.51.100.61 10.0.0.1 40404 9001\r\n');
    const node = await tlsClient(t.core.addresses.nodeTcp.port, cert.ca, { socket: raw });
    clients.push(node);
    node.send(registration('wired-proxied', '77'));
    assert.equal(parseAck(await node.next(10_000)).accepted, true);
    await until(async () => (await admin('GET', '/api/v1/nodes/wired-proxied')).body?.remoteAddress === '198.51.100.61', 'the node recorded with the address in the header');
    // An hpfeeds client behind the proxy: the broker names it by the header's address.
    const hpRaw = await connectFrom(t.core.addresses.hpfeeds[0]!.port, '127.0.0.2');
    hpRaw.write('PROXY TCP4 198.51.100.62 10.0.0.1 50505 10000\r\n');
    await until(async () => (await metricValue(t.core.registry, 'apiary_proxy_protocol_headers_total', { listener: 'hpfeeds', version: '1', command: 'proxy' })) === 1, 'the hpfeeds header read');
    hpRaw.destroy();
    // A header that never completes: closed at the configured timeout.
    const slow = await connectFrom(t.core.addresses.hpfeeds[0]!.port, '127.0.0.2');
    const started = Date.now();
    slow.write('PROXY TCP4 ');
    await closedByServer(slow);
    const waited = Date.now() - started;
    assert.ok(waited >= 650 && waited < 5000, `closed after ${waited} ms`);
    assert.equal(await metricValue(t.core.registry, 'apiary_proxy_protocol_rejected_total', { listener: 'hpfeeds', reason: 'timeout' }), 1);
  });

  it('hpfeeds: broker name, auth file, send buffer, back-pressure deadline and flush linger', async () => {
    const c = new HpfeedsClient({ host: '127.0.0.1', port: t.core.addresses.hpfeeds[0]!.port, ident: 'from-file', secret: 'file-secret-123456', reconnect: false });
    hp.push(c);
    c.on('error', () => {});
    await c.connect();
    assert.equal(c.brokerName, 'wired-broker');
    assert.equal((await t.core.broker.authStore.get('from-file'))?.owner, 'file');
    assert.equal(t.core.broker.sendLimits.maxSendBufferBytes, 123456);
    assert.equal(t.core.broker.sendLimits.backpressureDeadlineMs, 3000);
    assert.equal(t.core.broker.flushLingerMs, 7);
  });

  it('events: all-events channel and pot-type channel map; retention by age and by row count', async () => {
    assert.deepEqual([...t.core.events.channelsFor('cowrie')].sort(), ['c.one', 'c.two', 'everything']);
    assert.deepEqual([...t.core.events.channelsFor('dionaea')].sort(), ['dionaea.events', 'everything']);
    const insert = t.core.database!.sqlite.prepare(
      "INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES ('n', 'p', 'cowrie', 'x', ?, '{}', ?)",
    );
    const day = 86_400_000;
    const now = Date.now();
    insert.run(now - 3 * day, now - 3 * day); // older than 2 days (kept by the 30-day default)
    for (let i = 0; i < 7; i++) insert.run(now, now - i); // 7 fresh rows, 2 above the 5-row cap
    await t.core.events.sweepRetention();
    const rows = t.core.database!.sqlite.prepare('SELECT received_at FROM events ORDER BY id').all() as { received_at: number }[];
    assert.equal(rows.length, 5);
    assert.ok(rows.every((r) => r.received_at > now - day));
  });

  it('nodes: open enrollment over TLS, line cap, heartbeat interval x stale factor; commands: TTL, answer timeout, git allow-list', async () => {
    assert.equal(t.core.gateway.enrollmentMode, 'open');
    const connect = async () => {
      const c = await tlsClient(t.core.addresses.nodeTcp.port, cert.ca);
      clients.push(c);
      return c;
    };
    // First contact enrolls (open) and gets a key.
    const mute = await connect();
    mute.send(registration('wired-1', '41'));
    const ack = parseAck(await mute.next(10_000));
    assert.equal(ack.accepted, true, ack.message);
    assert.ok(ack.totp_key);

    // A line above 4096 bytes is discarded and counted; the session stays.
    const before = await metricValue(t.core.registry, 'apiary_node_oversized_lines_total');
    mute.write(`${'x'.repeat(5000)}\n`);
    await until(async () => (await metricValue(t.core.registry, 'apiary_node_oversized_lines_total')) > before, 'the oversized line to be counted');
    assert.equal(mute.isClosed(), false);

    // Commands: expiry = created + 600 s; a node that never answers fails after 1 s (default 30 s).
    const keepAlive = setInterval(() => mute.send(statusUpdate('41', 'Running')), 300);
    try {
      const cmd = await admin('POST', '/api/v1/nodes/wired-1/commands', { command: { StopPot: 'never-answered' } });
      assert.equal(cmd.status, 201, JSON.stringify(cmd.body));
      assert.equal(Date.parse(cmd.body.expiresAt) - Date.parse(cmd.body.createdAt), 600_000);
      let view = cmd.body;
      await until(async () => {
        view = (await admin('GET', `/api/v1/commands/${cmd.body.id}`)).body;
        return view.status === 'failed';
      }, 'the unanswered command to time out', 15_000).catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(view)}`);
      });
      assert.equal(view.result.reason, 'timeout');

      const allowed = await admin('POST', '/api/v1/nodes/wired-1/commands', { command: { InstallPot: { pot_id: 'g1', honeypot_type: 'cowrie', auto_start: false, git_url: 'https://git.example/pots/cowrie.git' } } });
      assert.equal(allowed.status, 201, JSON.stringify(allowed.body));
      const refused = await admin('POST', '/api/v1/nodes/wired-1/commands', { command: { InstallPot: { pot_id: 'g2', honeypot_type: 'cowrie', auto_start: false, git_url: 'https://elsewhere.example/x.git' } } });
      assert.equal(refused.status, 400);
    } finally {
      clearInterval(keepAlive);
    }

    // A node silent for 1 s x 2 goes offline (the default would wait 90 s).
    const quiet = await connect();
    quiet.send(registration('wired-2', '42'));
    assert.equal(parseAck(await quiet.next(10_000)).accepted, true);
    assert.ok(t.core.gateway.isOnline('wired-2'));
    await until(() => !t.core.gateway.isOnline('wired-2'), 'the silent node to go offline', 15_000);
  });
});

describe('DATABASE_URL', () => {
  it('an unreachable server stops startup with a clear line that hides the password, before anything listens', async () => {
    const dir = tempDir('apiary-pgurl-');
    try {
      const config = loadConfig(['--api-port', '0', '--api-host', '127.0.0.1'], { APIARY_DATA_DIR: dir.path, LOG_LEVEL: 'silent', DATABASE_URL: 'postgres://u:pw@127.0.0.1:1/apiary' });
      await assert.rejects(buildCore(config), (e: Error) => /cannot open the PostgreSQL database of DATABASE_URL \/ --database-url: .*ECONNREFUSED/.test(e.message) && !e.message.includes('pw'));
      assert.ok(!existsSync(join(dir.path, 'apiary.sqlite')), 'no SQLite file was made instead');
    } finally {
      dir.cleanup();
    }
  });
});

describe('REDIS_SERVER_BIN and the data dir', () => {
  it('without REDIS_URL the core starts REDIS_SERVER_BIN under <data-dir>/redis, and says clearly when it cannot', async () => {
    const dir = tempDir('apiary-nobin-');
    try {
      const config = loadConfig(['--api-port', '0', '--api-host', '127.0.0.1', '--node-tcp-port', '0', '--node-tcp-host', '127.0.0.1', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'], {
        APIARY_DATA_DIR: dir.path,
        LOG_LEVEL: 'silent',
        REDIS_SERVER_BIN: join(dir.path, 'no-such-redis-server'),
      });
      assert.equal(config.dbPath, join(dir.path, 'apiary.sqlite'));
      await assert.rejects(buildCore(config), /no-such-redis-server/);
      assert.ok(existsSync(join(dir.path, 'redis')), 'the private redis dir is under the data dir');
      assert.ok(existsSync(join(dir.path, 'apiary.sqlite')), 'the default database is in the data dir');
    } finally {
      dir.cleanup();
    }
  });
});
