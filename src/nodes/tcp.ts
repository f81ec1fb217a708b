// Raw TCP (optionally TLS 1.3 only) listener for nodes: newline-delimited JSON, one envelope per line.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { FastifyBaseLogger } from 'fastify';
import type { ConnectionLimiter } from './connection-limit.js';
import type { GatewayCore } from './gateway.js';
import { LineSplitter } from './line-splitter.js';
import { KeyedLogThrottle } from './log-throttle.js';
import type { NodeSession, SessionTransport } from './session.js';

/** How long a graceful stop keeps reading a registered node after ending the connection. */
const SHUTDOWN_DRAIN_MS = 2000;

export interface TcpListenOptions {
  /** Default '0.0.0.0'. */
  host?: string;
  /** Default 9001; 0 picks a free port. */
  port?: number;
  /** When given, only TLS 1.3 is spoken. The certificate needs a subjectAltName (nodes reject CN-only). */
  tls?: { certPath: string; keyPath: string };
  /** A TLS client must finish its handshake within this time. Default 10 000 ms. */
  tlsHandshakeTimeoutMs?: number;
  /**
   * Runs first on every accepted connection, before the connection caps and any TLS handshake,
   * and says which address it comes from (a PROXY protocol header from a trusted load balancer).
   * Default: the socket's own peer.
   */
  resolvePeer?: PeerResolver;
}

/** The address a node connection is taken to come from. */
export interface PeerAddress {
  address: string;
  port: number;
}

/** A value: at once; a promise: that connection alone waits. Undefined: refused (and closed) by the hook. */
export type PeerResolver = (socket: net.Socket) => PeerAddress | undefined | Promise<PeerAddress | undefined>;

export interface TcpListener {
  host: string;
  port: number;
  tls: boolean;
  /**
   * Stops accepting and closes this listener's sessions (reason 'shutdown'); registered nodes' last
   * lines are read first (Session.closeDraining), for at most SHUTDOWN_DRAIN_MS.
   */
  close(): Promise<void>;
}

/** Core->node traffic is small (acks, commands); a backlog this large means the node stopped reading. */
const MAX_WRITE_BACKLOG = 4 * 1024 * 1024;
/**
 * Read but not yet handled input per connection (see ReadScheduler) at which the socket stops being
 * read; it is read again once under half. One socket read is up to 64 KiB.
 */
const MAX_QUEUED_INPUT = 64 * 1024;

