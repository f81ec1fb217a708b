// Where alert rules and channels are kept. The SQL lives behind this interface, in sqlite-store.ts
// and pg-store.ts; both pass the same contract tests (test/alerts/store-contract.test.ts). Every
// method returns a Promise: PostgreSQL answers over a socket, and the SQLite store (better-sqlite3
// is synchronous) resolves at once. The alert service keeps what it reads in memory: observing
// never waits on the store.
import type { AlertChannel, AlertRule } from './types.js';

export interface AlertStore {
  /** Oldest first (created_at, then id). */
  listRules(): Promise<AlertRule[]>;
  getRule(id: string): Promise<AlertRule | undefined>;
  /** Inserts, or updates every field but id and createdAt of the rule with that id. */
  putRule(rule: AlertRule): Promise<void>;
  deleteRule(id: string): Promise<boolean>;
  /** Oldest first (created_at, then id). */
  listChannels(): Promise<AlertChannel[]>;
  getChannel(id: string): Promise<AlertChannel | undefined>;
  channelByName(name: string): Promise<AlertChannel | undefined>;
  /** Inserts, or updates every field but id and createdAt of the channel with that id. */
  putChannel(channel: AlertChannel): Promise<void>;
  deleteChannel(id: string): Promise<boolean>;
}
