import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, configHelp, describeConfig, loadConfig } from '../../src/config/index.js';

describe('config', () => {
  it('has laptop defaults', () => {
    const c = loadConfig([], {});
    assert.equal(c.apiPort, 8080);
    assert.equal(c.nodeTcpPort, 9001);
    assert.deepEqual(c.hpfeedsEndpoints, ['tcp:port=10000']);
    assert.equal(c.enrollment, 'approve');
    assert.match(c.dbPath, /data\/apiary\.sqlite$/);
    assert.equal(c.redisUrl, undefined);
  });
  it('flags win over environment; repeatable flags and lists', () => {
    const c = loadConfig(
      ['--api-port', '9999', '--hpfeeds-endpoint', 'tcp:port=1', '--hpfeeds-endpoint=tcp:port=2', '--metrics-public'],
      { API_PORT: '1234', ENROLLMENT_MODE: 'open', GIT_URL_ALLOW: 'https://a/, https://b/' },
    );
    assert.equal(c.apiPort, 9999);
    assert.equal(c.enrollment, 'open');
    assert.deepEqual(c.hpfeedsEndpoints, ['tcp:port=1', 'tcp:port=2']);
    assert.deepEqual(c.gitUrlAllowList, ['https://a/', 'https://b/']);
    assert.equal(c.metricsPublic, true);
  });
  it('rejects bad values with the variable named, never echoing secrets', () => {
    assert.throws(() => loadConfig([], { API_PORT: 'abc' }), (e: Error) => e instanceof ConfigError && /API_PORT/.test(e.message));
    assert.throws(() => loadConfig(['--bogus'], {}), /unknown option --bogus/);
    assert.throws(
      () => loadConfig([], { APIARY_ADMIN_TOKEN: 'short-secret' }),
      (e: Error) => /APIARY_ADMIN_TOKEN/.test(e.message) && !e.message.includes('short-secret'),
    );
    assert.throws(() => loadConfig([], { NODE_TLS_CERT: '/x.pem' }), /set together/);
    assert.throws(() => loadConfig([], { EVENT_CHANNEL_MAP: '{"cowrie": "x"}' }), /EVENT_CHANNEL_MAP/);
    for (const bad of ['proxy.example', '10.0.0.0/33', '::1/129', '10.0.0.1/8/1', '10.0.0.0/x']) {
      assert.throws(() => loadConfig([], { TRUST_PROXY: bad }), (e: Error) => e instanceof ConfigError && /TRUST_PROXY/.test(e.message) && e.message.includes(`'${bad}'`), bad);
    }
    assert.throws(() => loadConfig([], { SESSION_IDLE_MINUTES: '0' }), /SESSION_IDLE_MINUTES/);
  });
  it('console sessions: 30 min idle, 12 h absolute, no trusted proxy by default; TRUST_PROXY takes IPs, CIDRs and proxy-addr names', () => {
    const d = loadConfig([], {});
    assert.deepEqual([d.sessionIdleMinutes, d.sessionMaxHours, d.trustProxy], [30, 12, []]);
    const c = loadConfig(['--trust-proxy', '10.0.0.0/8', '--trust-proxy', 'loopback'], { TRUST_PROXY: 'ignored', SESSION_MAX_HOURS: '1' });
    assert.deepEqual(c.trustProxy, ['10.0.0.0/8', 'loopback']);
    assert.equal(c.sessionMaxHours, 1);
    assert.deepEqual(loadConfig([], { TRUST_PROXY: '192.0.2.1, fd00::/8' }).trustProxy, ['192.0.2.1', 'fd00::/8']);
  });
  it('PROXY protocol: off by default; PROXY_PROTOCOL_FROM takes IPs, CIDRs and range names; bad entries and timeouts are refused', () => {
    const d = loadConfig([], {});
    assert.deepEqual([d.proxyProtocolFrom, d.proxyProtocolTimeoutMs], [[], 3000]);
    const c = loadConfig(['--proxy-protocol-from', '10.0.0.0/8', '--proxy-protocol-from=127.0.0.1'], { PROXY_PROTOCOL_FROM: 'ignored', PROXY_PROTOCOL_TIMEOUT_MS: '500' });
    assert.deepEqual([c.proxyProtocolFrom, c.proxyProtocolTimeoutMs], [['10.0.0.0/8', '127.0.0.1'], 500]);
    assert.deepEqual(loadConfig([], { PROXY_PROTOCOL_FROM: '10.0.0.0/8,127.0.0.1 uniquelocal' }).proxyProtocolFrom, ['10.0.0.0/8', '127.0.0.1', 'uniquelocal']);
    for (const bad of ['haproxy', '10.0.0.0/33', '10.0.0.1/8/1']) {
      assert.throws(() => loadConfig([], { PROXY_PROTOCOL_FROM: bad }), (e: Error) => e instanceof ConfigError && /PROXY_PROTOCOL_FROM/.test(e.message) && e.message.includes(`'${bad}'`), bad);
    }
    assert.throws(() => loadConfig([], { PROXY_PROTOCOL_TIMEOUT_MS: '50' }), /PROXY_PROTOCOL_TIMEOUT_MS/);
    assert.match(configHelp(), /--proxy-protocol-from \(repeatable\)  \/  PROXY_PROTOCOL_FROM \(default: none\)/);
  });
  it('DATABASE_URL: postgres:// or postgresql:// with a host, hidden when described; unset = the SQLite file', () => {
    assert.equal(loadConfig([], {}).databaseUrl, undefined);
    assert.equal(loadConfig([], { DATABASE_URL: 'postgres://u:secretpw@db:5432/apiary' }).databaseUrl, 'postgres://u:secretpw@db:5432/apiary');
    assert.equal(loadConfig(['--database-url', 'postgresql://u@127.0.0.1/apiary'], {}).databaseUrl, 'postgresql://u@127.0.0.1/apiary');
    for (const bad of ['mysql://u@db/apiary', 'db:5432/apiary', 'postgres:///apiary', 'not a url']) {
      assert.throws(() => loadConfig([], { DATABASE_URL: bad }), (e: Error) => e instanceof ConfigError && /DATABASE_URL/.test(e.message) && !e.message.includes(bad), bad);
    }
    const shown = JSON.stringify(describeConfig(loadConfig([], { DATABASE_URL: 'postgres://u:secretpw@db/apiary' })));
    assert.ok(!shown.includes('secretpw') && shown.includes('"databaseUrl":"(set)"'));
  });
  it('describeConfig hides secrets; help lists every option', () => {
    const c = loadConfig([], { REDIS_URL: 'redis://:pw@127.0.0.1:6380', APIARY_ADMIN_TOKEN: 'x'.repeat(32) });
    const shown = JSON.stringify(describeConfig(c));
    assert.ok(!shown.includes('pw@'));
    assert.ok(!shown.includes('x'.repeat(32)));
    assert.match(configHelp(), /--node-tcp-port\s+\/\s+NODE_TCP_PORT \(default: 9001\)/);
  });
});
