// Rows of alert_rules and alert_channels as both databases return them (snake_case columns, JSON as
// text, enabled as 0/1), and their conversion to what the service works with.
import type { AlertChannel, AlertRule, ChannelType, RuleKind } from './types.js';

/** A row of alert_rules, as both databases return it. */
export interface RuleRow {
  id: string;
  name: string;
  kind: string;
  params: string;
  channels: string;
  dedup_seconds: number;
  quiet_seconds: number;
  enabled: number;
  created_at: number;
  updated_at: number;
}

/** A row of alert_channels, as both databases return it. */
export interface ChannelRow {
  id: string;
  name: string;
  type: string;
  config: string;
  secrets: string;
  enabled: number;
  created_at: number;
  updated_at: number;
}

export const rule = (r: RuleRow): AlertRule => ({
  id: r.id,
  name: r.name,
  kind: r.kind as RuleKind,
  params: JSON.parse(r.params) as Record<string, unknown>,
  channels: JSON.parse(r.channels) as string[],
  dedupSeconds: r.dedup_seconds,
  quietSeconds: r.quiet_seconds,
  enabled: r.enabled === 1,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const channel = (r: ChannelRow): AlertChannel => ({
  id: r.id,
  name: r.name,
  type: r.type as ChannelType,
  config: JSON.parse(r.config) as Record<string, unknown>,
  secrets: JSON.parse(r.secrets) as Record<string, string>,
  enabled: r.enabled === 1,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
