import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, errorSchema } from '../api/index.js';
import { parseIsoTimestamp } from './normalize.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, QueryError } from './queries.js';
import type { EventService } from './service.js';
import type { EventFilter } from './types.js';

export interface EventRoutesOptions {
  events: EventService;
}

const timeParam = z
  .string()
  .max(64)
  .transform((v, ctx) => {
    const t = /^\d{1,15}$/.test(v) ? Number(v) : parseIsoTimestamp(v);
    if (Number.isNaN(t)) {
      ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 date-time or epoch milliseconds' });
      return z.NEVER;
    }
    return t;
  })
  .describe('ISO 8601 date-time or epoch milliseconds');

const name = z.string().min(1).max(255);

/**
 * Event data exactly as stored. Not z.record: parsing rebuilds the object key by key, and a
 * `__proto__` key (attackers send them) would become the copy's prototype instead of a key.
 */
const eventDataSchema = z
  .custom<Record<string, unknown>>((v) => v !== null && typeof v === 'object' && !Array.isArray(v), 'expected an object')
  .meta({ type: 'object', additionalProperties: true, description: 'the data object the node sent (integers beyond 2^53 and non-finite numbers as strings)' });

const filterShape = {
  node: name.optional().describe('node name'),
  pot: name.optional().describe('pot id'),
  pot_type: name.optional(),
  event_type: name.optional(),
  since: timeParam.optional().describe('events with timestamp >= since (ISO 8601 or epoch ms)'),
  until: timeParam.optional().describe('events with timestamp < until (ISO 8601 or epoch ms)'),
};

const listQuery = z.object({
  ...filterShape,
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  cursor: z.string().max(64).optional().describe('next_cursor of the previous page'),
  order: z.enum(['desc', 'asc']).default('desc'),
});

const statsQuery = z.object({
  ...filterShape,
  bucket: z.enum(['hour', 'day']).default('hour'),
});

const streamQuery = z.object(filterShape);

export const eventJsonSchema = z.object({
  id: z.number().int(),
  node: z.string(),
  pot_id: z.string(),
  pot_type: z.string(),
  event_type: z.string(),
  timestamp: z.string().describe('ISO 8601 (UTC); the node-reported time, or the receive time if it sent none usable'),
  data: eventDataSchema,
  received_at: z.string().describe('ISO 8601 (UTC), when the core read the event'),
});

const pageSchema = z.object({ events: z.array(eventJsonSchema), next_cursor: z.string().nullable() });

const statsSchema = z.object({
  since: z.string(),
  until: z.string(),
  bucket: z.enum(['hour', 'day']),
  total: z.number().int(),
  by_event_type: z.array(z.object({ event_type: z.string(), count: z.number().int() })),
  by_node: z.array(z.object({ node: z.string(), count: z.number().int() })),
  by_pot_type: z.array(z.object({ pot_type: z.string(), count: z.number().int() })),
  buckets: z.array(z.object({ start: z.string(), count: z.number().int() })),
});

function toFilter(q: {
  node?: string;
  pot?: string;
  pot_type?: string;
  event_type?: string;
  since?: number;
  until?: number;
}): EventFilter {
  return { node: q.node, pot: q.pot, potType: q.pot_type, eventType: q.event_type, since: q.since, until: q.until };
}

const tags = ['events'];

/**
 * Reads run in the read pool: a bad query is a 400, a query past its time limit or a full pool a
 * 503 (the caller may retry; the API itself stays responsive meanwhile).
 */
async function answerQuery<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const name = (err as Error)?.name;
    if (err instanceof QueryError || name === 'QueryError') throw new ApiError(400, 'bad_request', (err as Error).message);
    if (name === 'QueryTimeoutError' || name === 'PoolBusyError') {
      throw new ApiError(503, 'query_unavailable', (err as Error).message);
    }
    throw err;
  }
}

/**
 * Events API, registered under /api/v1: GET /events, /events/stats, /events/:id and the live
 * WebSocket stream /events/stream. Needs @fastify/websocket registered on the instance.
 */
export const eventRoutes: FastifyPluginAsync<EventRoutesOptions> = async (instance: FastifyInstance, opts) => {
  const { events } = opts;
  if (!instance.hasDecorator('websocketServer')) {
    throw new Error('eventRoutes needs @fastify/websocket registered first (the live stream is a WebSocket)');
  }
  const app = instance.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/events',
    {
      schema: {
        tags,
        summary: 'List attack events, newest first, with filters and keyset paging',
        querystring: listQuery,
        response: { 200: pageSchema, 400: errorSchema, 503: errorSchema },
      },
      config: { role: 'viewer' },
    },
    async (req) => {
      const q = req.query;
      return answerQuery(() => events.list({ ...toFilter(q), limit: q.limit, cursor: q.cursor, order: q.order }));
    },
  );

  app.get(
    '/events/stats',
    {
      schema: {
        tags,
        summary: 'Event counts by event type, node, pot type and time bucket over a range (default: last 24 h)',
        querystring: statsQuery,
        response: { 200: statsSchema, 400: errorSchema, 503: errorSchema },
      },
      config: { role: 'viewer' },
    },
    async (req) => answerQuery(() => events.stats({ ...toFilter(req.query), bucket: req.query.bucket })),
  );

  app.get(
    '/events/stream',
    {
      websocket: true,
      schema: {
        tags,
        summary: 'Live attack events over WebSocket: one JSON event per text message, same filters as GET /events',
        querystring: streamQuery,
      },
      config: { role: 'viewer' },
    },
    (socket, req) => {
      const q = req.query as z.infer<typeof streamQuery>;
      events.addStreamClient(socket, toFilter(q));
      // The stream is one-way; anything a client sends is ignored.
    },
  );

  app.get(
    '/events/:id',
    {
      schema: {
        tags,
        summary: 'One attack event',
        params: z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }),
        response: { 200: eventJsonSchema, 404: errorSchema, 503: errorSchema },
      },
      config: { role: 'viewer' },
    },
    async (req) => {
      const event = await answerQuery(() => events.get(req.params.id));
      if (event === undefined) throw new ApiError(404, 'not_found', `event ${req.params.id} not found`);
      return event;
    },
  );
};
