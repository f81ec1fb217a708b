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
  });
  it('describeConfig hides secrets; help lists every option', () => {
    const c = loadConfig([], { REDIS_URL: 'redis://:pw@127.0.0.1:6380', APIARY_ADMIN_TOKEN: 'x'.repeat(32) });
    const shown = JSON.stringify(describeConfig(c));
    assert.ok(!shown.includes('pw@'));
    assert.ok(!shown.includes('x'.repeat(32)));
    assert.match(configHelp(), /--node-tcp-port\s+\/\s+NODE_TCP_PORT \(default: 9001\)/);
  });
});
