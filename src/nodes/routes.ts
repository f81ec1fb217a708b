// Operator REST routes for nodes, registered under /api/v1. Reads need the viewer role, changes admin.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorSchema } from '../api/index.js';
import { nodeNamePattern, NODE_NAME_RULE } from './names.js';
import type { NodeService } from './service.js';

const enrollmentSchema = z.enum(['pending', 'approved', 'enrolled', 'revoked']);

const nodeNameSchema = z.string().regex(nodeNamePattern, `node name: ${NODE_NAME_RULE}`).describe('node_name (hostname-like)');

const nodeSchema = z.object({
  name: z.string(),
  nodeId: z.string().nullable().describe('u64 node_id of the current or last session, as decimal digits'),
  nodeType: z.string().nullable(),
  address: z.string().nullable().describe('address the node advertises'),
  port: z.number().int().nullable(),
  status: z.string().describe('last NodeStatusUpdate status, Connected right after registration, Offline without a session'),
  enrollment: enrollmentSchema,
  hasSecret: z.boolean(),
  online: z.boolean(),
  remoteAddress: z.string().nullable().describe("peer address of the current or last session: the socket's, or the client a trusted proxy named in its PROXY protocol header (PROXY_PROTOCOL_FROM)"),
  transport: z.string().nullable().describe('Transport of the last session: tcp, tls (TCP with TLS 1.3) or ws'),
  connectedAt: z.number().int().nullable(),
  lastSeenAt: z.number().int().nullable(),
  disconnectedAt: z.number().int().nullable(),
  disconnectReason: z.string().nullable(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});

const potSchema = z.object({
  potId: z.string(),
  potType: z.string(),
  status: z.string().describe('Last reported status (Installing, Running, Stopped, Failed), or missing when the node no longer lists the pot'),
  lastMessage: z.string().nullable(),
  updatedAt: z.number().int(),
});

const logEntrySchema = z.object({ id: z.number().int(), kind: z.string(), message: z.string().nullable(), at: z.number().int() });

const secretAnswer = z.object({
  name: z.string(),
  secret: z.string().describe('base32 TOTP secret for the node\'s .honeybee_totp_secret file; shown only in this answer'),
});

const nameParams = z.object({ name: nodeNameSchema });

const booleanQuery = z.enum(['true', 'false']).transform((v) => v === 'true');

export function nodeRestRoutes(service: NodeService) {
  return async function nodeRoutes(fastify: FastifyInstance): Promise<void> {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['nodes'];

    app.get(
      '/nodes',
      {
        config: { role: 'viewer' },
        schema: {
          tags,
          summary: 'List nodes',
          querystring: z.object({
            enrollment: enrollmentSchema.optional(),
            status: z.string().max(32).optional(),
            online: booleanQuery.optional(),
          }),
          response: { 200: z.object({ nodes: z.array(nodeSchema) }) },
        },
      },
      async (request) => ({ nodes: await service.listNodes(request.query) }),
    );

    app.get(
      '/nodes/:name',
      {
        config: { role: 'viewer' },
        schema: {
          tags,
          summary: 'One node, with its pots and whether it is online',
          params: nameParams,
          response: { 200: nodeSchema.extend({ pots: z.array(potSchema) }), 404: errorSchema },
        },
      },
      async (request, reply) => {
        const node = await service.getNode(request.params.name);
        if (!node) return reply.code(404).send({ error: 'not_found', message: `unknown node ${request.params.name}` });
        return node;
      },
    );

    app.get(
      '/nodes/:name/pots',
      {
        config: { role: 'viewer' },
        schema: {
          tags,
          summary: 'Honeypots of a node, as last reported',
          params: nameParams,
          response: { 200: z.object({ pots: z.array(potSchema) }), 404: errorSchema },
        },
      },
      async (request) => ({ pots: await service.listPots(request.params.name) }),
    );

    app.get(
      '/nodes/:name/log',
      {
        config: { role: 'viewer' },
        schema: {
          tags,
          summary: 'Lifecycle log of a node (registrations, rejections, NodeEvent, drops, disconnects), newest first',
          params: nameParams,
          querystring: z.object({
            limit: z.coerce.number().int().min(1).max(1000).default(100),
            before: z.coerce.number().int().optional().describe('only entries older than this epoch ms'),
          }),
          response: { 200: z.object({ entries: z.array(logEntrySchema) }), 404: errorSchema },
        },
      },
      async (request) => ({
        entries: await service.listLog(request.params.name, { limit: request.query.limit, before: request.query.before }),
      }),
    );

    app.post(
      '/nodes',
      {
        config: { role: 'admin' },
        schema: {
          tags,
          summary: 'Provision a node; answers its TOTP secret once',
          body: z.object({
            name: nodeNameSchema,
            secret: z.string().max(128).optional().describe('import the secret the node generated itself (32 chars base32)'),
          }),
          response: { 201: secretAnswer, 400: errorSchema, 409: errorSchema },
        },
      },
      async (request, reply) => {
        const created = await service.createNode(request.body.name, { secret: request.body.secret });
        return reply.code(201).send(created);
      },
    );

    app.post(
      '/nodes/:name/approve',
      {
        config: { role: 'admin' },
        schema: {
          tags,
          summary: 'Approve a pending (or revoked) node: its next registration is accepted and sent a new key',
          params: nameParams,
          response: { 200: nodeSchema, 404: errorSchema, 409: errorSchema },
        },
      },
      async (request) => service.approveNode(request.params.name),
    );

    app.post(
      '/nodes/:name/revoke',
      {
        config: { role: 'admin' },
        schema: {
          tags,
          summary: 'Revoke a node: refused from now on, its live session closed at once',
          params: nameParams,
          response: { 200: nodeSchema, 404: errorSchema },
        },
      },
      async (request) => service.revokeNode(request.params.name),
    );

    app.post(
      '/nodes/:name/rotate-secret',
      {
        config: { role: 'admin' },
        schema: {
          tags,
          summary: 'New TOTP secret (shown once); the live session is closed until the node is configured with it',
          params: nameParams,
          response: { 200: secretAnswer, 404: errorSchema, 409: errorSchema },
        },
      },
      async (request) => service.rotateSecret(request.params.name),
    );

    app.get(
      '/enrollment/unknown-registrations',
      {
        config: { role: 'viewer' },
        schema: {
          tags,
          summary: 'Registrations of names without a node row (unknown, refused over the pending caps, invalid), aggregated per source address, latest first',
          querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
          response: {
            200: z.object({
              registrations: z.array(
                z.object({
                  addressKey: z.string().describe('IPv4 address, or IPv6 /64 prefix'),
                  lastAddress: z.string(),
                  attempts: z.number().int(),
                  firstSeenAt: z.number().int(),
                  lastSeenAt: z.number().int(),
                  lastNames: z.array(z.string()).describe('latest distinct names tried, newest last'),
                  lastResult: z.string(),
                }),
              ),
            }),
          },
        },
      },
      async (request) => ({ registrations: await service.listUnknownRegistrations(request.query.limit) }),
    );

    app.post(
      '/enrollment/pending/reject',
      {
        config: { role: 'admin' },
        schema: {
          tags,
          summary: 'Bulk reject (delete) pending nodes by source address and/or age; every given condition must match',
          body: z
            .object({
              address: z.string().max(64).optional().describe('where the nodes first came from: an IPv4 address exactly, an IPv6 address by its /64'),
              olderThanSeconds: z.number().int().min(0).max(10 * 365 * 86400).optional().describe('pending for longer than this'),
            })
            .strict()
            .refine((b) => b.address !== undefined || b.olderThanSeconds !== undefined, { message: 'give address and/or olderThanSeconds' }),
          response: {
            200: z.object({ rejected: z.number().int(), names: z.array(z.string()).describe('up to 100 of the names removed') }),
            400: errorSchema,
          },
        },
      },
      async (request) =>
        service.rejectPending({
          address: request.body.address,
          olderThanMs: request.body.olderThanSeconds === undefined ? undefined : request.body.olderThanSeconds * 1000,
        }),
    );

    app.delete(
      '/nodes/:name',
      {
        config: { role: 'admin' },
        schema: {
          tags,
          summary: 'Delete a node and its pots (its log is kept)',
          params: nameParams,
          response: { 204: z.null(), 404: errorSchema },
        },
      },
      async (request, reply) => {
        await service.deleteNode(request.params.name);
        return reply.code(204).send(null);
      },
    );
  };
}
