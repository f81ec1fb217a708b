// Attack analytics API under /api/v1 (viewer role): top-N, timelines, attacker profiles,
// sessions, intel feeds (JSON/CSV/TXT, credentials, STIX 2.1) and the data credits.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, errorSchema } from '../api/index.js';
import { canonicalIp } from './ip.js';
import { DIMENSIONS, TAGS } from './dimensions.js';
import { csv, intelIpCsv, intelIpJson, intelIpTxt } from './feeds.js';
import type { GeoSources } from './geo.js';
import { normaliseEvent, type StoredEvent } from './record.js';
import { AnalyticsQueryError } from './query-results.js';
import { buildStixBundle } from './stix.js';
import type { AttackReader } from './reader.js';

export interface AnalyticsRoutesOptions {
  /** The AttackStore's reads (in the core: through the read pool, off the event loop). */
  reader: AttackReader;
  /** Names of the enrichment data in use, for GET /attacks/credits. */
  geoSources: GeoSources;
  /** STIX identity name of the fleet. Default 'Apiary honeypot fleet'. */
  stixIdentity?: string;
  /** Looks up a stored event for GET /attacks/records/{event_id}. */
  eventById?: (id: number) => Promise<StoredEvent | undefined>;
  /** For tests: the clock. */
  now?: () => number;
}

const DAY = 86_400_000;
const tags = ['attacks'];

const timeParam = z
  .string()
  .transform((v, ctx) => {
    const t = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
    if (Number.isNaN(t) || !/^\d{1,15}$|^\d{4}-\d{2}-\d{2}/.test(v)) {
      ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 date-time or epoch milliseconds' });
      return z.NEVER;
    }
    return t;
  })
  .describe('ISO 8601 date-time or epoch milliseconds');

const name = z.string().min(1).max(255);
const windowShape = {
  since: timeParam.optional().describe('window start (default: until - 24 h); widened down to the bucket start'),
  until: timeParam.optional().describe('window end, exclusive (default: now); widened up to the next bucket start'),
  node: name.optional(),
  pot_type: name.optional(),
};
const dimension = z.enum(DIMENSIONS);

const topItem = z.object({
  key: z.string(),
  count: z.number().int(),
  as_org: z.string().nullable().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
});
const topResponse = z.object({
  by: dimension,
  since: z.string(),
  until: z.string(),
  exact: z.boolean().describe(
    'true: exact counts and the true top. false: the whole days of an unfiltered window of 2 days or more were summed ' +
      'from per-day top-2000 lists (dimensions with more keys a day); see max_undercount',
  ),
  max_undercount: z.number().int().describe(
    'each count is at most this much below the true count (never above); a value not listed has a true count of at most the last listed count plus this',
  ),
  items: z.array(topItem),
});
const timelineResponse = z.object({
  bucket: z.enum(['minute', 'hour', 'day']),
  by: dimension.nullable(),
  since: z.string(),
  until: z.string(),
  series: z.array(z.object({ key: z.string().nullable(), points: z.array(z.object({ start: z.string(), count: z.number().int() })) })),
});
const geoSchema = z.object({
  scope: z.enum(['public', 'private', 'loopback', 'reserved']),
  country: z.string().nullable(),
  asn: z.number().int().nullable(),
  as_org: z.string().nullable(),
  city: z.string().nullable(),
  latitude: z.number().nullable(),
  longitude: z.number().nullable(),
});
const fact = z.object({ value: z.string(), count: z.number().int(), first_seen: z.string(), last_seen: z.string() });
const sessionSchema = z.object({
  id: z.number().int(),
  node: z.string(),
  pot_id: z.string(),
  pot_type: z.string(),
  session: z.string(),
  src_ip: z.string().nullable(),
  src_port: z.number().int().nullable(),
  dest_ip: z.string().nullable(),
  dest_port: z.number().int().nullable(),
  protocol: z.string().nullable(),
  started_at: z.string(),
  last_seen: z.string(),
  closed: z.boolean(),
  events: z.number().int(),
  logins_failed: z.number().int(),
  username: z.string().nullable(),
  password: z.string().nullable(),
});
const attackerSchema = z.object({
  ip: z.string(),
  first_seen: z.string(),
  last_seen: z.string(),
  events: z.number().int(),
  geo: geoSchema,
  scanner: z.string().nullable(),
  tags: z.array(z.enum(TAGS)),
  logins_failed: z.number().int(),
  logins_ok: z.number().int(),
  nodes: z.array(fact),
  pots: z.array(fact),
  pot_types: z.array(fact),
  ports: z.array(fact),
  protocols: z.array(fact),
  credentials: z.array(fact.extend({ username: z.string(), password: z.string() })),
  commands: z.array(fact),
  urls: z.array(fact),
  hashes: z.array(fact),
  sessions: z.array(sessionSchema),
});
const stepSchema = z.object({
  event_id: z.number().int(),
  at: z.string(),
  kind: z.string().describe('login.failed | login.success | command | command.failed | download | upload'),
  value: z.string().describe('username, command line, URL or hash'),
  detail: z.string().nullable().describe('password (logins), hash (downloads)'),
});
const recordSchema = z.object({
  event_id: z.number().int(),
  type: z.string(),
  sensor: z.string(),
  pot_id: z.string(),
  app: z.string(),
  vendor_product: z.string(),
  direction: z.string(),
  ids_type: z.string(),
  timestamp: z.string(),
  src_ip: z.string().nullable(),
  src_port: z.number().int().nullable(),
  dest_ip: z.string().nullable(),
  dest_port: z.number().int().nullable(),
  transport: z.string(),
  protocol: z.string(),
  session: z.string().nullable(),
  ssh_username: z.string().nullable(),
  ssh_password: z.string().nullable(),
  login: z.enum(['success', 'failed']).nullable(),
  command: z.string().nullable(),
  url: z.string().nullable(),
  md5: z.string().nullable(),
  sha256: z.string().nullable(),
  signature: z.string(),
  severity: z.string(),
});

