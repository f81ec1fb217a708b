// The one fastify instance every domain plugs its routes into. It owns what all routes share:
// zod validation/serialisation, OpenAPI generation, WebSocket support, the error shape, and the
// operator role check declared by each route in `config.role`.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
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

export const roles = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof roles)[number];

/** Who made an API request, as resolved from its bearer token. */
export interface Operator {
  id: string;
  name: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Minimum operator role for the route; routes without it are public. */
    role?: Role;
  }
  interface FastifyRequest {
    operator?: Operator;
  }
}

export interface HttpServerOptions {
  /** `false` (silent, tests), `true` (info), or a pino level. The app's logger is the root
   * logger of the process: composition hands `app.log` (or children) to the domains. */
  logger?: boolean | { level: string };
  /**
   * Resolves a bearer token to an operator. When absent, roles are not enforced: only domain
   * tests build a server without it; `apiary serve` always passes one.
   */
  authenticate?: (token: string) => Operator | undefined | Promise<Operator | undefined>;
  /** Serve Swagger UI at /docs. */
  docs?: boolean;
  /** Largest accepted request body, bytes. */
  bodyLimit?: number;
  version?: string;
}

const roleRank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function roleAllows(have: Role, need: Role): boolean {
  return roleRank[have] >= roleRank[need];
}

/** Bearer token from the Authorization header, or `access_token` query parameter (browsers cannot
 * set headers on a WebSocket upgrade). */
function bearerToken(headers: Record<string, unknown>, url: string): string | undefined {
  const auth = headers['authorization'];
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim();
  const q = url.indexOf('?');
  if (q >= 0) {
    const token = new URLSearchParams(url.slice(q + 1)).get('access_token');
    if (token) return token;
  }
  return undefined;
}

/** Request URLs as logged: token query parameters are replaced, never written to logs. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:access_token|token)=)[^&]*/g, '$1[redacted]');
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

export async function createHttpServer(opts: HttpServerOptions = {}): Promise<FastifyInstance> {
  const level = opts.logger === true ? 'info' : opts.logger ? opts.logger.level : undefined;
  const logger: FastifyServerOptions['logger'] = level
    ? {
        level,
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
  const app = Fastify({ bodyLimit: opts.bodyLimit ?? 1024 * 1024, logger });

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
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  if (opts.docs) await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });

  const authenticate = opts.authenticate;
  if (authenticate) {
    app.addHook('onRequest', async (request, reply) => {
      const need = request.routeOptions.config.role;
      if (!need) return;
      const token = bearerToken(request.headers, request.url);
      if (!token) {
        return reply.code(401).send({ error: 'unauthorized', message: 'missing bearer token' });
      }
      const operator = await authenticate(token);
      if (!operator) {
        return reply.code(401).send({ error: 'unauthorized', message: 'invalid or revoked token' });
      }
      if (!roleAllows(operator.role, need)) {
        return reply
          .code(403)
          .send({ error: 'forbidden', message: `role ${operator.role} may not do this (needs ${need})` });
      }
      request.operator = operator;
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
      request.log.error({ err, url: request.url }, 'response did not match its schema');
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