/** A connection's own address and port: the same on a raw socket and on the TLS socket wrapping it. */
function socketKey(socket: net.Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

export function normaliseAddress(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

class TcpTransport implements SessionTransport {
  readonly remoteAddress: string;
  /** Set by the listener: lifts the pre-registration limits. */
  onAuthenticated: (() => void) | undefined;

  constructor(
    readonly kind: 'tcp' | 'tls',
    private readonly socket: net.Socket,
    private readonly logger: FastifyBaseLogger,
    remoteAddress: string,
  ) {
    this.remoteAddress = remoteAddress;
  }

  authenticated(): void {
    this.onAuthenticated?.();
  }

  send(text: string): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if (this.socket.writableLength > MAX_WRITE_BACKLOG) {
      this.logger.warn({ remoteAddress: this.remoteAddress, backlog: this.socket.writableLength }, 'node is not reading its connection; closing it');
      this.socket.destroy();
      return;
    }
    this.socket.write(text + '\n');
  }

  end(text: string | undefined, _reason: string): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if (text !== undefined) this.socket.end(text + '\n');
    else this.socket.end();
    // A peer that never reads or never closes its side must not keep the socket forever.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export async function listenTcp(
  core: GatewayCore,
  opts: TcpListenOptions & { lineMaxBytes: number; limiter: ConnectionLimiter },
): Promise<TcpListener> {
  const logger = core.logger;
  const limiter = opts.limiter;
  const host = opts.host ?? '0.0.0.0';
  const sockets = new Set<net.Socket>();
  const sessions = new Map<net.Socket, NodeSession>();
  /** Per socket: re-applies its read state (core back-pressure or its own input queue). */
  const flowSync = new Map<net.Socket, () => void>();
  /** Raw sockets whose PROXY header is being read (close() ends them). */
  const resolving = new Set<net.Socket>();
  /** TLS: peers named by a PROXY header, by the raw socket's own address and port (see socketKey). */
  const resolvedPeers = new Map<string, string>();
  let tlsServer: tls.Server | undefined;

  // Runs on the raw TCP socket, before any TLS handshake: a refused peer costs no crypto.
  const admit = (raw: net.Socket, address: string, named: boolean): void => {
    if (!limiter.tryOpen('tcp', address)) {
      raw.destroy();
      return;
    }
    raw.once('close', () => limiter.release(address));
    if (!tlsServer) {
      onSocket(raw, address);
      return;
    }
    if (named) {
      const key = socketKey(raw);
      resolvedPeers.set(key, address);
      raw.once('close', () => {
        if (resolvedPeers.get(key) === address) resolvedPeers.delete(key);
      });
    }
    tlsServer.emit('connection', raw);
  };
  const onConnection = (raw: net.Socket): void => {
    const own = normaliseAddress(raw.remoteAddress);
    if (opts.resolvePeer === undefined) return admit(raw, own, false);
    const resolved = opts.resolvePeer(raw);
    if (!(resolved instanceof Promise)) {
      if (resolved === undefined) raw.destroy();
      else admit(raw, normaliseAddress(resolved.address), resolved.address !== own);
      return;
    }
    resolving.add(raw);
    resolved.then(
      (peer) => {
        resolving.delete(raw);
        if (peer === undefined || raw.destroyed || closing !== undefined) raw.destroy();
        else admit(raw, normaliseAddress(peer.address), true);
      },
      (err: unknown) => {
        resolving.delete(raw);
        logger.error({ err, remoteAddress: own }, 'node connection peer lookup failed; connection closed');
        raw.destroy();
      },
    );
  };

  const onSocket = (socket: net.Socket, remoteAddress: string): void => {
    if (socket.destroyed) return;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const transport = new TcpTransport(opts.tls ? 'tls' : 'tcp', socket, logger, remoteAddress);
    const session = core.openSession(transport);
    if (!session) {
      socket.on('close', () => sockets.delete(socket));
      return;
    }
    sessions.set(socket, session);
    let preAuthBytes = 0;
    let registered = false;
    const closePreAuth = (reason: 'oversized_line' | 'byte_budget', detail: string): void => {
      limiter.preAuthExceeded('tcp', transport.remoteAddress, reason, detail);
      session.close('preauth_limit');
      socket.destroy();
    };
    const preAuthLineMax = Math.min(limiter.preAuthLineMaxBytes, opts.lineMaxBytes);
    const splitter = new LineSplitter(preAuthLineMax, {
      line: (text) => session.handleText(text),
      oversized: (bytes) => {
        core.metrics.oversizedLines.inc();
        if (!registered) {
          closePreAuth('oversized_line', `line of at least ${bytes} bytes before registration (cap ${preAuthLineMax})`);
          return;
        }
        session.discarded('oversized', `line of at least ${bytes} bytes exceeds the ${opts.lineMaxBytes}-byte cap; discarded up to its newline`);
      },
    });
    transport.onAuthenticated = () => {
      registered = true;
      splitter.maxLineBytes = opts.lineMaxBytes;
    };
    // Reads are queued and handled by the gateway's ReadScheduler a slice at a time. The socket is
    // read while neither the core (back-pressure) nor its own queue says stop.
    let backlogged = false;
    const syncFlow = (): void => {
      const stop = core.inputPaused || backlogged;
      if (stop && !socket.isPaused()) socket.pause();
      else if (!stop && socket.isPaused()) socket.resume();
    };
    const reader = {
      drain: (maxLines: number): boolean => {
        // A closed session ignores its input: drop it rather than framing it.
        if (session.state === 'closed') {
          splitter.clearQueue();
          return true;
        }
        const empty = splitter.drain(maxLines);
        if (backlogged && splitter.queuedBytes <= MAX_QUEUED_INPUT / 2) {
          backlogged = false;
          syncFlow();
        }
        return empty;
      },
    };
    flowSync.set(socket, syncFlow);
    socket.on('data', (chunk: Buffer) => {
      if (!registered) {
        preAuthBytes += chunk.length;
        if (preAuthBytes > limiter.preAuthMaxBytes) {
          closePreAuth('byte_budget', `${preAuthBytes} bytes sent without registering (budget ${limiter.preAuthMaxBytes})`);
          return;
        }
      }
      if (socket.destroyed) return;
      splitter.enqueue(chunk);
      core.reads.schedule(reader);
      if (!backlogged && splitter.queuedBytes >= MAX_QUEUED_INPUT) {
        backlogged = true;
        syncFlow();
      }
    });
    syncFlow();
    socket.on('error', (err: NodeJS.ErrnoException) => {
      logger.debug({ remoteAddress: transport.remoteAddress, nodeName: session.nodeName, code: err.code }, 'node connection error');
    });
    socket.on('close', () => {
      sockets.delete(socket);
      sessions.delete(socket);
      flowSync.delete(socket);
      // What the node sent before it closed is handled before the session ends, as if read in one go.
      core.reads.cancel(reader);
      if (session.state !== 'closed') while (!splitter.drain(Number.MAX_SAFE_INTEGER));
      splitter.clearQueue();
      session.transportClosed();
    });
    socket.on('end', () => {
      // Half-open is not part of the protocol: the node closed its side, so close ours.
      if (!socket.writableEnded) socket.end();
    });
  };

  // The listening server is plain TCP either way: the peer (a PROXY header comes before any TLS
  // byte) and the caps are settled on the raw socket, which is then handed to a TLS server that
  // does not listen itself.
  if (opts.tls) {
    const secure = (tlsServer = tls.createServer({
      cert: readFileSync(opts.tls.certPath),
      key: readFileSync(opts.tls.keyPath),
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      handshakeTimeout: opts.tlsHandshakeTimeoutMs ?? 10_000,
    }));
    secure.on('secureConnection', (socket: tls.TLSSocket) => {
      onSocket(socket, resolvedPeers.get(socketKey(socket)) ?? normaliseAddress(socket.remoteAddress));
    });
    const handshakeLog = new KeyedLogThrottle(60_000);
    secure.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      const remoteAddress = resolvedPeers.get(socketKey(socket)) ?? normaliseAddress(socket.remoteAddress);
      // A handshake timeout reports here but does not end the socket by itself.
      socket.destroy();
      if (remoteAddress === 'unknown') return;
      const t = handshakeLog.take(remoteAddress, Date.now());
      if (t.log) {
        logger.info({ remoteAddress, code: err.code, error: err.message, suppressedSinceLastLine: t.suppressed }, 'node TLS handshake failed (one line per address per minute)');
      }
    });
  }
  const server = net.createServer(onConnection);
  server.on('error', (err) => logger.error({ err }, 'node TCP listener error'));

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ host, port: opts.port ?? 9001 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;
  logger.info({ host: addr.address, port: addr.port, tls: !!opts.tls }, 'node TCP listener ready');

  // Back-pressure: stop reading every node socket while the core is saturated.
  const offFlow = core.onInputFlow(() => {
    for (const sync of flowSync.values()) sync();
  });

  let closing: Promise<void> | undefined;
  return {
    host: addr.address,
    port: addr.port,
    tls: !!opts.tls,
    close() {
      offFlow();
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const raw of resolving) raw.destroy();
        resolving.clear();
        // Registered nodes get up to SHUTDOWN_DRAIN_MS to see the end and have their last lines read.
        for (const session of sessions.values()) session.closeDraining('shutdown', SHUTDOWN_DRAIN_MS);
        // Sockets whose session already ended but which are still draining.
        for (const socket of sockets) setTimeout(() => socket.destroy(), SHUTDOWN_DRAIN_MS + 500).unref();
      });
      return closing;
    },
  };
}
