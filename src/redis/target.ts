// Which Redis the core talks to, from one URL: a single server (redis://, rediss://), a master
// found through Sentinel (redis+sentinel://), or a Redis Cluster (redis+cluster://). The URL is
// the whole configuration so that REDIS_URL stays one setting whatever the deployment.
//
//   redis://[user:password@]host:port[/db]                     one server (ioredis parses it)
//   redis+sentinel://[user:password@]h1:26379,h2:26379/<master>[/<db>][?sentinel_password=…&sentinel_username=…]
//   redis+cluster://[user:password@]h1:7000,h2:7001[,…]
//   rediss+sentinel://, rediss+cluster://                       the same over TLS
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'server'; url: string }
  | {
      kind: 'sentinel';
      sentinels: HostPort[];
      masterName: string;
      db: number;
      username?: string;
      password?: string;
      sentinelUsername?: string;
      sentinelPassword?: string;
      tls: boolean;
    }
  | { kind: 'cluster'; nodes: HostPort[]; username?: string; password?: string; tls: boolean };

const DEFAULT_PORT = { sentinel: 26379, cluster: 6379 } as const;

/** Parses REDIS_URL; throws an Error that says what is wrong (never echoing the password). */
export function parseRedisUrl(text: string): RedisTarget {
  const scheme = /^([a-z+]+):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') {
    // Validated here so a typo fails at startup, not on the first reconnect.
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new Error(`not a valid ${scheme}:// URL`);
    }
    if (url.hostname === '') throw new Error(`${scheme}:// URL needs a host: ${scheme}://host:6379`);
    return { kind: 'server', url: text };
  }
  const topology = /^rediss?\+(sentinel|cluster)$/.exec(scheme ?? '')?.[1] as 'sentinel' | 'cluster' | undefined;
  if (!topology) throw new Error('scheme must be redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://');
  const tls = scheme!.startsWith('rediss');
  const rest = text.slice(scheme!.length + 3);
  // The authority ends at the first '/' or '?'; credentials end at its last '@'.
  const authorityEnd = rest.search(/[/?]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const after = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  const at = authority.lastIndexOf('@');
  const credentials = at < 0 ? undefined : authority.slice(0, at);
  const hosts = parseHosts(at < 0 ? authority : authority.slice(at + 1), DEFAULT_PORT[topology]);
  const [path = '', query = ''] = after.split('?', 2) as [string?, string?];
  const params = new URLSearchParams(query);
  const auth = parseCredentials(credentials);
  if (topology === 'cluster') {
    if (path.replace(/^\/+/, '') !== '') throw new Error('redis+cluster:// takes no path (a cluster has one database)');
    return { kind: 'cluster', nodes: hosts, tls, ...auth };
  }
  const segments = path.split('/').filter((s) => s !== '');
  const masterName = segments[0] === undefined ? '' : decodeURIComponent(segments[0]);
  if (masterName === '') throw new Error('redis+sentinel:// needs the master name as its path: redis+sentinel://host:26379/mymaster');
  if (segments.length > 2) throw new Error('redis+sentinel:// path is /<master>[/<db>]');
  const db = segments[1] === undefined ? 0 : Number(segments[1]);
  if (!Number.isInteger(db) || db < 0) throw new Error(`database must be a whole number, not ${JSON.stringify(segments[1])}`);
  const sentinelUsername = params.get('sentinel_username') ?? undefined;
  const sentinelPassword = params.get('sentinel_password') ?? undefined;
  return { kind: 'sentinel', sentinels: hosts, masterName, db, tls, ...auth, ...(sentinelUsername && { sentinelUsername }), ...(sentinelPassword && { sentinelPassword }) };
}

function parseHosts(list: string, defaultPort: number): HostPort[] {
  const hosts = list.split(',').map((entry) => {
    const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(entry.trim());
    if (!m) throw new Error(`${JSON.stringify(entry)} is not host[:port]`);
    const port = m[2] === undefined ? defaultPort : Number(m[2]);
    if (port < 1 || port > 65535) throw new Error(`port ${port} of ${JSON.stringify(entry)} is out of range`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });
  return hosts;
}

function parseCredentials(credentials: string | undefined): { username?: string; password?: string } {
  if (credentials === undefined) return {};
  const colon = credentials.indexOf(':');
  const username = decodeURIComponent(colon < 0 ? credentials : credentials.slice(0, colon));
  const password = colon < 0 ? undefined : decodeURIComponent(credentials.slice(colon + 1));
  return { ...(username && { username }), ...(password && { password }) };
}

/** A client for the target with the caller's options (timeouts, retry strategy, queue behaviour). */
export function createRedisClient(target: RedisTarget, options: RedisOptions): Redis | Cluster {
  switch (target.kind) {
    case 'server':
      return new Redis(target.url, options);
    case 'sentinel':
      return new Redis({
        ...options,
        sentinels: target.sentinels,
        name: target.masterName,
        db: target.db,
        username: target.username,
        password: target.password,
        sentinelUsername: target.sentinelUsername,
        sentinelPassword: target.sentinelPassword,
        // Reconnect to the sentinels as persistently as to the master: a failover must not give up.
        sentinelRetryStrategy: options.retryStrategy ?? undefined,
        // Follow +switch-master from the sentinels at once rather than on the next failed command.
        failoverDetector: true,
        ...(target.tls && { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true }),
      });
    case 'cluster': {
      const { retryStrategy, enableOfflineQueue, lazyConnect, ...redisOptions } = options;
      return new Cluster(target.nodes, {
        clusterRetryStrategy: retryStrategy ? (times) => retryStrategy(times) : undefined,
        // A client whose commands wait out an outage (maxRetriesPerRequest null, as one server's
        // do) must wait out a master's failover too. ioredis gives a command up after
        // maxRedirections (16: MOVED to the dead master, "connection closed", CLUSTERDOWN, about
        // 100 ms apart, so under 2 s), far short of a failover (cluster-node-timeout, 15 s by
        // default, plus the election): what such a client wrote then would be dropped.
        ...(options.maxRetriesPerRequest === null && { maxRedirections: Infinity }),
        ...(enableOfflineQueue !== undefined && { enableOfflineQueue }),
        ...(lazyConnect !== undefined && { lazyConnect }),
        redisOptions: {
          ...redisOptions,
          username: target.username,
          password: target.password,
          ...(target.tls && { tls: {} }),
        },
      });
    }
  }
}

/**
 * BullMQ keeps each queue's keys together with Lua scripts that touch several of them, which a
 * Redis Cluster only allows within one hash slot: on a cluster the prefix becomes a hash tag.
 */
export function queuePrefixFor(target: RedisTarget, prefix: string): string {
  if (target.kind !== 'cluster' || /\{[^}]+\}/.test(prefix)) return prefix;
  return `{${prefix}}`;
}

/** The target with credentials left out, for logs. */
export function describeRedisTarget(target: RedisTarget): string {
  switch (target.kind) {
    case 'server': {
      const u = new URL(target.url);
      return `${u.protocol}//${u.host}${u.pathname}`;
    }
    case 'sentinel':
      return `sentinel ${target.sentinels.map((h) => `${h.host}:${h.port}`).join(',')} master ${target.masterName} db ${target.db}${target.tls ? ' (TLS)' : ''}`;
    case 'cluster':
      return `cluster ${target.nodes.map((h) => `${h.host}:${h.port}`).join(',')}${target.tls ? ' (TLS)' : ''}`;
  }
}
