// Options of the hpfeeds Broker, their defaults, and how they resolve into the limits each part uses.
import type { Registry } from 'prom-client';
import type { AdmissionLimits } from './admission.js';
import { DEFAULT_MAX_FRAME_LENGTH } from './codec.js';
import type { ConnectionLimits } from './connection.js';
import type { GcFunction } from './idle-gc.js';
import type { LabelPolicy } from './labels.js';
import type { SendLimits } from './send-queue.js';
import type { AuthStore, HpfeedsLogger, PeerResolver } from './types.js';

export interface BrokerOptions {
  authStore: AuthStore;
  /** Sent to clients in OP_INFO. Default 'hpfeeds' (the reference's default). */
  name?: string;
  /** Metrics are registered here; default: a private Registry (see `broker.registry`). */
  registry?: Registry;
  logger?: HpfeedsLogger;
  /** Largest frame accepted, header included. Default 5 + 1 MiB. */
  maxFrameLength?: number;
  /**
   * Hard per-subscriber bound on queued bytes; beyond it messages for that subscriber are dropped
   * (counted). External publishers are paused long before (see highWaterBytes), so in practice
   * only in-process publishes to a stuck subscriber reach it. Default 8 MiB.
   */
  maxSendBufferBytes?: number;
  /** Queued bytes past which a subscriber pauses the external publishers feeding it. Default 1 MiB (at most half of maxSendBufferBytes). */
  highWaterBytes?: number;
  /** Queued bytes at or under which those publishers resume. Default highWaterBytes / 4. */
  lowWaterBytes?: number;
  /**
   * Budget for all subscriber queues together (a buffer shared by several subscribers counts
   * once). Past half of it every external publisher pauses; past all of it congested subscribers
   * lose messages. Default 128 MiB.
   */
  maxQueuedBytes?: number;
  /** A subscriber that stays past the high-water mark this long gets an ERROR after its queued data and is disconnected. Default 10 s. */
  backpressureDeadlineMs?: number;
  /**
   * Subscribers' writes are flushed at most once per this many ms while small amounts keep coming
   * (a message after a quiet spell is written at once, and so is everything after a flush of
   * 16 KiB or more). Trades at most this much latency for far fewer socket writes in small
   * fan-out. 0 flushes every I/O turn. Default 10.
   */
  flushLingerMs?: number;
  /** Time a new connection has to complete AUTH (or a TLS handshake). Default 10 s. */
  authTimeoutMs?: number;
  /** Time a closing connection gets to flush before it is destroyed. Default 2 s. */
  closeTimeoutMs?: number;
  /** Bytes a peer may send before it is authenticated (only AUTH is accepted then). Default 16 KiB. */
  preAuthMaxBytes?: number;
  /** Connections across all listeners (TLS handshakes included). Default 10000. */
  maxConnections?: number;
  /** Connections from one remote address. Default 200. */
  maxConnectionsPerAddress?: number;
  /** Failed AUTHs per address per window before that address's AUTHs are refused unchecked. Default 20. */
  authFailuresPerAddress?: number;
  /** Failed AUTHs per existing ident per window (not counting its last good address). Default 20. */
  authFailuresPerIdent?: number;
  /** Window of the AUTH failure limits. Default 60 s. */
  authFailureWindowMs?: number;
  /**
   * Bounds on metric label values a peer can choose: channel names (in-process publishers pass
   * pot-type channels) and idents. Values in `known` always keep their name; `max` others are
   * admitted, the rest are exported as `other`. Defaults: no known values, max 200 each.
   */
  metricLabels?: { channels?: LabelPolicy; idents?: LabelPolicy };
  /**
   * After a burst (32 MiB queued for subscribers since the last time) the broker runs a full
   * garbage collection once it has been quiet for a 2 s period, and another 6 s later, so the
   * burst's memory is given back (see idle-gc.ts). 'auto' (default)
   * uses the engine's gc, enabling it at run time if needed; false disables; or pass a function.
   */
  idleGc?: 'auto' | false | GcFunction;
  /**
   * Called for every PUBLISH a connected client makes that passed its ACL check, right after it was
   * routed to this broker's subscribers; never for Broker.publish() (in-process publishes). It lets
   * the embedding program mirror client publishes elsewhere, e.g. to the other brokers of a group
   * sharing one audience, which hand them to their own Broker.publish(): no loop. `payload` is a view
   * into the read buffer, valid only during the call (copy it to keep it). It runs on the publish
   * hot path, so keep it cheap (buffer, no I/O per call); what it throws is logged and ignored.
   */
  onClientPublish?: (ident: string, channel: string, payload: Uint8Array) => void;
  /**
   * Runs first on every accepted TCP connection, before connection caps, TLS and OP_INFO, and
   * says which address the connection comes from (caps, AUTH failure limits and logs use it).
   * Default: the socket's own peer. The embedding program passes e.g. a PROXY protocol reader.
   */
  resolvePeer?: PeerResolver;
}

