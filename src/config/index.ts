// The one place that reads configuration. Every knob is declared once below with its environment
// variable, its `--flag`, a zod schema and a default that works on a laptop; `apiary serve --help`
// is generated from the same table, so documentation cannot drift from the code.
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseRedisUrl } from '../redis/target.js';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
/** Comma- or whitespace-separated list (env) or repeated flag. */
/** REDIS_URL: checked by the same parser that connects, so a bad URL fails at startup with its reason. */
const redisUrl = z.string().superRefine((text, ctx) => {
  try {
    parseRedisUrl(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
/** DATABASE_URL: a PostgreSQL connection URL; the password it may carry is why it is a secret. */
const databaseUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a URL: expected postgres://user[:password]@host[:port]/database' });
    return;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') ctx.addIssue({ code: 'custom', message: `scheme ${url.protocol} is not postgres: or postgresql:` });
  else if (!url.hostname && !url.searchParams.has('host')) ctx.addIssue({ code: 'custom', message: 'no host: expected postgres://user[:password]@host[:port]/database' });
});
const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(/[\s,]+/)).map((s) => s.trim()).filter(Boolean));

/** Proxy addresses: IPs, CIDRs, or the names loopback, linklocal, uniquelocal. */
const proxyList = list.superRefine((entries, ctx) => {
  for (const entry of entries) {
    if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) continue;
    const [address, prefix, ...rest] = entry.split('/');
    const family = isIP(address ?? '');
    const maxPrefix = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= maxPrefix);
    if (family === 0 || !prefixOk || rest.length > 0) ctx.addIssue({ code: 'custom', message: `'${entry}' is not an IP address, a CIDR, or loopback/linklocal/uniquelocal` });
  }
});

interface Option {
  env: string;
  flag: string;
  schema: z.ZodType;
  default?: unknown;
  help: string;
  /** Never printed: `--help` shows only whether it is set. */
  secret?: boolean;
  repeatable?: boolean;
  /** A bare `--flag` means true. */
  boolean?: boolean;
}

