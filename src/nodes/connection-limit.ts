// What an unauthenticated node peer may cost. Connections are counted per address (IPv6: per
// /64) and in total across the TCP/TLS listeners and the WebSocket route; over either cap a new
// connection is refused before any TLS handshake or WebSocket upgrade. Until it has registered,
// a connection also has a small byte budget, and lines/frames are capped at a few KiB (a
// NodeRegistration is ~200 bytes): going over closes it. Refusals are counted in metrics and
// logged at most once per address per minute, never once per connection.
import type { FastifyBaseLogger } from 'fastify';
import { addressKey, withDefaults } from './limits.js';
import { KeyedLogThrottle } from './log-throttle.js';
import type { NodeMetrics, TransportKind } from './metrics.js';

export interface ConnectionLimitOptions {
  /** Node connections open at once over every transport. Default 20 000. */
  maxConnections?: number;
  /** Node connections open at once from one address (IPv6: one /64). Default 256. */
  maxConnectionsPerAddress?: number;
  /** Largest line/frame before registration, bytes. Default 8 KiB. */
  preAuthLineMaxBytes?: number;
  /** Bytes a connection may send before it has registered. Default 64 KiB. */
  preAuthMaxBytes?: number;
}

export const CONNECTION_LIMIT_DEFAULTS = {
  maxConnections: 20_000,
  maxConnectionsPerAddress: 256,
  preAuthLineMaxBytes: 8 * 1024,
  preAuthMaxBytes: 64 * 1024,
};

export class ConnectionLimiter {
  readonly preAuthLineMaxBytes: number;
  readonly preAuthMaxBytes: number;
  private readonly maxTotal: number;
  private readonly maxPerAddress: number;
  private readonly perAddress = new Map<string, number>();
  private total = 0;
  private readonly throttle = new KeyedLogThrottle(60_000);

  constructor(
    private readonly metrics: NodeMetrics,
    private readonly logger: FastifyBaseLogger,
    opts: ConnectionLimitOptions = {},
  ) {
    const o = withDefaults(CONNECTION_LIMIT_DEFAULTS, opts);
    this.maxTotal = o.maxConnections;
    this.maxPerAddress = o.maxConnectionsPerAddress;
    this.preAuthLineMaxBytes = o.preAuthLineMaxBytes;
    this.preAuthMaxBytes = o.preAuthMaxBytes;
  }

  /** Takes a slot for a new connection; false (counted, logged per address) when over a cap. */
  tryOpen(transport: TransportKind, remoteAddress: string): boolean {
    const key = addressKey(remoteAddress);
    const mine = this.perAddress.get(key) ?? 0;
    const reason = this.total >= this.maxTotal ? 'global' : mine >= this.maxPerAddress ? 'per_address' : undefined;
    if (reason) {
      this.metrics.connectionsRefused.inc({ transport, reason });
      this.note(key, `node connections refused: ${reason === 'global' ? `${this.maxTotal} node connections open in total` : `${this.maxPerAddress} open from this address`}`, {
        transport,
        reason,
        open: mine,
        openTotal: this.total,
      });
      return false;
    }
    this.perAddress.set(key, mine + 1);
    this.total++;
    return true;
  }

  /** Gives back the slot of a connection that tryOpen admitted. */
  release(remoteAddress: string): void {
    const key = addressKey(remoteAddress);
    const mine = this.perAddress.get(key) ?? 0;
    if (mine <= 1) this.perAddress.delete(key);
    else this.perAddress.set(key, mine - 1);
    if (this.total > 0) this.total--;
  }

  /** A connection went over its pre-registration budget and is being closed. */
  preAuthExceeded(transport: TransportKind, remoteAddress: string, reason: 'oversized_line' | 'byte_budget', detail: string): void {
    this.metrics.preAuthClosed.inc({ transport, reason });
    this.note(addressKey(remoteAddress), `node connection closed before registration: ${detail}`, { transport, reason });
  }

  get openConnections(): number {
    return this.total;
  }

  private note(key: string, msg: string, fields: Record<string, unknown>): void {
    const t = this.throttle.take(key, Date.now());
    if (t.log) this.logger.warn({ remoteAddress: key, ...fields, suppressedSinceLastLine: t.suppressed }, `${msg} (one line per address per minute)`);
  }
}
