// Admin routes for console users. Passwords are write-only: a generated one is shown once, in the
// answer to the POST that created it.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, errorSchema, roles } from '../api/index.js';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './password.js';
import { USERNAME_PATTERN, UserError, type UserService, type UserSummary } from './service.js';

const userSchema = z.object({
  id: z.string(),
  username: z.string(),
  role: z.enum(roles),
  created_at: z.number().int().describe('epoch ms'),
  disabled_at: z.number().int().nullable().describe('epoch ms; null while the user may log in'),
  last_login_at: z.number().int().nullable().describe('epoch ms'),
});

const view = (u: UserSummary) => ({ id: u.id, username: u.username, role: u.role, created_at: u.createdAt, disabled_at: u.disabledAt, last_login_at: u.lastLoginAt });
const password = z.string().min(MIN_PASSWORD_LENGTH).max(MAX_PASSWORD_LENGTH);
const status = { bad_request: 400, conflict: 409, not_found: 404 } as const;

function asApiError(err: unknown): unknown {
  return err instanceof UserError ? new ApiError(status[err.code], err.code, err.message) : err;
}

export const userRoutes: FastifyPluginAsync<{ users: UserService }> = async (app, { users }) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['users'];
  r.get(
    '/users',
    { schema: { tags, summary: 'List console users (never their password hashes)', response: { 200: z.array(userSchema) } }, config: { role: 'admin' } },
    async () => (await users.list()).map(view),
  );
  r.post(
    '/users',
    {
      schema: {
        tags,
        summary: 'Create a console user; without a password one is generated and shown only in this answer',
        body: z.object({
          username: z.string().regex(USERNAME_PATTERN, 'letters, digits and . _ @ -, 1-64 characters, starting with a letter or digit'),
          role: z.enum(roles),
          password: password.optional(),
        }),
        response: { 201: userSchema.extend({ password: z.string().optional().describe('the generated password (only when none was given)') }), 400: errorSchema, 409: errorSchema },
      },
      config: { role: 'admin' },
    },
    async (req, reply) => {
      try {
        const { user, generatedPassword } = await users.create(req.body.username, req.body.role, req.body.password);
        return reply.code(201).send({ ...view(user), ...(generatedPassword ? { password: generatedPassword } : {}) });
      } catch (err) {
        throw asApiError(err);
      }
    },
  );
  r.patch(
    '/users/:id',
    {
      schema: {
        tags,
        summary: "Change a user's role, password or disabled state; any change ends the user's sessions (and their WebSockets) at once",
        params: z.object({ id: z.string().min(1).max(64) }),
        body: z.object({ role: z.enum(roles).optional(), password: password.optional(), disabled: z.boolean().optional() }),
        response: { 200: userSchema, 400: errorSchema, 404: errorSchema },
      },
      config: { role: 'admin' },
    },
    async (req) => {
      let updated;
      try {
        updated = await users.update(req.params.id, req.body);
      } catch (err) {
        throw asApiError(err);
      }
      if (!updated) throw new ApiError(404, 'not_found', `no user ${req.params.id}`);
      return view(updated);
    },
  );
  r.delete(
    '/users/:id',
    {
      schema: { tags, summary: 'Delete a user; their sessions end at once', params: z.object({ id: z.string().min(1).max(64) }), response: { 204: z.null(), 404: errorSchema } },
      config: { role: 'admin' },
    },
    async (req, reply) => {
      if (!(await users.delete(req.params.id))) throw new ApiError(404, 'not_found', `no user ${req.params.id}`);
      return reply.code(204).send(null);
    },
  );
};