const options = {
  dataDir: { env: 'APIARY_DATA_DIR', flag: 'data-dir', schema: z.string().min(1), default: './data', help: 'directory for the SQLite file, the private Redis and the bootstrap token' },
  dbPath: { env: 'APIARY_DB', flag: 'db', schema: z.string().min(1).optional(), help: 'SQLite file (default <data-dir>/apiary.sqlite)' },
  logLevel: { env: 'LOG_LEVEL', flag: 'log-level', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info', help: 'log level (HTTP requests are logged at debug, except errors and slow ones)' },
  logFormat: { env: 'LOG_FORMAT', flag: 'log-format', schema: z.enum(['auto', 'pretty', 'json']), default: 'auto', help: 'auto: readable lines (coloured) when stdout is a terminal, JSON otherwise; pretty; json' },
  apiHost: { env: 'API_HOST', flag: 'api-host', schema: z.string().min(1), default: '0.0.0.0', help: 'HTTP listen address (REST API, /docs, /metrics, node WebSocket /ws/node)' },
  apiPort: { env: 'API_PORT', flag: 'api-port', schema: port, default: 8080, help: 'HTTP listen port' },
  httpRequestTimeout: { env: 'HTTP_REQUEST_TIMEOUT', flag: 'http-request-timeout', schema: positiveInt, default: 30, help: 'seconds a client has to send a whole HTTP request (headers and body); slower ones get 408 and are disconnected' },
  httpHeadersTimeout: { env: 'HTTP_HEADERS_TIMEOUT', flag: 'http-headers-timeout', schema: positiveInt, default: 10, help: 'seconds a client has to send the HTTP request headers' },
  httpMaxConnections: { env: 'HTTP_MAX_CONNECTIONS', flag: 'http-max-connections', schema: positiveInt, default: 4096, help: 'open HTTP connections (REST, node and event-stream WebSockets); more are refused at accept and counted' },
  httpMaxConnectionsPerAddress: { env: 'HTTP_MAX_CONNECTIONS_PER_ADDRESS', flag: 'http-max-connections-per-address', schema: z.coerce.number().int().min(0), default: 512, help: 'open HTTP connections one remote address may hold (0: no per-address cap); more are closed at accept and counted' },
  trustProxy: { env: 'TRUST_PROXY', flag: 'trust-proxy', schema: proxyList, default: [], repeatable: true, help: "addresses or CIDRs of reverse proxies whose X-Forwarded-For/-Proto/-Host are believed (client address for logs, audit and login limits; https for the Secure session cookie); empty: none" },
  proxyProtocolFrom: { env: 'PROXY_PROTOCOL_FROM', flag: 'proxy-protocol-from', schema: proxyList, default: [], repeatable: true, help: 'load balancers in TCP mode (HAProxy send-proxy / send-proxy-v2) in front of the node TCP/TLS port and the hpfeeds listeners: their connections must begin with a PROXY protocol v1 or v2 header (before any TLS), and the client it names is the peer for connection caps, guess limits, logs, audit and node records; a LOCAL header (health check) keeps the proxy\'s address. Addresses, CIDRs, or loopback/linklocal/uniquelocal; other addresses connect as before. Empty: off' },
  proxyProtocolTimeoutMs: { env: 'PROXY_PROTOCOL_TIMEOUT_MS', flag: 'proxy-protocol-timeout-ms', schema: z.coerce.number().int().min(100).max(60_000), default: 3000, help: 'milliseconds a connection from a PROXY_PROTOCOL_FROM address has to send its whole PROXY header; then it is closed (counted in apiary_proxy_protocol_rejected_total and logged)' },
  sessionIdleMinutes: { env: 'SESSION_IDLE_MINUTES', flag: 'session-idle-minutes', schema: positiveInt, default: 30, help: 'a console login session unused this many minutes ends' },
  sessionMaxHours: { env: 'SESSION_MAX_HOURS', flag: 'session-max-hours', schema: positiveInt, default: 12, help: 'a console login session ends this many hours after login, used or not' },
  metricsPotTypes: { env: 'METRICS_POT_TYPES', flag: 'metrics-pot-type', schema: list, default: [], repeatable: true, help: 'pot types that get their own metric labels besides the built-in ones and those installed by operators (others count as "other")' },
  metricsPublic: { env: 'METRICS_PUBLIC', flag: 'metrics-public', schema: bool, default: false, boolean: true, help: 'serve /metrics without a token (otherwise viewer role)' },
  adminToken: { env: 'APIARY_ADMIN_TOKEN', flag: 'admin-token', schema: z.string().min(24).optional(), secret: true, help: 'bootstrap admin token to create on first start (default: generated and written to <data-dir>/admin-token)' },
  databaseUrl: { env: 'DATABASE_URL', flag: 'database-url', schema: databaseUrl.optional(), secret: true, help: 'PostgreSQL (postgres:// or postgresql://) instead of the SQLite file: every table there (events partitioned by day), migrated at start; needed for several cores; unset = the SQLite file' },
  redisUrl: { env: 'REDIS_URL', flag: 'redis-url', schema: redisUrl.optional(), secret: true, help: 'Redis for the command queue: redis[s]://host:port[/db], redis[s]+sentinel://h1:26379,h2:26379/<master>[/<db>], or redis[s]+cluster://h1:7000,h2:7001; unset = start a private redis-server under <data-dir>/redis' },
  redisServerBin: { env: 'REDIS_SERVER_BIN', flag: 'redis-server-bin', schema: z.string().min(1), default: 'redis-server', help: 'redis-server binary used when REDIS_URL is unset' },
  clusterEnabled: { env: 'CLUSTER_ENABLED', flag: 'cluster', schema: bool, default: false, boolean: true, help: 'several cores share one database and REDIS_URL: events and hpfeeds publishes fan out to every core, cowrie sessions are aggregated in Redis, periodic work runs on the leader only; node sessions are registered in Redis, so commands reach a node on whichever core holds it, a reconnect to another core takes the session over, and revocations and the TOTP/login guess limits hold across cores (implied by INSTANCE_ID)' },
  instanceId: { env: 'INSTANCE_ID', flag: 'instance-id', schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (at most 64)').optional(), help: 'this core\'s name among several (logs, the apiary_cluster_leader gauge, its command queue and its entries in the session registry): unique per core and stable across restarts; setting it turns --cluster on (default with --cluster: the host name)' },
  clusterLeaseMs: { env: 'CLUSTER_LEASE_MS', flag: 'cluster-lease-ms', schema: z.coerce.number().int().min(1000).max(600_000), default: 15_000, help: 'leader lease length (ms): when the leading core dies, another takes over the periodic work within about this long' },
  clusterFanoutMaxLen: { env: 'CLUSTER_FANOUT_MAXLEN', flag: 'cluster-fanout-maxlen', schema: z.coerce.number().int().min(100), default: 2000, help: 'entries (each up to 128 events) the cross-core fan-out stream keeps in Redis: how much a core that lost Redis for a moment can still catch up on' },
  nodeTcpHost: { env: 'NODE_TCP_HOST', flag: 'node-tcp-host', schema: z.string().min(1), default: '0.0.0.0', help: 'HoneyBee node TCP/TLS listen address' },
  nodeTcpPort: { env: 'NODE_TCP_PORT', flag: 'node-tcp-port', schema: port, default: 9001, help: 'HoneyBee node TCP/TLS port (newline-delimited JSON)' },
  nodeTlsCert: { env: 'NODE_TLS_CERT', flag: 'node-tls-cert', schema: z.string().optional(), help: 'PEM certificate (with subjectAltName) to serve nodes over TLS 1.3' },
  nodeTlsKey: { env: 'NODE_TLS_KEY', flag: 'node-tls-key', schema: z.string().optional(), help: 'PEM private key for --node-tls-cert' },
  nodeLineMaxBytes: { env: 'NODE_LINE_MAX_BYTES', flag: 'node-line-max-bytes', schema: positiveInt, default: 1024 * 1024, help: 'largest node line/frame accepted; longer ones are discarded and counted' },
  nodeMaxConnections: { env: 'NODE_MAX_CONNECTIONS', flag: 'node-max-connections', schema: positiveInt, default: 20_000, help: 'node connections open at once (TCP/TLS and WebSocket together); beyond it new ones are refused' },
  nodeMaxConnectionsPerAddress: { env: 'NODE_MAX_CONNECTIONS_PER_ADDRESS', flag: 'node-max-connections-per-address', schema: positiveInt, default: 256, help: 'node connections open at once from one address (IPv6: one /64); raise it for large NATs' },
  nodePreAuthLineMaxBytes: { env: 'NODE_PREAUTH_LINE_MAX_BYTES', flag: 'node-preauth-line-max-bytes', schema: positiveInt, default: 8 * 1024, help: 'largest node line/frame before registration; a longer one closes the connection' },
  nodePreAuthMaxBytes: { env: 'NODE_PREAUTH_MAX_BYTES', flag: 'node-preauth-max-bytes', schema: positiveInt, default: 64 * 1024, help: 'bytes a node connection may send before it has registered' },
  nodeTlsHandshakeTimeout: { env: 'NODE_TLS_HANDSHAKE_TIMEOUT', flag: 'node-tls-handshake-timeout', schema: positiveInt, default: 10, help: 'seconds a node TLS client has to finish its handshake' },
  nodeAuthUntrustedFailuresPerDay: { env: 'NODE_AUTH_UNTRUSTED_FAILURES_PER_DAY', flag: 'node-auth-untrusted-failures-per-day', schema: positiveInt, default: 10, help: "wrong TOTP codes per node name per 24 h from addresses other than the node's last authenticated one (its own address is never locked out)" },
  pendingMaxNodes: { env: 'PENDING_MAX_NODES', flag: 'pending-max-nodes', schema: positiveInt, default: 1000, help: 'approve mode: pending nodes at most (new unknown names are refused beyond it)' },
  pendingMaxPerAddress: { env: 'PENDING_MAX_PER_ADDRESS', flag: 'pending-max-per-address', schema: positiveInt, default: 20, help: 'approve mode: pending nodes first seen from one address (IPv6: one /64)' },
  pendingTtl: { env: 'PENDING_TTL', flag: 'pending-ttl', schema: positiveInt, default: 3600, help: 'approve mode: seconds after its last attempt that a pending node is forgotten' },
  nodeLogRetentionDays: { env: 'NODE_LOG_RETENTION_DAYS', flag: 'node-log-retention-days', schema: positiveInt, default: 90, help: 'node lifecycle log entries (and unknown-name aggregates, at most 30 days) older than this are deleted' },
  nodeLogMaxRowsPerNode: { env: 'NODE_LOG_MAX_ROWS_PER_NODE', flag: 'node-log-max-rows-per-node', schema: positiveInt, default: 10_000, help: 'lifecycle log entries kept per node (the newest)' },
  nodeStoredTextMaxBytes: { env: 'NODE_STORED_TEXT_MAX_BYTES', flag: 'node-stored-text-max-bytes', schema: z.coerce.number().int().min(256), default: 4096, help: 'node-supplied texts stored (NodeEvent and pot status messages) are cut to this many bytes, with a marker' },
  enrollment: { env: 'ENROLLMENT_MODE', flag: 'enrollment', schema: z.enum(['provisioned', 'approve', 'open']), default: 'approve', help: 'provisioned: operator creates nodes first; approve: unknown nodes wait for approval; open: first contact enrolls' },
  heartbeatInterval: { env: 'HEARTBEAT_INTERVAL', flag: 'heartbeat-interval', schema: positiveInt, default: 30, help: 'seconds between node heartbeats (NodeStatusUpdate)' },
  staleFactor: { env: 'HEARTBEAT_STALE_FACTOR', flag: 'heartbeat-stale-factor', schema: positiveInt, default: 3, help: 'a node silent for factor x interval is marked offline' },
  hpfeedsEndpoints: { env: 'HPFEEDS_ENDPOINTS', flag: 'hpfeeds-endpoint', schema: list, default: ['tcp:port=10000'], repeatable: true, help: "hpfeeds listeners: 'tcp:port=10000[:interface=IP]', 'tls:port=10001:cert=PATH:key=PATH'" },
  hpfeedsName: { env: 'HPFEEDS_BROKER_NAME', flag: 'hpfeeds-name', schema: z.string().min(1).max(255), default: 'apiary', help: 'broker name sent in OP_INFO' },
  hpfeedsAuthFile: { env: 'HPFEEDS_AUTH_FILE', flag: 'hpfeeds-auth-file', schema: z.string().optional(), help: 'reference-format JSON auth file (hot reloaded), consulted after the database' },
  hpfeedsSendBufferBytes: { env: 'HPFEEDS_SEND_BUFFER_BYTES', flag: 'hpfeeds-send-buffer-bytes', schema: positiveInt, default: 8 * 1024 * 1024, help: 'hard per-subscriber queue cap; beyond it messages to that subscriber are dropped (counted). Only in-process publishes reach it: external publishers are paused at the high-water mark' },
  hpfeedsHighWaterBytes: { env: 'HPFEEDS_HIGH_WATER_BYTES', flag: 'hpfeeds-high-water-bytes', schema: positiveInt, default: 1024 * 1024, help: 'queued bytes past which a subscriber pauses the publishers feeding it (they resume under a quarter of it)' },
  hpfeedsQueueBudgetBytes: { env: 'HPFEEDS_QUEUE_BUDGET_BYTES', flag: 'hpfeeds-queue-budget-bytes', schema: positiveInt, default: 128 * 1024 * 1024, help: 'bytes all subscriber queues may hold together; past half of it every publisher pauses, past all of it backed-up subscribers lose messages' },
  hpfeedsMaxConnections: { env: 'HPFEEDS_MAX_CONNECTIONS', flag: 'hpfeeds-max-connections', schema: positiveInt, default: 10_000, help: 'hpfeeds connections across all listeners (TLS handshakes included); more are closed on accept' },
  hpfeedsMaxConnectionsPerAddress: { env: 'HPFEEDS_MAX_CONNECTIONS_PER_ADDRESS', flag: 'hpfeeds-max-connections-per-address', schema: positiveInt, default: 200, help: 'hpfeeds connections from one remote address' },
  hpfeedsAuthFailuresPerAddress: { env: 'HPFEEDS_AUTH_FAILURES_PER_ADDRESS', flag: 'hpfeeds-auth-failures-per-address', schema: positiveInt, default: 20, help: 'failed hpfeeds AUTHs per address per minute before its AUTHs are refused unchecked' },
  hpfeedsAuthFailuresPerIdent: { env: 'HPFEEDS_AUTH_FAILURES_PER_IDENT', flag: 'hpfeeds-auth-failures-per-ident', schema: positiveInt, default: 20, help: 'failed hpfeeds AUTHs per ident per minute (the address it last logged in from is exempt)' },
  hpfeedsMetricLabelValues: { env: 'HPFEEDS_METRIC_LABEL_VALUES', flag: 'hpfeeds-metric-label-values', schema: positiveInt, default: 200, help: 'idents and channels (each) shown as hpfeeds metric labels beyond the configured event channels; the rest are "other"' },
  hpfeedsBackpressureDeadline: { env: 'HPFEEDS_BACKPRESSURE_DEADLINE', flag: 'hpfeeds-backpressure-deadline', schema: positiveInt, default: 10, help: 'seconds a subscriber may stay backed up before it is disconnected' },
  hpfeedsFlushLinger: { env: 'HPFEEDS_FLUSH_LINGER_MS', flag: 'hpfeeds-flush-linger-ms', schema: z.coerce.number().int().min(0).max(10_000), default: 10, help: 'while messages keep coming, each subscriber is written at most once per this many ms (a message after a quiet spell goes out at once); 0 writes every I/O turn' },
  commandTtl: { env: 'COMMAND_TTL', flag: 'command-ttl', schema: positiveInt, default: 86400, help: 'seconds a queued command waits for its node before it expires' },
  commandAnswerTimeout: { env: 'COMMAND_ANSWER_TIMEOUT', flag: 'command-answer-timeout', schema: positiveInt.optional(), help: 'seconds to wait for a node to answer a sent command (default: 120 for InstallPot and Restart, 30 for the others)' },
  gitUrlAllowList: { env: 'GIT_URL_ALLOW', flag: 'git-url-allow', schema: list, default: [], repeatable: true, help: 'InstallPot git_url allow-list: URL prefixes, or /regex/ matching the whole URL (empty: git_url refused)' },
  eventRetentionDays: { env: 'EVENT_RETENTION_DAYS', flag: 'event-retention-days', schema: positiveInt, default: 30, help: 'events older than this are deleted' },
  eventMaxRows: { env: 'EVENT_MAX_ROWS', flag: 'event-max-rows', schema: positiveInt, default: 10_000_000, help: 'oldest events beyond this count are deleted' },
  eventAllChannel: { env: 'EVENT_ALL_CHANNEL', flag: 'event-all-channel', schema: z.string(), default: 'apiary.events', help: "hpfeeds channel receiving every event ('' disables)" },
  eventQueueHighWater: { env: 'EVENT_QUEUE_HIGH_WATER', flag: 'event-queue-high-water', schema: positiveInt, default: 4000, help: 'events waiting for their commit at which the core stops reading node sockets (back-pressure) until half of them are stored; the default is two full batches: a longer queue is heap the garbage collector copies, so the backlog waits in the nodes\' sockets instead' },
  queryWorkers: { env: 'QUERY_WORKERS', flag: 'query-workers', schema: positiveInt, default: 2, help: 'worker processes with read-only database connections that answer API reads (event lists, stats)' },
  queryTimeout: { env: 'QUERY_TIMEOUT', flag: 'query-timeout', schema: positiveInt, default: 10, help: 'seconds an API read may take (queueing included); slower ones answer 503 and their worker is replaced' },
  eventChannelMap: { env: 'EVENT_CHANNEL_MAP', flag: 'event-channel-map', schema: z.string().optional(), help: 'JSON {"<pot_type>": ["chan", ...]} overriding the default <pot_type>.events' },
  analyticsEnabled: { env: 'ANALYTICS_ENABLED', flag: 'analytics', schema: bool, default: true, boolean: true, help: 'attack analytics: normalised records, rollups, attackers, sessions and intel feeds, maintained at ingest' },
  geoipShipped: { env: 'GEOIP_SHIPPED', flag: 'geoip-shipped', schema: bool, default: true, help: 'use the shipped DB-IP country and RouteViews/DB-IP ASN data (CC BY 4.0) for enrichment' },
  geoipCityMmdb: { env: 'GEOIP_CITY_MMDB', flag: 'geoip-city-mmdb', schema: z.string().optional(), help: 'your own MaxMind/DB-IP city or country .mmdb (adds city, lat/lon); replaces the shipped country data' },
  geoipAsnMmdb: { env: 'GEOIP_ASN_MMDB', flag: 'geoip-asn-mmdb', schema: z.string().optional(), help: 'your own MaxMind GeoLite2-ASN or DB-IP ASN .mmdb; replaces the shipped ASN data' },
  ignoreCidrs: { env: 'IGNORE_CIDRS', flag: 'ignore-cidr', schema: list, default: [], repeatable: true, help: 'sources never counted as attacks (events still stored; counted as ignored): CIDRs or addresses' },
  scannerCidrsFile: { env: 'SCANNER_CIDRS_FILE', flag: 'scanner-cidrs-file', schema: z.string().optional(), help: "known scanner ranges, one 'CIDR [label]' a line: their addresses are tagged scanner" },
  analyticsFlushMs: { env: 'ANALYTICS_FLUSH_MS', flag: 'analytics-flush-ms', schema: z.coerce.number().int().min(0).max(60_000), default: 1000, help: 'the analytics ingest folds event batches in memory and writes its rollups this often (ms); queries lag events by up to this (0: with every batch)' },
  bruteforceMinFailures: { env: 'BRUTEFORCE_MIN_FAILURES', flag: 'bruteforce-min-failures', schema: positiveInt, default: 5, help: 'failed logins that tag a source address bruteforce' },
  auditRetentionDays: { env: 'AUDIT_RETENTION_DAYS', flag: 'audit-retention-days', schema: positiveInt, default: 365, help: 'audit log entries (operator actions through the API) older than this are deleted' },
  alertSendTimeout: { env: 'ALERT_SEND_TIMEOUT', flag: 'alert-send-timeout', schema: positiveInt, default: 10, help: 'seconds one alert delivery attempt (webhook, Slack, Telegram, SMTP) may take' },
  alertMaxAttempts: { env: 'ALERT_MAX_ATTEMPTS', flag: 'alert-max-attempts', schema: z.coerce.number().int().min(1).max(20), default: 4, help: 'delivery attempts per alert and channel before it is counted as failed' },
  alertRetryDelayMs: { env: 'ALERT_RETRY_DELAY_MS', flag: 'alert-retry-delay-ms', schema: positiveInt, default: 2000, help: 'milliseconds before the first retry of a failed alert delivery; doubled for each next one' },
  alertQueueMax: { env: 'ALERT_QUEUE_MAX', flag: 'alert-queue-max', schema: positiveInt, default: 1000, help: 'alerts waiting per channel; beyond it new ones are dropped (counted and logged)' },
  outputBacklogCheckMs: { env: 'OUTPUT_BACKLOG_CHECK_MS', flag: 'output-backlog-check-ms', schema: positiveInt, default: 5000, help: 'milliseconds between checks of the outputs\' backlogs against output_backlog alert rules' },
  outputsFile: { env: 'OUTPUTS_FILE', flag: 'outputs-file', schema: z.string().min(1).optional(), help: 'JSON file of SIEM outputs (file, syslog, splunk_hec, elasticsearch, webhook; formats json, raw_json, splunk, cef), read at start: see README "Outputs"' },
  outputs: { env: 'OUTPUTS', flag: 'outputs', schema: z.string().min(1).optional(), secret: true, help: 'the same outputs JSON inline (added to --outputs-file; may hold tokens, so never printed)' },
} satisfies Record<string, Option>;

type Options = typeof options;
export type OptionKey = keyof Options;

/** How a person sets an option, for error messages: `API_PORT / --api-port`. */
export function optionNames(key: OptionKey): string {
  const o: Option = options[key];
  return `${o.env} / --${o.flag}`;
}
type Raw = { [K in keyof Options]: z.output<Options[K]['schema']> };

export interface Config extends Omit<Raw, 'dbPath' | 'eventChannelMap'> {
  dbPath: string;
  eventChannelMap: Record<string, string[]>;
  /** The environment the config was read from, for HPFEEDS_<IDENT>_SECRET drop-in credentials. */
  env: Record<string, string | undefined>;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const channelMapSchema = z.record(z.string(), z.array(z.string().min(1)));

/**
 * Builds the config from flags (win) and environment. `argv` holds only `--name value` /
 * `--name=value` / boolean `--name` pairs of the serve command.
 */
export function loadConfig(argv: string[], env: Record<string, string | undefined>): Config {
  const fromFlags = new Map<string, unknown>();
  const byFlag = new Map(Object.entries(options).map(([k, o]) => [o.flag, [k, o as Option] as const]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq >= 0 ? eq : undefined);
    const found = byFlag.get(name);
    if (!found) throw new ConfigError(`unknown option --${name} (see apiary serve --help)`);
    const [key, opt] = found;
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (opt.boolean && !/^(true|false|1|0|yes|no)$/.test(argv[i + 1] ?? '')) value = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`--${name} needs a value`);
      value = next;
      i++;
    }
    if (opt.repeatable) fromFlags.set(key, [...((fromFlags.get(key) as string[]) ?? []), value]);
    else fromFlags.set(key, value);
  }

  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, o] of Object.entries(options) as [string, Option][]) {
    const raw = fromFlags.has(key) ? fromFlags.get(key) : env[o.env] !== undefined && env[o.env] !== '' ? env[o.env] : o.default;
    const parsed = o.schema.safeParse(raw);
    if (!parsed.success) {
      const shown = o.secret ? '(hidden)' : JSON.stringify(raw);
      problems.push(`${o.env} / --${o.flag} = ${shown}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    } else out[key] = parsed.data;
  }
  if (problems.length) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);

  const raw = out as Raw;
  if (Boolean(raw.nodeTlsCert) !== Boolean(raw.nodeTlsKey)) {
    throw new ConfigError('NODE_TLS_CERT and NODE_TLS_KEY must be set together');
  }
  let eventChannelMap: Record<string, string[]> = {};
  if (raw.eventChannelMap) {
    let json: unknown;
    try {
      json = JSON.parse(raw.eventChannelMap);
    } catch (err) {
      throw new ConfigError(`EVENT_CHANNEL_MAP is not JSON: ${(err as Error).message}`);
    }
    const m = channelMapSchema.safeParse(json);
    if (!m.success) throw new ConfigError('EVENT_CHANNEL_MAP must be {"<pot_type>": ["channel", ...]}');
    eventChannelMap = m.data;
  }
  const clusterEnabled = raw.clusterEnabled || raw.instanceId !== undefined;
  if (clusterEnabled && !raw.redisUrl) {
    throw new ConfigError('CLUSTER_ENABLED / INSTANCE_ID need REDIS_URL: the cores share one Redis (a private redis-server per core would not be shared)');
  }
  const dataDir = resolve(raw.dataDir);
  return {
    ...raw,
    clusterEnabled,
    dataDir,
    dbPath: resolve(raw.dbPath ?? `${dataDir}/apiary.sqlite`),
    eventChannelMap,
    env,
  };
}

/** `apiary serve --help` text, generated from the option table. */
export function configHelp(): string {
  const lines = ['Options (flag / environment variable, default):', ''];
  for (const o of Object.values(options) as Option[]) {
    const def = o.secret || o.default === undefined ? '' : ` (default: ${Array.isArray(o.default) ? o.default.join(',') || 'none' : String(o.default)})`;
    lines.push(`  --${o.flag}${o.repeatable ? ' (repeatable)' : ''}  /  ${o.env}${def}`);
    lines.push(`      ${o.help}`);
  }
  return lines.join('\n');
}

/** The config as safe to log: secrets replaced by whether they are set. */
export function describeConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, o] of Object.entries(options) as [string, Option][]) {
    const v = (config as unknown as Record<string, unknown>)[key];
    out[key] = o.secret ? (v ? '(set)' : '(unset)') : v;
  }
  out.dbPath = config.dbPath;
  return out;
}
