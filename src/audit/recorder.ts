// The one hook that records every operator action: each mutating request (POST, PUT, PATCH,
// DELETE) on a role-guarded route, made by an authenticated operator, whatever its outcome (a
// 403 for a role too low included).
// Installed on the root fastify instance before the domains' routes are registered.
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { actionFor, maskedChanges, targetFor } from './describe.js';
import type { AuditStore } from './store.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Answers larger than this are not parsed for the created thing's id. */
const MAX_ANSWER_PARSE = 64 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set in onSend for audited requests: the id/name the answer gave, never the answer itself. */
    auditAnswerTarget?: string | null;
  }
}

export interface AuditRecorderOptions {
  store: AuditStore;
  logger: FastifyBaseLogger;
  registry: Registry;
  now?: () => number;
}

export function installAuditRecorder(app: FastifyInstance, opts: AuditRecorderOptions): void {
  const written = new Counter({
    name: 'apiary_audit_entries_total',
    help: 'Operator actions recorded in the audit log (outcome: recorded | failed, a failed write is logged)',
    labelNames: ['outcome'],
    registers: [opts.registry],
  });
  written.inc({ outcome: 'recorded' }, 0);
  written.inc({ outcome: 'failed' }, 0);
  const now = opts.now ?? Date.now;
  const audited = (method: string, role: unknown, operator: unknown) => MUTATING.has(method) && role !== undefined && operator !== undefined;
  // A refused attempt (403: the token's role is too low) is recorded with the operator who made it.
  const actorOf = (request: FastifyRequest) => request.operator ?? request.deniedOperator;

  app.addHook('onSend', async (request, _reply, payload) => {
    if (!audited(request.method, request.routeOptions.config.role, actorOf(request))) return payload;
    let answer: unknown;
    if (typeof payload === 'string' && payload.length <= MAX_ANSWER_PARSE) {
      try {
        answer = JSON.parse(payload);
      } catch {
        answer = undefined;
      }
    }
    // Only the target is kept: answers may hold secrets shown once (a new token, a node secret).
    request.auditAnswerTarget = targetFor(undefined, answer, undefined);
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const operator = actorOf(request);
    if (!audited(request.method, request.routeOptions.config.role, operator) || !operator) return;
    const route = request.routeOptions.url ?? request.url.split('?')[0]!;
    try {
      await opts.store.append({
        at: now(),
        actorId: operator.id,
        actorName: operator.name,
        actorRole: operator.role,
        actorKind: operator.kind ?? 'token',
        source: request.ip,
        action: actionFor(request.method, route),
        method: request.method,
        route,
        target: targetFor(request.params, undefined, undefined) ?? request.auditAnswerTarget ?? targetFor(undefined, undefined, request.body),
        status: reply.statusCode,
        changes: maskedChanges(request.body),
      });
      written.inc({ outcome: 'recorded' });
    } catch (err) {
      written.inc({ outcome: 'failed' });
      opts.logger.error({ err, method: request.method, route, actor: operator.name }, 'could not record an operator action in the audit log');
    }
  });
}
