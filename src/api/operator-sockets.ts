// Which open WebSockets belong to which operator token, so a revocation can reach them.
/** What OperatorSockets needs of a WebSocket (ws's WebSocket satisfies it). */
export interface ClosableSocket {
  close(code?: number, reason?: string): void;
  terminate?(): void;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * WebSockets opened with an operator token, by token id. Authentication happens once, at the
 * upgrade; without this a revoked token's streams would keep running.
 */
export class OperatorSockets {
  private readonly byOperator = new Map<string, Set<ClosableSocket>>();

  track(operatorId: string, socket: ClosableSocket): void {
    let set = this.byOperator.get(operatorId);
    if (set === undefined) this.byOperator.set(operatorId, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0 && this.byOperator.get(operatorId) === set) this.byOperator.delete(operatorId);
    });
  }

  /** Operator (token) ids with at least one open socket. */
  operatorIds(): string[] {
    return [...this.byOperator.keys()];
  }

  /** Closes every socket of `operatorId` (1008, policy violation); returns how many. */
  closeFor(operatorId: string, reason = 'token revoked'): number {
    const set = this.byOperator.get(operatorId);
    if (set === undefined) return 0;
    this.byOperator.delete(operatorId);
    for (const socket of set) {
      socket.close(1008, reason);
      // A client that never answers the close handshake is not left holding the socket.
      setTimeout(() => socket.terminate?.(), 5000).unref();
    }
    return set.size;
  }
}
