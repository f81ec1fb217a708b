// PROXY protocol (v1 and v2) for the raw TCP listeners behind a load balancer in TCP mode (the
// node port and hpfeeds): a connection from a trusted proxy must begin with a header naming the
// client, and that client's address is then the peer everywhere (connection caps, guess limits,
// logs, audit, node records). Connections from any other address are taken as they are.
//
// This folder imports nothing else from src/. The listeners do not import it either: they take a
// `resolvePeer` hook (src/hpfeeds stays a stand-alone library), and src/app.ts passes them
// ProxyProtocol.resolver().
import { BlockList, isIP, type Socket } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { DEFAULT_MAX_HEADER_BYTES, type ProxyHeader } from './header.js';
import { readProxyHeader } from './reader.js';

export { parseProxyHeader, formatIpv6, DEFAULT_MAX_HEADER_BYTES, V1_MAX_BYTES, type ProxyHeader, type ProxyParse, type RejectReason } from './header.js';
export { readProxyHeader, type HeaderRead } from './reader.js';

/** The peer a listener should use for a connection. */
export interface PeerAddress {
  address: string;
  port: number;
}

/**
 * Decides a new raw connection's peer before anything else reads it: synchronously for
 * connections that need no header, else once the header is read. Undefined: the connection was
 * refused (logged, counted and destroyed here).
 */
export type PeerResolver = (socket: Socket) => PeerAddress | undefined | Promise<PeerAddress | undefined>;

export interface ProxyProtocolLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface ProxyProtocolOptions {
  /** Proxies that must send a header: IP addresses, CIDRs, or loopback / linklocal / uniquelocal. */
  trusted: readonly string[];
  /** A trusted connection must complete its header within this time. Default 5000 ms. */
  timeoutMs?: number;
  /** Largest v2 header accepted (v1 is at most 107 bytes). Default 1024. */
  maxHeaderBytes?: number;
  registry: Registry;
  logger: ProxyProtocolLogger;
}

const NAMED_RANGES: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** One log line per listener, reason and proxy address per this long; the rest are counted in it. */
const LOG_EVERY_MS = 60_000;

/** `::ffff:a.b.c.d` (a dual-stack listener's IPv4 peer) as `a.b.c.d`. */
function plainAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Builds a BlockList of `entries`; throws naming the first entry that is not an address, CIDR or range name. */
export function trustedList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries.flatMap((e) => NAMED_RANGES[e] ?? [e])) {
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || rest.length > 0 || (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= max))) {
      throw new Error(`PROXY protocol source ${JSON.stringify(entry)} is not an IP address, a CIDR, or loopback/linklocal/uniquelocal`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

export class ProxyProtocol {
  private readonly trusted: BlockList;
  private readonly timeoutMs: number;
  private readonly maxHeaderBytes: number;
  private readonly logger: ProxyProtocolLogger;
  private readonly headers: Counter<'listener' | 'version' | 'command'>;
  private readonly rejected: Counter<'listener' | 'reason'>;
  /** key -> when its last line was written and how many were suppressed since. */
  private readonly logged = new Map<string, { at: number; suppressed: number }>();

  constructor(opts: ProxyProtocolOptions) {
    this.trusted = trustedList(opts.trusted);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxHeaderBytes = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.logger = opts.logger;
    this.headers = new Counter({
      name: 'apiary_proxy_protocol_headers_total',
      help: 'PROXY protocol headers accepted from trusted proxies, per listener, version and command (proxy: a relayed client; local: a health check; unknown: no client address)',
      labelNames: ['listener', 'version', 'command'],
      registers: [opts.registry],
    });
    this.rejected = new Counter({
      name: 'apiary_proxy_protocol_rejected_total',
      help: 'Connections from trusted proxies closed for want of a valid PROXY protocol header, per listener and reason (missing, malformed, oversized, unsupported, timeout, closed)',
      labelNames: ['listener', 'reason'],
      registers: [opts.registry],
    });
  }

  /** Whether connections from `address` must start with a header. */
  isTrusted(address: string): boolean {
    const plain = plainAddress(address);
    const family = isIP(plain);
    return family !== 0 && this.trusted.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** The hook for one listener (`listener` names it in metrics and logs). */
  resolver(listener: string): PeerResolver {
    return (socket) => {
      const own: PeerAddress = { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 };
      if (!this.isTrusted(own.address)) return own;
      return readProxyHeader(socket, { timeoutMs: this.timeoutMs, maxHeaderBytes: this.maxHeaderBytes }).then((read) => {
        if (!read.ok) {
          this.rejected.inc({ listener, reason: read.reason });
          this.logRejection(listener, own, read.reason, read.detail);
          // A late error on a socket nobody listens to any more must not crash the process.
          socket.on('error', () => undefined);
          socket.destroy();
          return undefined;
        }
        this.headers.inc({ listener, version: String(read.header.version), command: read.header.command });
        return peerOf(read.header, own);
      });
    };
  }

  private logRejection(listener: string, proxy: PeerAddress, reason: string, detail: string): void {
    const now = Date.now();
    const key = `${listener}\0${reason}\0${proxy.address}`;
    const last = this.logged.get(key);
    if (last !== undefined && now - last.at < LOG_EVERY_MS) {
      last.suppressed++;
      return;
    }
    if (this.logged.size > 1000) {
      for (const [k, v] of this.logged) if (now - v.at >= LOG_EVERY_MS) this.logged.delete(k);
    }
    this.logged.set(key, { at: now, suppressed: 0 });
    this.logger.warn(
      { listener, proxyAddress: proxy.address, proxyPort: proxy.port, reason, error: detail, suppressedSinceLastLine: last?.suppressed ?? 0 },
      `connection from a trusted proxy closed: no valid PROXY protocol header (${reason}); one line per proxy and reason per minute`,
    );
  }
}

/** The client the header names; the proxy itself for LOCAL (health checks) and address-less headers. */
function peerOf(header: ProxyHeader, proxy: PeerAddress): PeerAddress {
  return header.command === 'proxy' && header.source !== undefined ? header.source : proxy;
}