const iso = (ms: number) => new Date(ms).toISOString();
function isoTimes<T extends object>(row: T, keys: readonly string[]): T {
  const out: Record<string, unknown> = { ...(row as Record<string, unknown>) };
  for (const k of keys) if (typeof out[k] === 'number') out[k] = iso(out[k] as number);
  return out as T;
}
const factJson = (f: { value: string; count: number; first_seen: number; last_seen: number }) => isoTimes(f, ['first_seen', 'last_seen']);
const sessionJson = (s: object) => isoTimes(s as Record<string, unknown>, ['started_at', 'last_seen']);

/**
 * Runs a read: a bad query is a 400 (by name: it may come from a read worker process), a query past
 * its time limit or a full read pool a 503 (the API stays responsive meanwhile).
 */
async function answerQuery<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const name = (err as Error)?.name;
    if (err instanceof AnalyticsQueryError || name === 'AnalyticsQueryError') throw new ApiError(400, 'bad_request', (err as Error).message);
    if (name === 'QueryTimeoutError' || name === 'PoolBusyError') throw new ApiError(503, 'query_unavailable', (err as Error).message);
    throw err;
  }
}

/** Session cursors carry the last row's (started_at, id): the list is ordered by them. */
function encodeCursor(s: { started_at: number; id: number }): string {
  return Buffer.from(`s2:${s.started_at}:${s.id}`).toString('base64url');
}
function decodeCursor(c: string): { startedAt: number; id: number } {
  const m = /^s2:(-?\d{1,16}):(\d{1,16})$/.exec(Buffer.from(c, 'base64url').toString());
  if (m === null) throw new ApiError(400, 'bad_request', 'invalid cursor');
  return { startedAt: Number(m[1]), id: Number(m[2]) };
}

