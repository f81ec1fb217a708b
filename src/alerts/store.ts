// Where alert rules and channels are kept. The SQL lives in sqlite-store.ts behind this interface,
// so a PostgreSQL implementation can take its place.
import type { AlertChannel, AlertRule } from './types.js';

export interface AlertStore {
  listRules(): AlertRule[];
  getRule(id: string): AlertRule | undefined;
  putRule(rule: AlertRule): void;
  deleteRule(id: string): boolean;
  listChannels(): AlertChannel[];
  getChannel(id: string): AlertChannel | undefined;
  channelByName(name: string): AlertChannel | undefined;
  putChannel(channel: AlertChannel): void;
  deleteChannel(id: string): boolean;
}
