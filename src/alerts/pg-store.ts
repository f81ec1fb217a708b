// Alert rules and channels in PostgreSQL (tables alert_rules and alert_channels,
// drizzle/pg/0000_init.sql): the same behaviour as sqlite-store.ts, checked by the same contract
// tests (test/alerts/store-contract.test.ts). Lists, params, config and secrets stay JSON text, as
// in SQLite (exact bytes back). Lists are ordered by id with COLLATE "C" on ties of created_at, so
// both databases give the same order.
import type { PgDatabaseHandle } from '../db/index.js';
import { channel, rule, type ChannelRow, type RuleRow } from './rows.js';
import type { AlertStore } from './store.js';
import type { AlertChannel, AlertRule } from './types.js';

const RULE_COLUMNS = 'id, name, kind, params, channels, dedup_seconds, quiet_seconds, enabled, created_at, updated_at';
const CHANNEL_COLUMNS = 'id, name, type, config, secrets, enabled, created_at, updated_at';

export class PgAlertStore implements AlertStore {
  constructor(private readonly database: PgDatabaseHandle) {}

  private async rows<R extends object>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.database.pool.query<R & Record<string, unknown>>(sql, params)).rows;
  }

  async listRules(): Promise<AlertRule[]> {
    return (await this.rows<RuleRow>(`SELECT ${RULE_COLUMNS} FROM alert_rules ORDER BY created_at, id COLLATE "C"`)).map(rule);
  }

  async getRule(id: string): Promise<AlertRule | undefined> {
    const [r] = await this.rows<RuleRow>(`SELECT ${RULE_COLUMNS} FROM alert_rules WHERE id = $1`, [id]);
    return r && rule(r);
  }

  async putRule(r: AlertRule): Promise<void> {
    await this.database.pool.query(
      `INSERT INTO alert_rules (${RULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, params = excluded.params, channels = excluded.channels,
         dedup_seconds = excluded.dedup_seconds, quiet_seconds = excluded.quiet_seconds, enabled = excluded.enabled, updated_at = excluded.updated_at`,
      [r.id, r.name, r.kind, JSON.stringify(r.params), JSON.stringify(r.channels), r.dedupSeconds, r.quietSeconds, r.enabled ? 1 : 0, r.createdAt, r.updatedAt],
    );
  }

  async deleteRule(id: string): Promise<boolean> {
    return ((await this.database.pool.query('DELETE FROM alert_rules WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async listChannels(): Promise<AlertChannel[]> {
    return (await this.rows<ChannelRow>(`SELECT ${CHANNEL_COLUMNS} FROM alert_channels ORDER BY created_at, id COLLATE "C"`)).map(channel);
  }

  async getChannel(id: string): Promise<AlertChannel | undefined> {
    const [r] = await this.rows<ChannelRow>(`SELECT ${CHANNEL_COLUMNS} FROM alert_channels WHERE id = $1`, [id]);
    return r && channel(r);
  }

  async channelByName(name: string): Promise<AlertChannel | undefined> {
    const [r] = await this.rows<ChannelRow>(`SELECT ${CHANNEL_COLUMNS} FROM alert_channels WHERE name = $1`, [name]);
    return r && channel(r);
  }

  async putChannel(c: AlertChannel): Promise<void> {
    await this.database.pool.query(
      `INSERT INTO alert_channels (${CHANNEL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, type = excluded.type, config = excluded.config, secrets = excluded.secrets,
         enabled = excluded.enabled, updated_at = excluded.updated_at`,
      [c.id, c.name, c.type, JSON.stringify(c.config), JSON.stringify(c.secrets), c.enabled ? 1 : 0, c.createdAt, c.updatedAt],
    );
  }

  async deleteChannel(id: string): Promise<boolean> {
    return ((await this.database.pool.query('DELETE FROM alert_channels WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }
}
