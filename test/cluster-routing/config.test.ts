// The session routing options: off by default, and on only with a shared Redis and a valid id.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';

describe('session routing config', () => {
  it('is off by default and needs REDIS_URL when on; INSTANCE_ID is a short name', () => {
    assert.equal(loadConfig([], {}).sessionRouting, false);
    assert.throws(() => loadConfig(['--session-routing'], {}), (err: Error) => err instanceof ConfigError && /SESSION_ROUTING needs REDIS_URL/.test(err.message));
    const on = loadConfig(['--session-routing', '--instance-id', 'core-2'], { REDIS_URL: 'redis://127.0.0.1:6379' });
    assert.equal(on.sessionRouting, true);
    assert.equal(on.instanceId, 'core-2');
    assert.equal(loadConfig([], { SESSION_ROUTING: 'true', REDIS_URL: 'redis://h:1' }).instanceId, undefined, 'defaults to the host name at start');
    assert.throws(() => loadConfig(['--instance-id', 'a b'], {}), ConfigError);
    assert.throws(() => loadConfig(['--instance-id', 'x'.repeat(65)], {}), ConfigError);
  });
});
