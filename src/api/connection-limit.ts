// The HTTP server's connection cap (server.maxConnections) made visible: a counter of refused
// connections and one log line per address per minute, never one per connection.
import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';

const LOG_INTERVAL_MS = 60_000;

export function observeDroppedConnections(app: FastifyInstance, registry: Registry): void {
  const dropped = new Counter({
    name: 'apiary_http_connections_dropped_total',
    help: 'HTTP connections refused because the connection cap (HTTP_MAX_CONNECTIONS) was reached',
    registers: [registry],
  });
  const lastLogged = new Map<string, number>();
  app.server.on('drop', (data?: { remoteAddress?: string }) => {
    dropped.inc();
    const address = data?.remoteAddress ?? 'unknown';
    const now = Date.now();
    const last = lastLogged.get(address);
    if (last !== undefined && now - last < LOG_INTERVAL_MS) return;
    if (lastLogged.size >= 10_000) lastLogged.clear();
    lastLogged.set(address, now);
    app.log.warn({ remoteAddress: address, maxConnections: app.server.maxConnections }, 'HTTP connection cap reached; refusing connections (logged once a minute per address)');
  });
}
