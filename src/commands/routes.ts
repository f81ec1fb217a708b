// REST API of the command queue, registered under /api/v1. Reads need the viewer role; sending and
// cancelling need operator.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, errorSchema } from '../api/index.js';
import { nodeCommandSchema } from '../protocol/index.js';
import type { CommandService } from './service.js';
import { COMMAND_KINDS, COMMAND_STATUSES, CommandError, MAX_SELECTOR_STATUSES } from './types.js';

export interface CommandRoutesOptions {
  service: CommandService;
}

const tags = ['commands'];

const resultSchema = z
  .object({
    message: z.string().optional(),
    potStatus: z.string().optional().describe('last pot status reported for the command\'s pot'),
    pots: z
      .array(z.object({ potId: z.string(), potType: z.string(), status: z.string(), message: z.string().optional() }))
      .optional()
      .describe('GetInstalledPots: the pots the node reported'),
    reason: z
      .enum(['pot_failed', 'node_error', 'timeout', 'node_restarted', 'ttl', 'cancelled'])
      .optional()
      .describe('why the command did not succeed'),
  })
  .nullable()
  .describe('outcome, or progress while sent');

const commandViewSchema = z.object({
  id: z.string(),
  seq: z.number().int().describe('delivery order: a node gets its commands in increasing seq'),
  node: z.string(),
  kind: z.enum(COMMAND_KINDS),
  potId: z.string().nullable(),
  command: z.record(z.string(), z.unknown()).describe('NodeCommand.command exactly as sent to the node'),
  status: z.enum(COMMAND_STATUSES).describe('queued -> sent -> succeeded | failed; or expired / cancelled'),
  result: resultSchema,
  batchId: z.string().nullable(),
  requestedBy: z.string().nullable(),
  createdAt: z.string(),
  sentAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  expiresAt: z.string().describe('a command not delivered by then becomes expired'),
});

const nodeName = z.string().min(1).max(253);
const statusName = z.string().min(1).max(64);

const selectorSchema = z
  .union([
    z.array(nodeName).min(1).max(10_000).describe('exactly these nodes (all must be known)'),
    z.enum(['all', 'online']).describe('all: every approved/enrolled node, offline ones get it when they return; online: nodes connected now'),
    z
      .object({ status: z.union([statusName, z.array(statusName).min(1).max(MAX_SELECTOR_STATUSES)]) })
      .strict()
      .describe('nodes whose last reported status is one of these (Running, Failed, Offline, ...)'),
  ], {
    // zod's own "Invalid input" does not say what a selector looks like.
    error: (issue) =>
      `${issue.input === undefined ? 'is required' : 'is not a node selector'}: give a list of node names, "all", "online" or {"status": "Running"}`,
  })
  .describe('which nodes get the command');

const sendBody = z.object({
  command: nodeCommandSchema.describe('NodeCommand.command as on the wire, e.g. {"DeployPot":"pot-01"} or {"Restart":{}}'),
});

const errors = { 400: errorSchema, 404: errorSchema, 409: errorSchema, 422: errorSchema, 503: errorSchema };

/** Expected service failures become `{error, message}`; 503 is answered here because the shared
 * error handler masks every 5xx as an internal error. */
function handled(err: unknown, reply: FastifyReply): FastifyReply {
  if (err instanceof CommandError) {
    if (err.statusCode === 503) return reply.code(503).send({ error: err.code, message: err.message });
    throw new ApiError(err.statusCode, err.code, err.message);
  }
  throw err;
}

export async function commandRoutes(app: FastifyInstance, opts: CommandRoutesOptions): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const service = opts.service;

  r.post(
    '/nodes/:name/commands',
    {
      config: { role: 'operator' },
      schema: {
        tags,
        summary: 'Queue a command for one node',
        description:
          'Delivered in order after the node\'s earlier commands; waits while the node is offline (up to the TTL). 201 means the command is durably queued.',
        params: z.object({ name: nodeName }),
        body: sendBody,
        response: { 201: commandViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      try {
        const view = await service.send(request.params.name, request.body.command, {
          requestedBy: request.operator?.name ?? null,
        });
        return reply.code(201).send(view);
      } catch (err) {
        return handled(err, reply);
      }
    },
  );

  r.post(
    '/commands/broadcast',
    {
      config: { role: 'operator' },
      schema: {
        tags,
        summary: 'Queue a command for a selection of nodes',
        description:
          'One command per selected node, sharing a batchId (list them with GET /commands?batch=...). Each is delivered like a single-node command.',
        body: z.object({ nodes: selectorSchema, command: sendBody.shape.command }),
        response: {
          201: z.object({
            batchId: z.string(),
            count: z.number().int(),
            commands: z.array(z.object({ id: z.string(), node: z.string(), seq: z.number().int() })),
          }),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      try {
        const res = await service.broadcast(request.body.nodes, request.body.command, {
          requestedBy: request.operator?.name ?? null,
        });
        return reply.code(201).send(res);
      } catch (err) {
        return handled(err, reply);
      }
    },
  );

  r.get(
    '/commands',
    {
      config: { role: 'viewer' },
      schema: {
        tags,
        summary: 'List commands, newest first',
        querystring: z.object({
          node: nodeName.optional(),
          status: z.enum(COMMAND_STATUSES).optional(),
          batch: z.string().max(64).optional(),
          kind: z.enum(COMMAND_KINDS).optional(),
          limit: z.coerce.number().int().min(1).max(500).default(50),
          before: z.coerce.number().int().min(1).optional().describe('the `next` value of the previous page'),
        }),
        response: {
          200: z.object({
            commands: z.array(commandViewSchema),
            next: z.number().int().nullable().describe('pass as `before` for the next page; null on the last page'),
          }),
          ...errors,
        },
      },
    },
    async (request) => service.list(request.query),
  );

  r.get(
    '/commands/:id',
    {
      config: { role: 'viewer' },
      schema: {
        tags,
        summary: 'One command with its status and result',
        params: z.object({ id: z.string().min(1).max(64) }),
        response: { 200: commandViewSchema, ...errors },
      },
    },
    async (request) => {
      const view = await service.get(request.params.id);
      if (!view) throw new ApiError(404, 'not_found', `no command ${request.params.id}`);
      return view;
    },
  );

  r.post(
    '/commands/check',
    {
      config: { role: 'operator' },
      schema: {
        tags,
        summary: 'Check a command without sending it',
        description:
          'Answers 200 when POST /nodes/{name}/commands would accept this command body, else the same 400 it would answer: ' +
          'protocol schema, InstallPot git_url against the configured allow-list, git_branch. Nothing is queued.',
        body: sendBody,
        response: {
          200: z.object({ ok: z.literal(true), kind: z.enum(COMMAND_KINDS), pot_id: z.string().nullable() }),
          400: errorSchema,
        },
      },
    },
    async (request, reply) => {
      try {
        const { kind, potId } = service.check(request.body.command);
        return { ok: true as const, kind, pot_id: potId };
      } catch (err) {
        return handled(err, reply);
      }
    },
  );

  r.post(
    '/commands/:id/cancel',
    {
      config: { role: 'operator' },
      schema: {
        tags,
        summary: 'Cancel a queued command',
        description: 'Only while queued: a command already sent cannot be recalled from a HoneyBee node (409).',
        params: z.object({ id: z.string().min(1).max(64) }),
        response: { 200: commandViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      try {
        return await service.cancel(request.params.id, { requestedBy: request.operator?.name ?? null });
      } catch (err) {
        return handled(err, reply);
      }
    },
  );
}
