// The one fastify instance every domain plugs its routes into. It owns what all routes share:
// zod validation/serialisation, OpenAPI generation, WebSocket support, the error shape, and the
// operator role check declared by each route in `config.role`.
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import {
  hasZodFastifySchemaValidationErrors,
  isResponseSerializationError,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { OperatorSockets, type ClosableSocket } from './operator-sockets.js';
import { readCookie, sameOrigin, secretsEqual } from './cookies.js';
import { logDestination, type LogFormat } from './log-format.js';

export const roles = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof roles)[number];

/** Who made an API request, as resolved from its bearer token or console session. */
export interface Operator {
  id: string;
  name: string;
  role: Role;
  /** token (bearer token; the default) or user (a person logged in to the console). */
  kind?: 'token' | 'user';
}

/** A console session as the auth hook needs it (resolved from its cookie). */
export interface SessionIdentity {
  operator: Operator;
  /** What unsafe requests made with the cookie must send in X-CSRF-Token. */
  csrfToken: string;
  /** Key of the session's WebSockets in OperatorSockets, so ending the session closes them. */
  socketKey: string;
}

/** Name of the header carrying the CSRF token of a cookie-authenticated unsafe request. */
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Minimum operator role for the route; routes without it are public. */
    role?: Role;
    /** The route acts on the console session itself: only the session cookie authenticates it. */
    sessionOnly?: boolean;
  }
  interface FastifyRequest {
    operator?: Operator;
    /** Set when the request was authenticated by a console session cookie. */
    consoleSession?: SessionIdentity;
    /** The authenticated operator whose role was too low for the route (answered 403): for the audit log. */
    deniedOperator?: Operator;
  }
  interface FastifyInstance {
    /** Open WebSockets per operator token, so revoking a token can close them at once. */
    operatorSockets: OperatorSockets;
  }
}

export interface HttpServerOptions {
  /** `false` (silent, tests), `true` (info), or a pino level. The app's logger is the root
   * logger of the process: composition hands `app.log` (or children) to the domains. */
  logger?: boolean | { level: string; format?: LogFormat };
  /** Requests slower than this are logged at warn; other successful ones at debug. Default 1000 ms. */
  slowRequestMs?: number;
  /**
   * Resolves a bearer token to an operator. When absent, roles are not enforced: only domain
   * tests build a server without it; `apiary serve` always passes one.
   */
  authenticate?: (token: string) => Operator | undefined | Promise<Operator | undefined>;
  /** Console sessions: the cookie a browser sends instead of a bearer token, and how to resolve it. */
  sessions?: {
    cookieName: string;
    resolve: (cookieValue: string) => SessionIdentity | undefined | Promise<SessionIdentity | undefined>;
  };
  /**
   * Addresses/CIDRs of reverse proxies whose X-Forwarded-For/-Proto/-Host are believed (client
   * address, TLS for the Secure cookie flag, origin checks). Empty: none.
   */
  trustProxy?: string[];
  /** Serve Swagger UI at /docs. */
  docs?: boolean;
  /** Largest accepted request body, bytes. */
  bodyLimit?: number;
  /** Time a client has to send a whole request, headers and body (408 after). Default 30 s. */
  requestTimeoutMs?: number;
  /** Time a client has to send the request headers. Default 10 s (at most requestTimeoutMs). */
  headersTimeoutMs?: number;
  /** Open HTTP connections (REST, node and stream WebSockets); more are dropped at accept. Default 4096. */
  maxConnections?: number;
  version?: string;
}

const roleRank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function roleAllows(have: Role, need: Role): boolean {
  return roleRank[have] >= roleRank[need];
}

/** Query parameter a browser passes its token in when opening a WebSocket (it cannot set headers). */
const QUERY_TOKEN = 'access_token';

/** `Authorization: Bearer <token>`; the scheme name is case-insensitive (RFC 9110 11.1). */
function headerToken(headers: Record<string, unknown>): string | undefined {
  const auth = headers['authorization'];
  if (typeof auth !== 'string') return undefined;
  const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
  return m ? m[1] : undefined;
}

/** The `access_token` query parameter, in whatever percent-encoding of its name. */
function queryToken(url: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const token = new URLSearchParams(url.slice(q + 1)).get(QUERY_TOKEN);
  return token || undefined;
}

/** Query parameter names whose values are never logged (compared after percent-decoding). */
const SECRET_PARAM = /token|secret|passw|auth|key/i;

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

