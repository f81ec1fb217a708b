// Admin routes for operator tokens.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, errorSchema, roles } from '../api/index.js';
import type { TokenService } from './tokens.js';

const tokenSummary = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(roles),
  createdAt: z.number().int(),
  lastUsedAt: z.number().int().nullable(),
  revokedAt: z.number().int().nullable(),
});

export const tokenRoutes: FastifyPluginAsync<{ tokens: TokenService }> = async (app, { tokens }) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/tokens',
    { schema: { tags: ['tokens'], summary: 'List operator tokens (never their secrets)', response: { 200: z.array(tokenSummary) } }, config: { role: 'admin' } },
    async () => tokens.list(),
  );
  r.post(
    '/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Create an operator token; the token is shown only in this answer',
        body: z.object({ name: z.string().min(1).max(100), role: z.enum(roles) }),
        response: { 201: z.object({ id: z.string(), name: z.string(), role: z.enum(roles), token: z.string() }) },
      },
      config: { role: 'admin' },
    },
    async (req, reply) => reply.code(201).send(await tokens.create(req.body.name, req.body.role)),
  );
  r.delete(
    '/tokens/:id',
    {
      schema: { tags: ['tokens'], summary: 'Revoke a token: refused from the next request on, and its open WebSockets (event streams) are closed at once', params: z.object({ id: z.string().min(1).max(64) }), response: { 204: z.null(), 404: errorSchema } },
      config: { role: 'admin' },
    },
    async (req, reply) => {
      if (!(await tokens.revoke(req.params.id))) throw new ApiError(404, 'not_found', `no active token ${req.params.id}`);
      return reply.code(204).send(null);
    },
  );
};
