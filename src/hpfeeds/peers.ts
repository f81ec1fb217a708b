// Where a new connection comes from, when the embedding program says so (BrokerOptions.resolvePeer,
// e.g. a PROXY protocol header from a trusted load balancer). The broker asks this before its
// connection caps, TLS and OP_INFO; a peer read from the connection makes that connection alone
// wait. TLS sockets are wrapped by Node's TLS server, which tells the broker only of the wrapper:
// the peer is found again by the raw socket's own address and port, which the wrapper shares.
import type { Socket } from 'node:net';
import type { HpfeedsLogger, PeerAddress, PeerResolver } from './types.js';

function socketKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

export class PeerResolution {
  /** Peers given by the hook, by socketKey of the raw socket (for its TLS wrapper). */
  private readonly named = new Map<string, PeerAddress>();
  /** Raw sockets whose peer the hook is still working out. */
  private readonly pending = new Set<Socket>();

  constructor(
    private readonly resolve: PeerResolver | undefined,
    private readonly logger: HpfeedsLogger,
  ) {}

  /**
   * Calls `next` with the connection's peer once known: undefined means the socket's own (no
   * hook). A connection the hook refuses (or that fails) is closed and `next` is not called.
   */
  take(socket: Socket, next: (socket: Socket, peer: PeerAddress | undefined) => void): void {
    const resolve = this.resolve;
    if (resolve === undefined) return next(socket, undefined);
    const proceed = (peer: PeerAddress | undefined): void => {
      if (peer === undefined || socket.destroyed) socket.destroy();
      else next(socket, peer);
    };
    const failed = (err: unknown): void => {
      this.logger.error({ err: String(err), peer: `${socket.remoteAddress}:${socket.remotePort}` }, 'hpfeeds resolvePeer hook failed; connection closed');
      socket.destroy();
    };
    let result: ReturnType<PeerResolver>;
    try {
      result = resolve(socket);
    } catch (err) {
      return failed(err);
    }
    if (!(result instanceof Promise)) return proceed(result);
    this.pending.add(socket);
    socket.once('close', () => this.pending.delete(socket));
    result.then((peer) => {
      this.pending.delete(socket);
      proceed(peer);
    }, failed);
  }

  /** Keeps `peer` for the TLS socket that will wrap `raw`, while `raw` is open. */
  remember(raw: Socket, peer: PeerAddress): void {
    const key = socketKey(raw);
    this.named.set(key, peer);
    raw.once('close', () => {
      if (this.named.get(key) === peer) this.named.delete(key);
    });
  }

  /** The peer remembered for the raw socket under a TLS socket, if any. */
  of(socket: Socket): PeerAddress | undefined {
    return this.named.get(socketKey(socket));
  }

  /** Closes the connections still waiting for their peer (the broker is closing). */
  closePending(): void {
    for (const socket of this.pending) socket.destroy();
    this.pending.clear();
  }
}