/**
 * Request URLs as logged: the values of token-like query parameters are replaced, whatever the
 * encoding of their names (`access_token`, `access%5Ftoken`, `ACCESS_TOKEN`).
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      return SECRET_PARAM.test(decodeName(name)) ? `${name}=[redacted]` : pair;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** Thrown by route handlers for an expected failure; answered as `{error: code, message}`. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * OpenAPI transform: the zod schemas become JSON Schema, and each operation states the role its
 * route enforces, read from the same `config.role` the onRequest hook checks: `x-role` for guarded
 * routes, an empty `security` list for public ones. The role matrix test reads it back.
 */
const withRoleInOpenApi: typeof jsonSchemaTransform = (input) => {
  const out = jsonSchemaTransform(input);
  const config = input.route.config as { role?: Role; sessionOnly?: boolean } | undefined;
  const role = config?.role;
  // A session-only route (the console session itself) is answered for a logged-in user of any role.
  const auth = config?.sessionOnly ? { 'x-session-only': true, security: [{ session: [] }] } : {};
  return { ...out, schema: { ...out.schema, ...(role ? { 'x-role': role, ...auth } : { security: [] }) } };
};

export async function createHttpServer(opts: HttpServerOptions = {}): Promise<FastifyInstance> {
  const level = opts.logger === true ? 'info' : opts.logger ? opts.logger.level : undefined;
  const stream = logDestination(typeof opts.logger === 'object' ? (opts.logger.format ?? 'auto') : 'auto');
  const logger: FastifyServerOptions['logger'] = level
    ? {
        level,
        ...(stream ? { stream } : {}),
        // Authorization headers are never serialised; token query parameters are redacted.
        serializers: {
          req: (req: { method: string; url: string; ip?: string }) => ({
            method: req.method,
            url: redactUrl(req.url),
            remoteAddress: req.ip,
          }),
        },
      }
    : false;
  // Slow clients (a body trickled a byte at a time) hold a socket and a parser each: every request
  // must arrive whole within requestTimeoutMs, checked every second (Node's default is 30 s).
  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  const headersTimeout = Math.min(opts.headersTimeoutMs ?? 10_000, requestTimeout);
  // fastify's own two info lines per request would drown everything else: one access line per
  // request instead, at debug unless it failed (5xx: error) or was slow (warn).
  const app = Fastify({
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    logger,
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout,
    trustProxy: opts.trustProxy && opts.trustProxy.length > 0 ? opts.trustProxy : false,
    http: { headersTimeout, connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(requestTimeout / 4))) },
  });
  app.server.maxConnections = opts.maxConnections ?? 4096;
  const slowMs = opts.slowRequestMs ?? 1000;
  // A WebSocket upgrade never reaches onResponse (the socket is handed over), so it gets its
  // access line when it arrives.
  app.addHook('onRequest', async (request) => {
    if (request.headers.upgrade?.toLowerCase() !== 'websocket' || !['debug', 'trace'].includes(request.log.level)) return;
    request.log.debug({ req: request }, `${request.method} ${redactUrl(request.url)} (WebSocket upgrade)`);
  });
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    const ms = Math.round(reply.elapsedTime);
    const lvl = status >= 500 ? 'error' : ms >= slowMs ? 'warn' : 'debug';
    if (lvl === 'debug' && !['debug', 'trace'].includes(request.log.level)) return;
    request.log[lvl]({ req: request, statusCode: status, ms }, `${request.method} ${redactUrl(request.url)} ${status} ${ms} ms${lvl === 'warn' ? ' (slow)' : ''}`);
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Apiary API',
        description: 'Operator API of the Apiary honeypot fleet core.',
        version: opts.version ?? '0.1.0',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: opts.sessions?.cookieName ?? 'apiary_session' },
        },
      },
      security: [{ bearer: [] }, ...(opts.sessions ? [{ session: [] }] : [])],
    },
    transform: withRoleInOpenApi,
  });
  if (opts.docs) await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });

  // The upgrade request is authenticated in onRequest; its WebSocket exists only later, on the
  // server's 'connection' event, which hands back the same raw request.
  const operatorSockets = new OperatorSockets();
  const upgradeOperators = new WeakMap<object, string>();
  app.decorate('operatorSockets', operatorSockets);
  app.websocketServer.on('connection', (socket: ClosableSocket, raw: object) => {
    const operatorId = upgradeOperators.get(raw);
    if (operatorId !== undefined) operatorSockets.track(operatorId, socket);
  });

  const websocketRoutes = new Set<string>();
  app.addHook('onRoute', (route) => {
    if (route.websocket) websocketRoutes.add(route.url);
  });

  const authenticate = opts.authenticate;
  const sessions = opts.sessions;
  if (authenticate) {
    app.addHook('onRequest', async (request, reply) => {
      const need = request.routeOptions.config.role;
      if (!need) return;
      let token = headerToken(request.headers);
      if (!token) {
        // A query token is a login only on a WebSocket upgrade of a WebSocket route: anywhere else
        // a client can send the header, and URLs end up in logs, histories and proxies.
        const fromQuery = queryToken(request.url);
        if (fromQuery && request.ws && websocketRoutes.has(request.routeOptions.url ?? '')) token = fromQuery;
        else if (fromQuery) {
          return reply.code(401).send({
            error: 'unauthorized',
            message: `the ${QUERY_TOKEN} query parameter is accepted only on WebSocket upgrades; send Authorization: Bearer <token>`,
          });
        }
      }
      if (!token && sessions) {
        const cookie = readCookie(request.headers.cookie, sessions.cookieName);
        if (cookie) {
          // A browser sends the cookie with any request to this host, whoever's page made it:
          // WebSockets must come from a page of this origin, unsafe methods must carry the
          // session's CSRF token (which only this origin's pages can read).
          if (request.ws && !sameOrigin(request.headers.origin, request.host)) {
            return reply.code(403).send({ error: 'forbidden_origin', message: 'a WebSocket opened with the session cookie must come from a page of this origin' });
          }
          const session = await sessions.resolve(cookie);
          if (!session) return reply.code(401).send({ error: 'unauthorized', message: 'session expired or unknown; log in again' });
          if (!SAFE_METHODS.has(request.method)) {
            const sent = request.headers[CSRF_HEADER];
            if (typeof sent !== 'string' || !secretsEqual(sent, session.csrfToken)) {
              return reply.code(403).send({ error: 'csrf_failed', message: 'send the X-CSRF-Token header with the csrf_token of your session' });
            }
          }
          if (!roleAllows(session.operator.role, need)) {
            request.deniedOperator = session.operator;
            return reply.code(403).send({ error: 'forbidden', message: `role ${session.operator.role} may not do this (needs ${need})` });
          }
          request.operator = session.operator;
          request.consoleSession = session;
          if (request.ws) upgradeOperators.set(request.raw, session.socketKey);
          return;
        }
      }
      if (request.routeOptions.config.sessionOnly) {
        return reply.code(401).send({ error: 'unauthorized', message: 'this route needs a console session (log in with POST /api/v1/session); tokens do not have one' });
      }
      if (!token) {
        return reply.code(401).send({ error: 'unauthorized', message: sessions ? 'missing bearer token or session cookie' : 'missing bearer token' });
      }
      const operator = await authenticate(token);
      if (!operator) {
        return reply.code(401).send({ error: 'unauthorized', message: 'invalid or revoked token' });
      }
      if (!roleAllows(operator.role, need)) {
        request.deniedOperator = operator;
        return reply
          .code(403)
          .send({ error: 'forbidden', message: `role ${operator.role} may not do this (needs ${need})` });
      }
      request.operator = operator;
      if (request.ws) upgradeOperators.set(request.raw, operator.id);
    });
  }

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const detail = err.validation
        .map((v) => `${err.validationContext ?? ''}${v.instancePath || ''} ${v.message ?? ''}`.trim())
        .join('; ');
      return reply.code(400).send({ error: 'bad_request', message: detail || err.message });
    }
    if (isResponseSerializationError(err)) {
      request.log.error({ err, url: redactUrl(request.url) }, 'response did not match its schema');
      return reply.code(500).send({ error: 'internal', message: 'response serialisation failed' });
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    // An ApiError carries a message meant for the caller (e.g. 503 'query exceeded its time limit').
    if (status >= 500 && !(err instanceof ApiError)) {
      request.log.error({ err }, 'request failed');
      return reply.code(status).send({ error: 'internal', message: 'internal error' });
    }
    const code = err instanceof ApiError ? err.code : (err.code ?? 'error').toLowerCase();
    return reply.code(status).send({ error: code, message: err.message });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  return app;
}
