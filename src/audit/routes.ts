// GET /api/v1/audit: the audit log, newest first, for admins.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuditEntry, AuditStore } from './store.js';

export const MAX_AUDIT_PAGE = 500;

const timeParam = z
  .string()
  .max(64)
  .transform((v, ctx) => {
    const t = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
    if (Number.isNaN(t)) {
      ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 date-time or epoch milliseconds' });
      return z.NEVER;
    }
    return t;
  })
  .describe('ISO 8601 date-time or epoch milliseconds');

const auditQuery = z.object({
  actor: z.string().min(1).max(200).optional().describe('token or user name, or token or user id'),
  action: z.string().min(1).max(200).optional().describe('exact action (tokens.create) or a prefix ending in * (tokens.*)'),
  target: z.string().min(1).max(256).optional().describe('node name, token id, ident, rule id, ...'),
  since: timeParam.optional().describe('entries at or after this time'),
  until: timeParam.optional().describe('entries before this time'),
  cursor: z.string().regex(/^\d{1,15}$/, 'expected the next_cursor of a previous page').optional().describe('next_cursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).default(100),
});

const entrySchema = z.object({
  id: z.number().int(),
  at: z.string().describe('ISO 8601'),
  actor: z.object({
    id: z.string().nullable(),
    name: z.string().nullable(),
    role: z.string().nullable(),
    kind: z.string().nullable().describe('token (bearer token), user (console login) or cli; null in entries older than console users (tokens)'),
  }),
  source: z.string().describe('remote address of the request'),
  action: z.string(),
  method: z.string(),
  route: z.string(),
  target: z.string().nullable(),
  status: z.number().int().describe('HTTP status of the answer (refused and failed attempts are recorded too)'),
  changes: z.unknown().describe('the request body, secrets masked as "[masked]"; null without a body'),
});

function view(e: AuditEntry) {
  let changes: unknown = null;
  if (e.changes !== null) {
    try {
      changes = JSON.parse(e.changes);
    } catch {
      changes = e.changes;
    }
  }
  return {
    id: e.id,
    at: new Date(e.at).toISOString(),
    actor: { id: e.actorId, name: e.actorName, role: e.actorRole, kind: e.actorKind },
    source: e.source,
    action: e.action,
    method: e.method,
    route: e.route,
    target: e.target,
    status: e.status,
    changes,
  };
}

export const auditRoutes: FastifyPluginAsync<{ store: AuditStore }> = async (app, { store }) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/audit',
    {
      schema: {
        tags: ['audit'],
        summary: 'Operator actions (who, when, from where, what changed; secrets masked), newest first, keyset-paged',
        querystring: auditQuery,
        response: { 200: z.object({ entries: z.array(entrySchema), next_cursor: z.string().nullable() }) },
      },
      config: { role: 'admin' },
    },
    async (req) => {
      const q = req.query;
      const rows = await store.list({
        actor: q.actor,
        action: q.action,
        target: q.target,
        since: q.since,
        until: q.until,
        before: q.cursor === undefined ? undefined : Number(q.cursor),
        limit: q.limit + 1,
      });
      const page = rows.slice(0, q.limit);
      return { entries: page.map(view), next_cursor: rows.length > q.limit ? String(page[page.length - 1]!.id) : null };
    },
  );
};
