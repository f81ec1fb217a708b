// BullMQ 5 quirk kept in one place: a Queue or Worker built on a shared ioredis client and closed
// while its connection is still initializing (it sends INFO once the client is ready) drops every
// listener of that connection, yet the pending INFO later fails with "Connection is closed" when
// we disconnect the client, and the connection re-emits it as an 'error' no one listens to: an
// uncaught exception that crashes a core stopping right after start (a startup error, say).
import type { EventEmitter } from 'node:events';

type Logger = { debug(obj: object, msg: string): void };

/**
 * After queue.close() / worker.close(): give each internal Redis connection an error listener
 * that only logs, so a late failure of its initialization is noticed, not fatal.
 */
export function sinkLateConnectionErrors(owner: object | undefined, log: Logger): void {
  if (!owner) return;
  for (const field of ['connection', 'blockingConnection']) {
    const conn = (owner as Record<string, unknown>)[field] as EventEmitter | undefined;
    if (conn && typeof conn.on === 'function' && conn.listenerCount('error') === 0) {
      conn.on('error', (err: Error) => log.debug({ err: err.message }, 'command queue connection failed after close'));
    }
  }
}