export const analyticsRoutes: FastifyPluginAsync<AnalyticsRoutesOptions> = async (instance: FastifyInstance, opts) => {
  const { reader } = opts;
  const now = opts.now ?? Date.now;
  const app = instance.withTypeProvider<ZodTypeProvider>();
  const window = (q: { since?: number; until?: number }, defaultMs = DAY) => {
    const until = q.until ?? now();
    const since = q.since ?? until - defaultMs;
    if (until <= since) throw new ApiError(400, 'bad_request', 'until must be after since');
    return { since, until };
  };

  app.get(
    '/attacks/top',
    {
      schema: {
        tags,
        summary: 'Top values of a dimension over a window (hour precision), from rollups maintained at ingest',
        querystring: z.object({ ...windowShape, by: dimension, limit: z.coerce.number().int().min(1).max(1000).default(10) }),
        response: { 200: topResponse, 400: errorSchema },
      },
      config: { role: 'viewer' },
    },
    async (req) => {
      const q = req.query;
      const r = await answerQuery(() => reader.top({ ...window(q), by: q.by, node: q.node, potType: q.pot_type, limit: q.limit }));
      return { ...r, since: iso(r.since), until: iso(r.until) };
    },
  );

  app.get(
    '/attacks/timeline',
    {
      schema: {
        tags,
        summary: 'Event counts per time bucket, optionally one series per top value of a dimension',
        querystring: z.object({
          ...windowShape,
          bucket: z.enum(['minute', 'hour', 'day']).default('hour'),
          by: dimension.optional().describe('split by this dimension (minute buckets: node or pot_type only)'),
          limit: z.coerce.number().int().min(1).max(50).default(5).describe('series when split'),
        }),
        response: { 200: timelineResponse, 400: errorSchema },
      },
      config: { role: 'viewer' },
    },
    async (req) => {
      const q = req.query;
      const r = await answerQuery(() => reader.timeline({ ...window(q), bucket: q.bucket, by: q.by, node: q.node, potType: q.pot_type, limit: q.limit }));
      return {
        ...r,
        since: iso(r.since),
        until: iso(r.until),
        series: r.series.map((s) => ({ key: s.key, points: s.points.map((p) => ({ start: iso(p.start), count: p.count })) })),
      };
    },
  );

  app.get(
    '/attackers/:ip',
    {
      schema: {
        tags,
        summary: 'Everything known about one source address: activity, geo/ASN, tags, credentials, commands, sessions',
        params: z.object({ ip: z.string().min(2).max(64) }),
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100).describe('entries per list') }),
        response: { 200: attackerSchema, 400: errorSchema, 404: errorSchema },
      },
      config: { role: 'viewer' },
    },
    async (req) => {
      const ip = canonicalIp(req.params.ip);
      if (ip === null) throw new ApiError(400, 'bad_request', 'not an IP address');
      const p = await answerQuery(() => reader.attacker(ip, req.query.limit));
      if (p === undefined) throw new ApiError(404, 'not_found', `no attacker ${ip}`);
      return {
        ...isoTimes(p, ['first_seen', 'last_seen']),
        nodes: p.nodes.map(factJson),
        pots: p.pots.map(factJson),
        pot_types: p.pot_types.map(factJson),
        ports: p.ports.map(factJson),
        protocols: p.protocols.map(factJson),
        credentials: p.credentials.map(factJson),
        commands: p.commands.map(factJson),
        urls: p.urls.map(factJson),
        hashes: p.hashes.map(factJson),
        sessions: p.sessions.map(sessionJson),
      } as unknown as z.infer<typeof attackerSchema>;
    },
  );

  app.get(
    '/sessions',
    {
      schema: {
        tags,
        summary: 'Attacker sessions, newest first (by start), with keyset paging',
        querystring: z.object({
          since: timeParam.optional().describe('sessions started at or after'),
          until: timeParam.optional().describe('sessions started before'),
          src_ip: z.string().max(64).optional(),
          node: name.optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
          cursor: z.string().max(64).optional(),
        }),
        response: { 200: z.object({ sessions: z.array(sessionSchema), next_cursor: z.string().nullable() }), 400: errorSchema },
      },
      config: { role: 'viewer' },
    },
    async (req) => {
      const q = req.query;
      const srcIp = q.src_ip === undefined ? undefined : (canonicalIp(q.src_ip) ?? q.src_ip);
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
      const rows = await answerQuery(() => reader.sessions({ since: q.since, until: q.until, srcIp, node: q.node, limit: q.limit + 1, after }));
      const more = rows.length > q.limit;
      if (more) rows.length = q.limit;
      return {
        sessions: rows.map(sessionJson) as unknown as z.infer<typeof sessionSchema>[],
        next_cursor: more ? encodeCursor(rows.at(-1)!) : null,
      };
    },
  );

  app.get(
    '/sessions/:id',
    {
      schema: {
        tags,
        summary: 'One attacker session with its logins, commands and downloads in order',
        params: z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }),
        response: { 200: sessionSchema.extend({ steps: z.array(stepSchema) }), 404: errorSchema },
      },
      config: { role: 'viewer' },
    },
    async (req) => {
      const s = await answerQuery(() => reader.session(req.params.id));
      if (s === undefined) throw new ApiError(404, 'not_found', `session ${req.params.id} not found`);
      return { ...sessionJson(s), steps: s.steps.map((st) => isoTimes(st, ['at'])) } as unknown as z.infer<typeof sessionSchema> & {
        steps: z.infer<typeof stepSchema>[];
      };
    },
  );

  if (opts.eventById !== undefined) {
    const eventById = opts.eventById;
    app.get(
      '/attacks/records/:event_id',
      {
        schema: {
          tags,
          summary: 'The normalised attack record of one stored event (hpfeeds-logger field names)',
          params: z.object({ event_id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }),
          response: { 200: recordSchema, 404: errorSchema },
        },
        config: { role: 'viewer' },
      },
      async (req) => {
        const e = await eventById(req.params.event_id);
        if (e === undefined) throw new ApiError(404, 'not_found', `event ${req.params.event_id} not found`);
        const r = normaliseEvent(e);
        return { ...r, timestamp: iso(r.timestamp) };
      },
    );
  }

  app.get(
    '/attacks/credits',
    {
      schema: {
        tags,
        summary: 'Data sources of the enrichment and their licenses (attribution required by CC BY 4.0)',
        response: { 200: z.object({ country: z.string().nullable(), asn: z.string().nullable(), notice: z.string() }) },
      },
      config: { role: 'viewer' },
    },
    async () => ({
      ...opts.geoSources,
      notice: 'IP geolocation by DB-IP (https://db-ip.com), IP to ASN data by RouteViews, NRO and DB-IP, CC BY 4.0.',
    }),
  );

  app.get(
    '/intel/ips',
    {
      schema: {
        tags: ['intel'],
        summary:
          'Attacker addresses for blocking and sharing. json: {data: [{source_ip, count, destination_port, honeypot, protocol, meta}]} (MHN/CHN intel_feed items); csv: same columns; txt: one address a line',
        querystring: z.object({
          format: z.enum(['json', 'csv', 'txt']).default('json'),
          since: timeParam.optional().describe('addresses seen since (default: 24 h ago)'),
          min_count: z.coerce.number().int().min(1).default(1).describe('least events'),
          tag: z.enum(TAGS).optional(),
          limit: z.coerce.number().int().min(1).max(100_000).default(10_000),
        }),
      },
      config: { role: 'viewer' },
    },
    async (req, reply) => {
      const q = req.query;
      const rows = await answerQuery(() => reader.intelIps({ since: q.since ?? now() - DAY, minCount: q.min_count, tag: q.tag, limit: q.limit }));
      if (q.format === 'csv') return reply.type('text/csv; charset=utf-8').send(intelIpCsv(rows));
      if (q.format === 'txt') return reply.type('text/plain; charset=utf-8').send(intelIpTxt(rows));
      return reply.type('application/json; charset=utf-8').send(JSON.stringify({ data: intelIpJson(rows) }));
    },
  );

  app.get(
    '/intel/credentials',
    {
      schema: {
        tags: ['intel'],
        summary: 'Credentials tried against the fleet: {data: [{username, password, count}]} or CSV',
        querystring: z.object({
          format: z.enum(['json', 'csv']).default('json'),
          since: timeParam.optional().describe('default: 24 h ago'),
          limit: z.coerce.number().int().min(1).max(100_000).default(1000),
        }),
      },
      config: { role: 'viewer' },
    },
    async (req, reply) => {
      const q = req.query;
      const until = now();
      const { items } = await answerQuery(() => reader.top({ by: 'credential', since: q.since ?? until - DAY, until, limit: q.limit }));
      const data = items.map((i) => ({ username: i.username ?? '', password: i.password ?? '', count: i.count }));
      if (q.format === 'csv') {
        return reply.type('text/csv; charset=utf-8').send(csv(['username', 'password', 'count'], data.map((d) => [d.username, d.password, d.count])));
      }
      return reply.type('application/json; charset=utf-8').send(JSON.stringify({ data }));
    },
  );

  app.get(
    '/intel/stix',
    {
      schema: {
        tags: ['intel'],
        summary: 'STIX 2.1 bundle: identity, indicators for attacker IPs, URLs and file hashes, observed-data and sightings',
        querystring: z.object({
          since: timeParam.optional().describe('default: 24 h ago'),
          min_count: z.coerce.number().int().min(1).default(1),
          limit: z.coerce.number().int().min(1).max(10_000).default(1000).describe('indicators per kind'),
        }),
      },
      config: { role: 'viewer' },
    },
    async (req, reply) => {
      const q = req.query;
      const until = now();
      const since = q.since ?? until - DAY;
      const [ips, urls, hashes] = await answerQuery(() =>
        Promise.all([
          reader.intelIps({ since, minCount: q.min_count, limit: q.limit }),
          reader.indicators('url', since, until, q.limit),
          reader.indicators('hash', since, until, q.limit),
        ]),
      );
      const bundle = buildStixBundle({
        identityName: opts.stixIdentity ?? 'Apiary honeypot fleet',
        now: until,
        ips,
        urls: urls.filter((u) => u.count >= q.min_count),
        hashes: hashes.filter((h) => h.count >= q.min_count),
      });
      return reply.type('application/stix+json;version=2.1').send(JSON.stringify(bundle));
    },
  );
};
