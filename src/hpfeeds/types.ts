import type { Socket } from 'node:net';

/** One hpfeeds credential, in the shape of the reference broker's auth backends. */
export interface AuthKey {
  ident: string;
  owner: string;
  secret: string;
  pubchans: string[];
  subchans: string[];
}

/** Listener for credential changes: the idents whose keys changed, or undefined for "maybe all". */
export type AuthChangeListener = (idents: readonly string[] | undefined) => void;

export interface AuthStore {
  /** Called at every login and on revalidation; may be async (database lookups). */
  get(ident: string): AuthKey | undefined | null | Promise<AuthKey | undefined | null>;
  /**
   * Optional change feed. A Broker given a store with `watch` subscribes to it and revalidates
   * the live connections of the reported idents, so edits reach connected clients without a
   * restart. Returns an unsubscribe function.
   */
  watch?(listener: AuthChangeListener): () => void;
}

/** The slice of a pino-style logger hpfeeds needs; a pino or Fastify logger fits as is. */
export interface HpfeedsLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export const silentLogger: HpfeedsLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** The address a connection is taken to come from (see BrokerOptions.resolvePeer). */
export interface PeerAddress {
  address: string;
  port: number;
}

/**
 * Decides a new raw connection's peer before the broker reads it (e.g. from a PROXY protocol
 * header a trusted load balancer sends first). A value: at once; a promise: the connection waits
 * alone for it. Undefined: the hook refused the connection (it logs and closes it).
 */
export type PeerResolver = (socket: Socket) => PeerAddress | undefined | Promise<PeerAddress | undefined>;
