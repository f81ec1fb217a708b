// Connection caps of the HTTP server: a total (server.maxConnections, enforced by Node at accept)
// and one per remote address (enforced here), both counted, with one log line per address per
// minute, never one per connection.
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';

const LOG_INTERVAL_MS = 60_000;

export interface ConnectionLimitOptions {
  /** Open connections one remote address may hold; more are closed at once. 0 = no per-address cap. */
  maxPerAddress?: number;
}

export function limitConnections(app: FastifyInstance, registry: Registry, opts: ConnectionLimitOptions = {}): void {
  const dropped = new Counter({
    name: 'apiary_http_connections_dropped_total',
    help: 'HTTP connections refused at accept, by cap (total: HTTP_MAX_CONNECTIONS, address: HTTP_MAX_CONNECTIONS_PER_ADDRESS)',
    labelNames: ['cap'],
    registers: [registry],
  });
  const droppedTotal = dropped.labels('total');
  const droppedAddress = dropped.labels('address');
  const lastLogged = new Map<string, number>();
  const logOnce = (cap: string, address: string, limit: number) => {
    const key = `${cap} ${address}`;
    const now = Date.now();
    const last = lastLogged.get(key);
    if (last !== undefined && now - last < LOG_INTERVAL_MS) return;
    if (lastLogged.size >= 10_000) lastLogged.clear();
    lastLogged.set(key, now);
    app.log.warn({ remoteAddress: address, cap, limit }, 'HTTP connection cap reached; refusing connections (logged once a minute per address)');
  };

  app.server.on('drop', (data?: { remoteAddress?: string }) => {
    droppedTotal.inc();
    logOnce('total', data?.remoteAddress ?? 'unknown', app.server.maxConnections);
  });

  const maxPerAddress = opts.maxPerAddress ?? 0;
  if (maxPerAddress <= 0) return;
  const perAddress = new Map<string, number>();
  app.server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const open = perAddress.get(address) ?? 0;
    if (open >= maxPerAddress) {
      droppedAddress.inc();
      logOnce('address', address, maxPerAddress);
      socket.destroy();
      return;
    }
    perAddress.set(address, open + 1);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
}
