// WebSocket transport for nodes: GET /ws/node, one envelope per text frame. Needs @fastify/websocket
// registered on the instance (createHttpServer does; its maxPayload is the hard frame cap, above
// which ws closes the connection with 1009; frames above lineMaxBytes but below it are discarded
// and the session survives).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { ConnectionLimiter } from './connection-limit.js';
import type { GatewayCore } from './gateway.js';
import type { SessionTransport } from './session.js';
import { normaliseAddress } from './tcp.js';

const closeCodes: Record<string, number> = {
  shutdown: 1001,
  rejected: 1008,
  revoked: 1008,
  auth_timeout: 1008,
};

class WsTransport implements SessionTransport {
  readonly kind = 'ws' as const;
  registered = false;
  /** Set by the route: lifts the pre-registration limits. */
  onAuthenticated: (() => void) | undefined;

  authenticated(): void {
    this.registered = true;
    this.onAuthenticated?.();
  }

  constructor(
    private readonly socket: WebSocket,
    readonly remoteAddress: string,
  ) {}

  send(text: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(text);
  }

  end(text: string | undefined, reason: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    const code = closeCodes[reason] ?? 1000;
    const close = () => {
      this.socket.close(code, reason.slice(0, 120));
      // A peer that never answers the close handshake is cut off.
      setTimeout(() => this.socket.terminate(), 5000).unref();
    };
    if (text === undefined) close();
    else this.socket.send(text, () => close());
  }

  destroy(): void {
    this.socket.terminate();
  }
}

export function nodeWsRoute(core: GatewayCore, lineMaxBytes: number, limiter: ConnectionLimiter) {
  // Connection caps are checked before the upgrade: a refused peer gets a plain 503 and costs no
  // WebSocket. The slot is given back when the underlying socket closes.
  const admit = async (request: FastifyRequest & { ws?: boolean }, reply: { code(n: number): { send(b: unknown): unknown } }) => {
    if (!request.ws) return;
    const address = normaliseAddress(request.raw.socket.remoteAddress);
    if (!limiter.tryOpen('ws', address)) {
      return reply.code(503).send({ error: 'too_many_connections', message: 'Too many node connections; retry later' });
    }
    request.raw.socket.once('close', () => limiter.release(address));
  };
  return async function nodeWebSocketRoute(app: FastifyInstance): Promise<void> {
    app.get(
      '/ws/node',
      {
        websocket: true,
        // No operator role: nodes authenticate with NodeRegistration + TOTP inside the socket.
        schema: { hide: true },
        onRequest: admit,
      },
      (socket, request) => {
        const transport = new WsTransport(socket, normaliseAddress(request.socket.remoteAddress));
        const session = core.openSession(transport);
        if (!session) return;
        // ws buffers a whole frame (up to its maxPayload) before 'message': the pre-registration
        // byte budget is counted on the raw socket, so a big frame is cut off while it arrives.
        const raw = request.raw.socket;
        let preAuthBytes = 0;
        const closePreAuth = (reason: 'oversized_line' | 'byte_budget', detail: string): void => {
          limiter.preAuthExceeded('ws', transport.remoteAddress, reason, detail);
          session.close('preauth_limit');
          socket.terminate();
        };
        const countPreAuth = (chunk: Buffer): void => {
          preAuthBytes += chunk.length;
          if (preAuthBytes > limiter.preAuthMaxBytes) {
            raw.off('data', countPreAuth);
            closePreAuth('byte_budget', `${preAuthBytes} bytes sent without registering (budget ${limiter.preAuthMaxBytes})`);
          }
        };
        raw.on('data', countPreAuth);
        transport.onAuthenticated = () => raw.off('data', countPreAuth);
        socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
          const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
          if (!transport.registered && buf.length > Math.min(limiter.preAuthLineMaxBytes, lineMaxBytes)) {
            core.metrics.oversizedLines.inc();
            closePreAuth('oversized_line', `frame of ${buf.length} bytes before registration (cap ${Math.min(limiter.preAuthLineMaxBytes, lineMaxBytes)})`);
            return;
          }
          if (isBinary) {
            session.discarded('binary_frame', `binary frame of ${buf.length} bytes; envelopes are sent as text frames`);
            return;
          }
          if (buf.length > lineMaxBytes) {
            core.metrics.oversizedLines.inc();
            session.discarded('oversized', `frame of ${buf.length} bytes exceeds the ${lineMaxBytes}-byte cap; discarded`);
            return;
          }
          session.handleText(buf.toString('utf8'));
        });
        socket.on('error', (err: Error) => {
          core.logger.debug({ remoteAddress: transport.remoteAddress, nodeName: session.nodeName, error: err.message }, 'node WebSocket error');
        });
        // Back-pressure: the ws stops reading its socket while the core is saturated.
        if (core.inputPaused) socket.pause();
        const offFlow = core.onInputFlow((paused) => (paused ? socket.pause() : socket.resume()));
        socket.on('close', () => {
          offFlow();
          session.transportClosed();
        });
      },
    );
  };
}
