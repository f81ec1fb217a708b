// Rule kinds, channel types and their zod schemas, shared by the service, the store and the routes.
import { z } from 'zod';

export const RULE_KINDS = [
  'node_offline',
  'node_online',
  'pot_failed',
  'command_failed',
  'login_success',
  'file_download',
  'attacker_events',
  'output_backlog',
] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export const CHANNEL_TYPES = ['webhook', 'slack', 'telegram', 'email'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

const names = z.array(z.string().min(1).max(255)).max(1000);

/** Parameters per rule kind. Lists narrow what the rule watches; absent lists mean "all". */
export const ruleParamSchemas = {
  node_offline: z.strictObject({ nodes: names.optional() }),
  node_online: z.strictObject({ nodes: names.optional() }),
  pot_failed: z.strictObject({ nodes: names.optional(), potTypes: names.optional() }),
  command_failed: z.strictObject({
    nodes: names.optional(),
    kinds: names.optional().describe('command kinds, e.g. InstallPot'),
    statuses: z.array(z.enum(['failed', 'expired'])).min(1).default(['failed']),
  }),
  login_success: z.strictObject({ nodes: names.optional(), potTypes: names.optional() }),
  file_download: z.strictObject({ nodes: names.optional(), potTypes: names.optional() }),
  attacker_events: z.strictObject({
    events: z.number().int().min(1).max(1_000_000).describe('N: events from one source address...'),
    minutes: z.number().int().min(1).max(1440).describe('...within M minutes'),
  }),
  output_backlog: z.strictObject({ bound: z.number().int().min(0).describe('alert when an output holds more than this many records'), outputs: names.optional() }),
} satisfies Record<RuleKind, z.ZodType>;

export type RuleParams = { [K in RuleKind]: z.output<(typeof ruleParamSchemas)[K]> };

export const MAX_DEDUP_SECONDS = 7 * 86_400;

export interface AlertRule {
  id: string;
  name: string;
  kind: RuleKind;
  params: Record<string, unknown>;
  channels: string[];
  /** The same alert (rule + subject) is sent at most once per this many seconds. */
  dedupSeconds: number;
  /** After the rule sent anything, it stays silent this long (what arrives meanwhile is counted). */
  quietSeconds: number;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

const httpUrl = z.url({ protocol: /^https?$/ }).max(2048);

/** Non-secret settings per channel type (returned by the API as they are). */
export const channelConfigSchemas = {
  webhook: z.strictObject({ url: httpUrl }),
  slack: z.strictObject({}),
  telegram: z.strictObject({
    chatId: z.union([z.string().min(1).max(64), z.number().int()]),
    apiBase: httpUrl.default('https://api.telegram.org').describe('Bot API base URL (a local Bot API server, or a test receiver)'),
  }),
  email: z.strictObject({
    host: z.string().min(1).max(255),
    port: z.number().int().min(1).max(65535).default(587),
    from: z.string().min(3).max(255),
    to: z.array(z.string().min(3).max(255)).min(1).max(50),
    username: z.string().max(255).optional(),
    /** Plain-text SMTP is refused unless this is false: STARTTLS is required by default. */
    requireStartTls: z.boolean().default(true),
    /** PEM CA(s) to trust for the server's certificate, beside the system ones. */
    ca: z.string().max(65536).optional(),
    /** Name to verify in the server's certificate when it differs from host. */
    servername: z.string().max(255).optional(),
  }),
} satisfies Record<ChannelType, z.ZodType>;

/** Secrets per channel type: stored, never logged, returned only masked. */
export const channelSecretSchemas = {
  webhook: z.strictObject({ hmacSecret: z.string().min(16).max(512) }),
  slack: z.strictObject({ url: httpUrl.describe('the incoming-webhook URL (its path is the credential)') }),
  telegram: z.strictObject({ botToken: z.string().min(8).max(256).regex(/^[A-Za-z0-9:_-]+$/, 'a bot token is letters, digits, ":", "_" and "-"') }),
  email: z.strictObject({ password: z.string().max(1024).optional() }),
} satisfies Record<ChannelType, z.ZodType>;

export interface AlertChannel {
  id: string;
  name: string;
  type: ChannelType;
  config: Record<string, unknown>;
  secrets: Record<string, string>;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

/** One alert as it is delivered (the webhook body; the other channels render its text). */
export interface Alert {
  id: string;
  rule: { id: string; name: string; kind: RuleKind };
  /** What the alert is about: a node, pot, command id, source address, output. Dedup key with the rule. */
  subject: string;
  title: string;
  text: string;
  /** ISO 8601. */
  at: string;
  details: Record<string, unknown>;
  /** Alerts of this rule suppressed by its quiet period since the previous one sent. */
  suppressed: number;
  test?: boolean;
}
