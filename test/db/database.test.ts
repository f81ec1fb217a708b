import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { openDatabase } from '../../src/db/index.js';
import { tempDir } from '../helpers/tmp.js';

describe('database', () => {
  const dir = tempDir();
  after(() => dir.cleanup());

  it('creates the file, applies migrations once, and reopens with data intact', () => {
    const path = join(dir.path, 'nested', 'apiary.sqlite');
    const first = openDatabase(path);
    const tablesCreated = first.sqlite.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE '\\_\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
    assert.deepEqual(tablesCreated.map((t) => t.name), [
      'alert_channels', 'alert_rules',
      'api_tokens',
      'attack_asn', 'attack_ignored', 'attack_meta', 'attack_minute', 'attack_rollup_day', 'attack_rollup_hour',
      'attack_session_steps', 'attack_sessions', 'attack_top_day', 'attack_top_day_floor', 'attack_top_hour', 'attack_top_hour_floor', 'attacker_facts', 'attackers',
      'audit_log', 'authkeys', 'commands', 'events', 'events_by_node', 'events_by_type', 'events_side_state', 'node_log', 'nodes', 'pots', 'unknown_registrations', 'user_sessions', 'users',
    ]);
    assert.equal(first.sqlite.pragma('journal_mode', { simple: true }), 'wal');
    first.sqlite.prepare("INSERT INTO node_log (node_name, kind, at) VALUES ('n', 'test', 1)").run();
    first.close();
    const second = openDatabase(path);
    assert.equal((second.sqlite.prepare('SELECT count(*) AS n FROM node_log').get() as { n: number }).n, 1);
    second.close();
  });
});
