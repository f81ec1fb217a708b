// Cluster options: off by default (one core: no cluster part, no extra Redis traffic), turned on by
// CLUSTER_ENABLED or implied by INSTANCE_ID, and refused without a shared REDIS_URL.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, configHelp, loadConfig } from '../../src/config/index.js';

describe('cluster config', () => {
  it('is off by default', () => {
    const c = loadConfig([], {});
    assert.equal(c.clusterEnabled, false);
    assert.equal(c.instanceId, undefined);
    assert.equal(c.clusterLeaseMs, 15_000);
    assert.equal(c.clusterFanoutMaxLen, 2000);
  });
  it('CLUSTER_ENABLED or INSTANCE_ID turn it on, given REDIS_URL', () => {
    assert.equal(loadConfig(['--cluster'], { REDIS_URL: 'redis://r:6379' }).clusterEnabled, true);
    const c = loadConfig([], { INSTANCE_ID: 'core-2', REDIS_URL: 'redis://r:6379', CLUSTER_LEASE_MS: '5000' });
    assert.equal(c.clusterEnabled, true);
    assert.equal(c.instanceId, 'core-2');
    assert.equal(c.clusterLeaseMs, 5000);
  });
  it('refuses cluster mode without REDIS_URL, bad instance ids and too short leases', () => {
    assert.throws(() => loadConfig([], { INSTANCE_ID: 'a' }), (e: Error) => e instanceof ConfigError && /REDIS_URL/.test(e.message));
    assert.throws(() => loadConfig([], { CLUSTER_ENABLED: 'true' }), /REDIS_URL/);
    assert.throws(() => loadConfig([], { INSTANCE_ID: 'a b', REDIS_URL: 'redis://r' }), /INSTANCE_ID/);
    assert.throws(() => loadConfig([], { INSTANCE_ID: 'a', REDIS_URL: 'redis://r', CLUSTER_LEASE_MS: '10' }), /CLUSTER_LEASE_MS/);
  });
  it('documents the options in --help', () => {
    for (const flag of ['--cluster', '--instance-id', '--cluster-lease-ms', '--cluster-fanout-maxlen']) assert.ok(configHelp().includes(flag), flag);
  });
});
