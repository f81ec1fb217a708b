// /api/v1/alerts: rules and channels (admin). Channel secrets are accepted on create and update
// and never returned except masked.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, errorSchema } from '../api/index.js';
import { AlertsError, type AlertService } from './service.js';
import { CHANNEL_TYPES, MAX_DEDUP_SECONDS, RULE_KINDS } from './types.js';

const id = z.object({ id: z.string().min(1).max(64) });
const name = z.string().min(1).max(100);
const seconds = z.number().int().min(0).max(MAX_DEDUP_SECONDS);
const looseObject = z.record(z.string(), z.unknown());

const ruleBody = z.object({
  name,
  kind: z.enum(RULE_KINDS),
  params: looseObject.optional().describe('per kind: nodes/potTypes/kinds/outputs lists; attacker_events {events, minutes}; output_backlog {bound}; command_failed {statuses}'),
  channels: z.array(z.string().min(1).max(64)).max(20).describe('channel ids'),
  dedupSeconds: seconds.optional().describe('the same alert (rule and subject) at most once per this many seconds (default 300)'),
  quietSeconds: seconds.optional().describe('after sending, the rule stays silent this long; what it held back is counted in the next alert (default 0)'),
  enabled: z.boolean().optional(),
});
const rulePatch = ruleBody.partial();

const ruleView = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(RULE_KINDS),
  params: looseObject,
  channels: z.array(z.string()),
  dedupSeconds: z.number().int(),
  quietSeconds: z.number().int(),
  enabled: z.boolean(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});

const channelBody = z.object({
  name,
  type: z.enum(CHANNEL_TYPES),
  config: looseObject.optional().describe('webhook {url}; slack {}; telegram {chatId, apiBase}; email {host, port, from, to[], username, requireStartTls, ca, servername}'),
  secrets: looseObject.optional().describe('webhook {hmacSecret}; slack {url}; telegram {botToken}; email {password}: stored, only ever shown masked'),
  enabled: z.boolean().optional(),
});
const channelPatch = channelBody.omit({ type: true }).partial();

const statsView = z.object({
  delivered: z.number().int(),
  failed: z.number().int(),
  retries: z.number().int(),
  dropped: z.number().int(),
  queued: z.number().int(),
  lastDeliveredAt: z.number().int().nullable(),
  lastFailedAt: z.number().int().nullable(),
  lastError: z.string().nullable(),
});
const channelView = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(CHANNEL_TYPES),
  config: looseObject,
  secrets: z.record(z.string(), z.string()).describe('masked: **** and at most the last 4 characters'),
  enabled: z.boolean(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
  stats: statsView,
});

async function apiErrors<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AlertsError) throw new ApiError(err.statusCode, err.code, err.message);
    throw err;
  }
}

export const alertRoutes: FastifyPluginAsync<{ alerts: AlertService }> = async (app, { alerts }) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const admin = { role: 'admin' as const };
  const tags = ['alerts'];

  r.get('/alerts/rules', { schema: { tags, summary: 'List alert rules', response: { 200: z.array(ruleView) } }, config: admin }, async () => alerts.listRules());
  r.post(
    '/alerts/rules',
    { schema: { tags, summary: 'Create an alert rule', body: ruleBody, response: { 201: ruleView, 400: errorSchema, 409: errorSchema } }, config: admin },
    async (req, reply) => reply.code(201).send(await apiErrors(() => alerts.createRule(req.body))),
  );
  r.get('/alerts/rules/:id', { schema: { tags, summary: 'One alert rule', params: id, response: { 200: ruleView, 404: errorSchema } }, config: admin }, async (req) =>
    apiErrors(() => alerts.getRule(req.params.id)),
  );
  r.patch(
    '/alerts/rules/:id',
    { schema: { tags, summary: 'Change an alert rule (fields given replace the old ones)', params: id, body: rulePatch, response: { 200: ruleView, 400: errorSchema, 404: errorSchema, 409: errorSchema } }, config: admin },
    async (req) => apiErrors(() => alerts.updateRule(req.params.id, req.body)),
  );
  r.delete('/alerts/rules/:id', { schema: { tags, summary: 'Delete an alert rule', params: id, response: { 204: z.null(), 404: errorSchema } }, config: admin }, async (req, reply) => {
    await apiErrors(() => alerts.deleteRule(req.params.id));
    return reply.code(204).send(null);
  });

  r.get('/alerts/channels', { schema: { tags, summary: 'List alert channels (secrets masked) with delivery stats', response: { 200: z.array(channelView) } }, config: admin }, async () =>
    alerts.listChannels(),
  );
  r.post(
    '/alerts/channels',
    { schema: { tags, summary: 'Create an alert channel: webhook (HMAC-signed), slack, telegram or email (SMTP with STARTTLS)', body: channelBody, response: { 201: channelView, 400: errorSchema, 409: errorSchema } }, config: admin },
    async (req, reply) => reply.code(201).send(await apiErrors(async () => alerts.channelView(await alerts.createChannel(req.body)))),
  );
  r.get('/alerts/channels/:id', { schema: { tags, summary: 'One alert channel (secrets masked)', params: id, response: { 200: channelView, 404: errorSchema } }, config: admin }, async (req) =>
    apiErrors(() => alerts.channelView(alerts.getChannel(req.params.id))),
  );
  r.patch(
    '/alerts/channels/:id',
    { schema: { tags, summary: 'Change an alert channel: config is replaced when given, secrets are merged key by key', params: id, body: channelPatch, response: { 200: channelView, 400: errorSchema, 404: errorSchema, 409: errorSchema } }, config: admin },
    async (req) => apiErrors(async () => alerts.channelView(await alerts.updateChannel(req.params.id, req.body))),
  );
  r.delete(
    '/alerts/channels/:id',
    { schema: { tags, summary: 'Delete an alert channel no rule uses', params: id, response: { 204: z.null(), 404: errorSchema, 409: errorSchema } }, config: admin },
    async (req, reply) => {
      await apiErrors(() => alerts.deleteChannel(req.params.id));
      return reply.code(204).send(null);
    },
  );
  r.post(
    '/alerts/channels/:id/test',
    {
      schema: {
        tags,
        summary: 'Send a sample alert through the channel now (one attempt) and report the outcome',
        params: id,
        response: { 200: z.object({ delivered: z.boolean(), error: z.string().optional() }), 404: errorSchema },
      },
      config: admin,
    },
    async (req) => {
      await apiErrors(() => alerts.getChannel(req.params.id));
      return alerts.testChannel(req.params.id);
    },
  );
};
