// The console session: log in (POST), who am I (GET), log out (DELETE), change my password.
// The session id travels only in the httpOnly cookie; the answer carries the CSRF token that
// unsafe requests made with the cookie must send back in X-CSRF-Token.
import type { FastifyBaseLogger, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { ApiError, errorSchema, readCookie, roles, sameOrigin, sessionCookie, type SessionIdentity } from '../api/index.js';
import type { LoginLimits } from './login-limiter.js';
import { KdfBusyError } from './kdf-gate.js';
import { MAX_PASSWORD_LENGTH } from './password.js';
import { UserError, type SessionView, type UserService } from './service.js';

export const SESSION_COOKIE = 'apiary_session';

/** A login attempt as the audit log records it (the password never leaves the route). */
export interface LoginAttempt {
  username: string;
  userId: string | null;
  role: string | null;
  source: string;
  outcome: 'success' | 'invalid_credentials' | 'rate_limited';
  status: number;
}

export interface SessionRoutesOptions {
  users: UserService;
  limiter: LoginLimits;
  registry: Registry;
  logger: FastifyBaseLogger;
  /** Records each login attempt (the audit log). */
  onLoginAttempt?: (attempt: LoginAttempt) => void | Promise<unknown>;
}

export const sessionAnswer = z.object({
  user: z.object({ id: z.string(), username: z.string(), role: z.enum(roles) }),
  csrf_token: z.string().describe('send it as X-CSRF-Token with every POST/PUT/PATCH/DELETE made with the session cookie'),
  expires_at: z.number().int().describe('absolute end of the session, epoch ms'),
  idle_expires_at: z.number().int().describe('the session ends at this time (epoch ms) unless used before; each use moves it'),
});

export function sessionBody(s: SessionView) {
  return { user: s.user, csrf_token: s.csrfToken, expires_at: s.expiresAt, idle_expires_at: s.idleExpiresAt };
}

/** Log lines carry the name a client sent: bounded, and without control characters. */
const shownName = (username: string) => username.slice(0, 64).replace(/[\u0000-\u001f\u007f]/g, '?');

export const sessionRoutes: FastifyPluginAsync<SessionRoutesOptions> = async (app, opts) => {
  const { users, limiter, logger } = opts;
  const logins = new Counter({
    name: 'apiary_console_logins_total',
    help: 'Console login attempts (outcome: success | invalid_credentials | rate_limited | busy: too many password checks waiting)',
    labelNames: ['outcome'],
    registers: [opts.registry],
  });
  for (const outcome of ['success', 'invalid_credentials', 'rate_limited', 'busy']) logins.inc({ outcome }, 0);
  const secure = (req: FastifyRequest) => req.protocol === 'https';
  const current = (req: FastifyRequest) => req.consoleSession as (SessionIdentity & SessionView) | undefined;
  const record = async (attempt: LoginAttempt) => {
    try {
      await opts.onLoginAttempt?.(attempt);
    } catch (err) {
      logger.error({ err }, 'could not record a login attempt in the audit log');
    }
  };
  const tooMany = (reply: FastifyReply, retryAfterSeconds: number) =>
    reply
      .code(429)
      .header('retry-after', String(retryAfterSeconds))
      .send({ error: 'rate_limited', message: `too many failed logins; try again in ${retryAfterSeconds} s` });

  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post(
    '/session',
    {
      schema: {
        tags: ['session'],
        summary: 'Log in to the console: sets the httpOnly session cookie apiary_session and answers the CSRF token',
        body: z.object({ username: z.string().min(1).max(256), password: z.string().min(1).max(MAX_PASSWORD_LENGTH) }),
        response: { 200: sessionAnswer, 401: errorSchema, 403: errorSchema, 429: errorSchema, 503: errorSchema },
      },
    },
    async (req, reply) => {
      // A login form posted from another site would log the browser in as the attacker.
      if (req.headers.origin !== undefined && !sameOrigin(req.headers.origin, req.host)) {
        return reply.code(403).send({ error: 'forbidden_origin', message: 'log in from a page of this origin' });
      }
      const { username, password } = req.body;
      const source = req.ip;
      const limited = await limiter.check(source, username);
      if (limited.retryAfterSeconds > 0) {
        logins.inc({ outcome: 'rate_limited' });
        logger.warn({ username: shownName(username), source, limit: limited.limit, retryAfterSeconds: limited.retryAfterSeconds }, 'console login refused: too many failures');
        await record({ username: shownName(username), userId: null, role: null, source, outcome: 'rate_limited', status: 429 });
        return tooMany(reply, limited.retryAfterSeconds);
      }
      let result;
      try {
        result = await users.login(username, password, source);
      } catch (err) {
        if (!(err instanceof KdfBusyError)) throw err;
        logins.inc({ outcome: 'busy' });
        logger.warn({ username: shownName(username), source }, 'console login refused: too many password checks waiting');
        return reply.code(503).header('retry-after', '1').send({ error: 'busy', message: err.message });
      }
      if (!result.ok) {
        await limiter.failed(source, username);
        logins.inc({ outcome: 'invalid_credentials' });
        logger.info({ username: shownName(username), source, reason: result.reason }, 'console login failed');
        const known = result.reason === 'unknown_user' ? undefined : await users.byName(username);
        await record({ username: shownName(username), userId: known?.id ?? null, role: known?.role ?? null, source, outcome: 'invalid_credentials', status: 401 });
        return reply.code(401).send({ error: 'invalid_credentials', message: 'wrong username or password' });
      }
      await limiter.succeeded(username);
      // The cookie this browser held is about to be replaced: its session would only linger.
      const previous = readCookie(req.headers.cookie, SESSION_COOKIE);
      if (previous) await users.logoutCookie(previous);
      logins.inc({ outcome: 'success' });
      const s = result.session;
      logger.info({ username: s.user.username, source }, 'console login');
      await record({ username: s.user.username, userId: s.user.id, role: s.user.role, source, outcome: 'success', status: 200 });
      reply.header('set-cookie', sessionCookie(SESSION_COOKIE, result.sessionId, { maxAgeSeconds: users.maxAgeMs / 1000, secure: secure(req) }));
      return sessionBody(s);
    },
  );

  r.get(
    '/session',
    {
      schema: { tags: ['session'], summary: 'The logged-in user and the session CSRF token (401 when not logged in)', response: { 200: sessionAnswer, 401: errorSchema } },
      config: { role: 'viewer', sessionOnly: true },
    },
    async (req) => sessionBody(current(req)!),
  );

  r.delete(
    '/session',
    {
      schema: { tags: ['session'], summary: 'Log out: ends the session (its WebSockets close) and clears the cookie', response: { 204: z.null() } },
      config: { role: 'viewer', sessionOnly: true },
    },
    async (req, reply) => {
      const s = current(req)!;
      await users.logout(s.idHash);
      logger.info({ username: s.user.username, source: req.ip }, 'console logout');
      reply.header('set-cookie', sessionCookie(SESSION_COOKIE, '', { maxAgeSeconds: 0, secure: secure(req) }));
      return reply.code(204).send(null);
    },
  );

  r.post(
    '/session/password',
    {
      schema: {
        tags: ['session'],
        summary: "Change the logged-in user's password (the current one is required); the user's other sessions end",
        body: z.object({ current_password: z.string().min(1).max(MAX_PASSWORD_LENGTH), new_password: z.string().min(1).max(MAX_PASSWORD_LENGTH) }),
        response: { 204: z.null(), 400: errorSchema, 403: errorSchema, 429: errorSchema, 503: errorSchema },
      },
      config: { role: 'viewer', sessionOnly: true },
    },
    async (req, reply) => {
      const s = current(req)!;
      // Someone holding a stolen cookie must not get to guess the password at full speed either.
      const limited = await limiter.check(req.ip, s.user.username);
      if (limited.retryAfterSeconds > 0) return tooMany(reply, limited.retryAfterSeconds);
      let outcome;
      try {
        outcome = await users.changeOwnPassword(s, req.body.current_password, req.body.new_password);
      } catch (err) {
        if (err instanceof UserError) throw new ApiError(400, err.code, err.message);
        if (err instanceof KdfBusyError) return reply.code(503).header('retry-after', '1').send({ error: 'busy', message: err.message });
        throw err;
      }
      if (outcome === 'wrong_password') {
        await limiter.failed(req.ip, s.user.username);
        return reply.code(403).send({ error: 'invalid_credentials', message: 'the current password is wrong' });
      }
      logger.info({ username: s.user.username, source: req.ip }, 'console user changed their password');
      return reply.code(204).send(null);
    },
  );
};