export interface ListenAddress {
  host: string;
  port: number;
  tls: boolean;
}

export const BROKER_DEFAULTS = {
  name: 'hpfeeds',
  maxFrameLength: DEFAULT_MAX_FRAME_LENGTH,
  maxSendBufferBytes: 8 * 1024 * 1024,
  highWaterBytes: 1024 * 1024,
  maxQueuedBytes: 128 * 1024 * 1024,
  backpressureDeadlineMs: 10_000,
  flushLingerMs: 10,
  authTimeoutMs: 10_000,
  closeTimeoutMs: 2_000,
  preAuthMaxBytes: 16 * 1024,
  maxConnections: 10_000,
  maxConnectionsPerAddress: 200,
  authFailuresPerAddress: 20,
  authFailuresPerIdent: 20,
  authFailureWindowMs: 60_000,
  maxLabelValues: 200,
} as const;

export function resolveLimits(opts: BrokerOptions): { limits: ConnectionLimits; sendLimits: SendLimits; admissionLimits: AdmissionLimits; flushLingerMs: number } {
  const limits: ConnectionLimits = {
    maxFrameLength: opts.maxFrameLength ?? BROKER_DEFAULTS.maxFrameLength,
    authTimeoutMs: opts.authTimeoutMs ?? BROKER_DEFAULTS.authTimeoutMs,
    closeTimeoutMs: opts.closeTimeoutMs ?? BROKER_DEFAULTS.closeTimeoutMs,
    preAuthMaxBytes: opts.preAuthMaxBytes ?? BROKER_DEFAULTS.preAuthMaxBytes,
  };
  const maxSendBufferBytes = opts.maxSendBufferBytes ?? BROKER_DEFAULTS.maxSendBufferBytes;
  const highWaterBytes = opts.highWaterBytes ?? Math.min(BROKER_DEFAULTS.highWaterBytes, Math.floor(maxSendBufferBytes / 2));
  const sendLimits: SendLimits = {
    maxSendBufferBytes,
    highWaterBytes,
    lowWaterBytes: opts.lowWaterBytes ?? Math.floor(highWaterBytes / 4),
    maxQueuedBytes: opts.maxQueuedBytes ?? BROKER_DEFAULTS.maxQueuedBytes,
    backpressureDeadlineMs: opts.backpressureDeadlineMs ?? BROKER_DEFAULTS.backpressureDeadlineMs,
  };
  if (!(sendLimits.lowWaterBytes < highWaterBytes && highWaterBytes <= maxSendBufferBytes)) {
    throw new RangeError('hpfeeds broker: need lowWaterBytes < highWaterBytes <= maxSendBufferBytes');
  }
  const admissionLimits: AdmissionLimits = {
    maxConnections: opts.maxConnections ?? BROKER_DEFAULTS.maxConnections,
    maxConnectionsPerAddress: opts.maxConnectionsPerAddress ?? BROKER_DEFAULTS.maxConnectionsPerAddress,
    authFailuresPerAddress: opts.authFailuresPerAddress ?? BROKER_DEFAULTS.authFailuresPerAddress,
    authFailuresPerIdent: opts.authFailuresPerIdent ?? BROKER_DEFAULTS.authFailuresPerIdent,
    authFailureWindowMs: opts.authFailureWindowMs ?? BROKER_DEFAULTS.authFailureWindowMs,
    logIntervalMs: 60_000,
  };
  const flushLingerMs = opts.flushLingerMs ?? BROKER_DEFAULTS.flushLingerMs;
  if (!(flushLingerMs >= 0 && flushLingerMs <= 10_000)) throw new RangeError('hpfeeds broker: flushLingerMs must be within 0..10000');
  return { limits, sendLimits, admissionLimits, flushLingerMs };
}
