// Alert rules and channels in SQLite (tables alert_rules and alert_channels, migration
// drizzle/0008_alerts.sql); each method runs synchronously and resolves at once. Lists and params
// are JSON text; channel secrets sit in their own column, in the 0600 database file like node TOTP
// and hpfeeds secrets.
import type { DatabaseHandle } from '../db/index.js';
import type { AlertStore } from './store.js';
import { channel, rule, type ChannelRow, type RuleRow } from './rows.js';
import type { AlertChannel, AlertRule } from './types.js';

export class SqliteAlertStore implements AlertStore {
  private readonly s;

  constructor(database: DatabaseHandle) {
    const db = database.sqlite;
    this.s = {
      rules: db.prepare<[], RuleRow>('SELECT * FROM alert_rules ORDER BY created_at, id'),
      rule: db.prepare<[string], RuleRow>('SELECT * FROM alert_rules WHERE id = ?'),
      putRule: db.prepare(
        `INSERT INTO alert_rules (id, name, kind, params, channels, dedup_seconds, quiet_seconds, enabled, created_at, updated_at)
         VALUES (@id, @name, @kind, @params, @channels, @dedup_seconds, @quiet_seconds, @enabled, @created_at, @updated_at)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind, params = excluded.params, channels = excluded.channels,
           dedup_seconds = excluded.dedup_seconds, quiet_seconds = excluded.quiet_seconds, enabled = excluded.enabled, updated_at = excluded.updated_at`,
      ),
      deleteRule: db.prepare<[string]>('DELETE FROM alert_rules WHERE id = ?'),
      channels: db.prepare<[], ChannelRow>('SELECT * FROM alert_channels ORDER BY created_at, id'),
      channel: db.prepare<[string], ChannelRow>('SELECT * FROM alert_channels WHERE id = ?'),
      channelByName: db.prepare<[string], ChannelRow>('SELECT * FROM alert_channels WHERE name = ?'),
      putChannel: db.prepare(
        `INSERT INTO alert_channels (id, name, type, config, secrets, enabled, created_at, updated_at)
         VALUES (@id, @name, @type, @config, @secrets, @enabled, @created_at, @updated_at)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, type = excluded.type, config = excluded.config, secrets = excluded.secrets,
           enabled = excluded.enabled, updated_at = excluded.updated_at`,
      ),
      deleteChannel: db.prepare<[string]>('DELETE FROM alert_channels WHERE id = ?'),
    };
  }

  async listRules(): Promise<AlertRule[]> {
    return this.s.rules.all().map(rule);
  }
  async getRule(id: string): Promise<AlertRule | undefined> {
    const r = this.s.rule.get(id);
    return r && rule(r);
  }
  async putRule(r: AlertRule): Promise<void> {
    this.s.putRule.run({
      id: r.id,
      name: r.name,
      kind: r.kind,
      params: JSON.stringify(r.params),
      channels: JSON.stringify(r.channels),
      dedup_seconds: r.dedupSeconds,
      quiet_seconds: r.quietSeconds,
      enabled: r.enabled ? 1 : 0,
      created_at: r.createdAt,
      updated_at: r.updatedAt,
    });
  }
  async deleteRule(id: string): Promise<boolean> {
    return this.s.deleteRule.run(id).changes > 0;
  }
  async listChannels(): Promise<AlertChannel[]> {
    return this.s.channels.all().map(channel);
  }
  async getChannel(id: string): Promise<AlertChannel | undefined> {
    const r = this.s.channel.get(id);
    return r && channel(r);
  }
  async channelByName(name: string): Promise<AlertChannel | undefined> {
    const r = this.s.channelByName.get(name);
    return r && channel(r);
  }
  async putChannel(c: AlertChannel): Promise<void> {
    this.s.putChannel.run({
      id: c.id,
      name: c.name,
      type: c.type,
      config: JSON.stringify(c.config),
      secrets: JSON.stringify(c.secrets),
      enabled: c.enabled ? 1 : 0,
      created_at: c.createdAt,
      updated_at: c.updatedAt,
    });
  }
  async deleteChannel(id: string): Promise<boolean> {
    return this.s.deleteChannel.run(id).changes > 0;
  }
}
