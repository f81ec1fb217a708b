// What a rule or a channel must satisfy before it is stored (params, config and secrets against
// their type's schema, known channels, unique names), and the error the service answers with.
import type { z } from 'zod';
import {
  channelConfigSchemas,
  channelSecretSchemas,
  MAX_DEDUP_SECONDS,
  ruleParamSchemas,
  type AlertChannel,
  type AlertRule,
  type ChannelType,
  type RuleKind,
} from './types.js';

export class AlertsError extends Error {
  override name = 'AlertsError';
  constructor(
    readonly statusCode: 400 | 404 | 409,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RuleInput {
  name: string;
  kind: RuleKind;
  params?: Record<string, unknown>;
  channels: string[];
  dedupSeconds?: number;
  quietSeconds?: number;
  enabled?: boolean;
}

export interface ChannelInput {
  name: string;
  type: ChannelType;
  config?: Record<string, unknown>;
  secrets?: Record<string, unknown>;
  enabled?: boolean;
}

function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** A rule's fields from an API input, with the defaults. */
export function ruleFields(input: RuleInput) {
  return {
    name: input.name,
    kind: input.kind,
    params: input.params ?? {},
    channels: input.channels,
    dedupSeconds: input.dedupSeconds ?? 300,
    quietSeconds: input.quietSeconds ?? 0,
    enabled: input.enabled ?? true,
  };
}

/** The rule as it is stored; throws AlertsError when it is not valid next to `rules` and `channels`. */
export function validRule(rule: AlertRule, rules: readonly AlertRule[], channels: ReadonlyMap<string, AlertChannel>): AlertRule {
  const schema = ruleParamSchemas[rule.kind];
  if (!schema) throw new AlertsError(400, 'bad_request', `unknown rule kind ${rule.kind}`);
  const params = schema.safeParse(rule.params);
  if (!params.success) throw new AlertsError(400, 'bad_request', `params of a ${rule.kind} rule: ${zodMessage(params.error)}`);
  if (rule.dedupSeconds < 0 || rule.dedupSeconds > MAX_DEDUP_SECONDS || rule.quietSeconds < 0 || rule.quietSeconds > MAX_DEDUP_SECONDS) {
    throw new AlertsError(400, 'bad_request', `dedupSeconds and quietSeconds must be within 0..${MAX_DEDUP_SECONDS}`);
  }
  const unknown = rule.channels.filter((id) => !channels.has(id));
  if (unknown.length > 0) throw new AlertsError(400, 'bad_request', `no alert channel ${unknown.join(', ')}`);
  const clash = rules.find((r) => r.name === rule.name && r.id !== rule.id);
  if (clash) throw new AlertsError(409, 'conflict', `an alert rule named ${rule.name} exists`);
  return { ...rule, params: params.data as Record<string, unknown>, channels: [...new Set(rule.channels)] };
}

/** The channel as it is stored; throws AlertsError when it is not valid next to `channels`. */
export function validChannel(c: AlertChannel, channels: ReadonlyMap<string, AlertChannel>): AlertChannel {
  const configSchema = channelConfigSchemas[c.type];
  if (!configSchema) throw new AlertsError(400, 'bad_request', `unknown channel type ${c.type}`);
  const config = configSchema.safeParse(c.config);
  if (!config.success) throw new AlertsError(400, 'bad_request', `config of a ${c.type} channel: ${zodMessage(config.error)}`);
  const secrets = channelSecretSchemas[c.type].safeParse(c.secrets);
  // The message names the fields only: zod does not quote values, but be explicit about it.
  if (!secrets.success) throw new AlertsError(400, 'bad_request', `secrets of a ${c.type} channel: ${secrets.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.code === 'unrecognized_keys' ? i.message : 'missing or invalid'}`).join('; ')}`);
  const clash = [...channels.values()].find((x) => x.name === c.name && x.id !== c.id);
  if (clash) throw new AlertsError(409, 'conflict', `an alert channel named ${c.name} exists`);
  return { ...c, config: config.data as Record<string, unknown>, secrets: secrets.data as Record<string, string> };
}
