// Admin routes for hpfeeds authkeys. Changes reach the broker through the store's change feed,
// so revoking or rotating a key closes the live connections that used it.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, errorSchema } from '../api/index.js';
import { authkeyInputSchema, name255, type AuthkeyService } from './service.js';

const channels = z.array(z.string().min(1).max(255));
const summary = z.object({
  ident: z.string(),
  owner: z.string(),
  pubchans: channels,
  subchans: channels,
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});
const withSecret = z.object({ ident: z.string(), owner: z.string(), secret: z.string(), pubchans: channels, subchans: channels });
const identParams = z.object({ ident: name255 });
const tags = ['hpfeeds'];

export const authkeyRoutes: FastifyPluginAsync<{ authkeys: AuthkeyService }> = async (app, { authkeys }) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/hpfeeds/authkeys',
    { schema: { tags, summary: 'List hpfeeds authkeys (without secrets)', response: { 200: z.array(summary) } }, config: { role: 'admin' } },
    async () => authkeys.list(),
  );
  r.get(
    '/hpfeeds/authkeys/:ident',
    { schema: { tags, summary: 'One hpfeeds authkey (without its secret)', params: identParams, response: { 200: summary, 404: errorSchema } }, config: { role: 'admin' } },
    async (req) => {
      const k = await authkeys.summary(req.params.ident);
      if (!k) throw new ApiError(404, 'not_found', `no authkey ${req.params.ident}`);
      return k;
    },
  );
  r.post(
    '/hpfeeds/authkeys',
    {
      schema: {
        tags,
        summary: 'Create an hpfeeds authkey; the secret (generated unless given) is shown only in this answer',
        body: authkeyInputSchema,
        response: { 201: withSecret, 409: errorSchema },
      },
      config: { role: 'admin' },
    },
    async (req, reply) => {
      const created = await authkeys.create(req.body);
      if (!created) throw new ApiError(409, 'conflict', `authkey ${req.body.ident} exists`);
      return reply.code(201).send(created);
    },
  );
  r.patch(
    '/hpfeeds/authkeys/:ident',
    {
      schema: {
        tags,
        summary: 'Change owner or channels; live connections of the ident are re-checked at once',
        params: identParams,
        body: z.object({ owner: z.string().max(255).optional(), pubchans: z.array(name255).max(1000).optional(), subchans: z.array(name255).max(1000).optional() }),
        response: { 200: summary, 404: errorSchema },
      },
      config: { role: 'admin' },
    },
    async (req) => {
      const k = await authkeys.update(req.params.ident, req.body);
      if (!k) throw new ApiError(404, 'not_found', `no authkey ${req.params.ident}`);
      return k;
    },
  );
  r.post(
    '/hpfeeds/authkeys/:ident/rotate',
    {
      schema: { tags, summary: 'New secret; live connections using the old one are closed', params: identParams, response: { 200: withSecret, 404: errorSchema } },
      config: { role: 'admin' },
    },
    async (req) => {
      const k = await authkeys.rotate(req.params.ident);
      if (!k) throw new ApiError(404, 'not_found', `no authkey ${req.params.ident}`);
      return k;
    },
  );
  r.delete(
    '/hpfeeds/authkeys/:ident',
    {
      schema: { tags, summary: 'Revoke: delete the key and close its live connections', params: identParams, response: { 204: z.null(), 404: errorSchema } },
      config: { role: 'admin' },
    },
    async (req, reply) => {
      if (!(await authkeys.remove(req.params.ident))) throw new ApiError(404, 'not_found', `no authkey ${req.params.ident}`);
      return reply.code(204).send(null);
    },
  );
};
