// Session routing has no switch of its own: CLUSTER_ENABLED (implied by INSTANCE_ID) turns on the
// fan-out and session routing together (src/app/cluster.ts), so the two halves of "any core
// accepts anything" cannot be configured apart.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, configHelp, loadConfig } from '../../src/config/index.js';

describe('session routing config', () => {
  it('is the cluster switch: no SESSION_ROUTING option, one INSTANCE_ID', () => {
    assert.throws(() => loadConfig(['--session-routing'], { REDIS_URL: 'redis://h:1' }), ConfigError);
    assert.equal(loadConfig([], { SESSION_ROUTING: 'true', REDIS_URL: 'redis://h:1' }).clusterEnabled, false, 'the old variable turns nothing on');
    const on = loadConfig(['--instance-id', 'core-2'], { REDIS_URL: 'redis://127.0.0.1:6379' });
    assert.equal(on.clusterEnabled, true);
    assert.equal(on.instanceId, 'core-2');
    assert.equal(loadConfig(['--cluster'], { REDIS_URL: 'redis://h:1' }).instanceId, undefined, 'defaults to the host name at start');
    assert.throws(() => loadConfig(['--instance-id', 'x'.repeat(65)], { REDIS_URL: 'redis://h:1' }), ConfigError);
    const help = configHelp();
    assert.equal(help.match(/--instance-id/g)?.length, 1, 'one INSTANCE_ID option');
    assert.match(help, /--cluster  \/  CLUSTER_ENABLED[^\n]*\n[^\n]*node sessions are registered in Redis/);
  });
});
