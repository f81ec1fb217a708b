import type { EventMetrics } from './metrics.js';
import type { EventFilter } from './types.js';

/** What the hub needs of a WebSocket (ws's WebSocket satisfies it). */
export interface StreamSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  terminate?(): void;
  on(event: 'close', listener: () => void): unknown;
}

export interface StreamOptions {
  /** Concurrent live stream clients; more are refused (close 1013). Default 100. */
  maxClients?: number;
  /** Events are dropped (and counted) for a client whose unsent data exceeds this. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** A client that keeps dropping for this long is disconnected (close 1008). Default 30 000 ms. */
  slowClientTimeoutMs?: number;
}

/** Fields the hub matches filters against, plus the event's ready-made JSON. */
export interface StreamEvent {
  node: string;
  potId: string;
  potType: string;
  eventType: string;
  timestamp: number;
  json: string;
}

const OPEN = 1;

interface Client {
  socket: StreamSocket;
  filter: EventFilter;
  dropped: number;
  droppingSince: number;
}

function matches(f: EventFilter, e: StreamEvent): boolean {
  return (
    (f.node === undefined || f.node === e.node) &&
    (f.pot === undefined || f.pot === e.potId) &&
    (f.potType === undefined || f.potType === e.potType) &&
    (f.eventType === undefined || f.eventType === e.eventType) &&
    (f.since === undefined || e.timestamp >= f.since) &&
    (f.until === undefined || e.timestamp < f.until)
  );
}

/**
 * Fan-out of committed events to dashboard WebSocket clients. A slow client never makes the core
 * buffer more than maxBufferedBytes for it: events beyond that are dropped and counted, and a client
 * that stays behind for slowClientTimeoutMs is disconnected.
 */
export class EventStreamHub {
  private readonly clients = new Set<Client>();
  private readonly maxClients: number;
  private readonly maxBuffered: number;
  private readonly slowTimeoutMs: number;

  constructor(
    private readonly metrics: EventMetrics,
    opts: StreamOptions = {},
  ) {
    this.maxClients = opts.maxClients ?? 100;
    this.maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
    this.slowTimeoutMs = opts.slowClientTimeoutMs ?? 30_000;
  }

  get size(): number {
    return this.clients.size;
  }

  /** Registers a socket; returns false (and closes it) when the client limit is reached. */
  add(socket: StreamSocket, filter: EventFilter): boolean {
    if (this.clients.size >= this.maxClients) {
      this.metrics.streamDisconnected.child('full').inc();
      socket.close(1013, 'too many stream clients');
      return false;
    }
    const client: Client = { socket, filter, dropped: 0, droppingSince: 0 };
    this.clients.add(client);
    this.metrics.streamClients.set(this.clients.size);
    socket.on('close', () => {
      if (this.clients.delete(client)) this.metrics.streamClients.set(this.clients.size);
    });
    return true;
  }

  dispatch(events: readonly StreamEvent[], now: number): void {
    if (this.clients.size === 0) return;
    for (const c of this.clients) {
      if (c.socket.readyState !== OPEN) continue;
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        if (!matches(c.filter, e)) continue;
        if (c.socket.bufferedAmount > this.maxBuffered) {
          c.dropped++;
          this.metrics.streamDropped.inc();
          if (c.droppingSince === 0) c.droppingSince = now;
          else if (now - c.droppingSince > this.slowTimeoutMs) {
            this.disconnect(c, 'slow', 1008, 'stream client too slow');
            break;
          }
          continue;
        }
        c.droppingSince = 0;
        c.socket.send(e.json);
      }
    }
  }

  closeAll(): void {
    for (const c of [...this.clients]) this.disconnect(c, 'shutdown', 1001, 'server shutting down');
  }

  private disconnect(c: Client, reason: string, code: number, text: string): void {
    this.clients.delete(c);
    this.metrics.streamClients.set(this.clients.size);
    this.metrics.streamDisconnected.child(reason).inc();
    try {
      // A slow client's close frame would queue behind the data it is not reading.
      if (reason === 'slow' && c.socket.terminate !== undefined) c.socket.terminate();
      else c.socket.close(code, text);
    } catch {
      // already closing
    }
  }
}
