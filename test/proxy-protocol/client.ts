// Connections "through a proxy" for the listener tests: a real socket from a chosen loopback
// address (the proxy's), whose first bytes are a PROXY header, as HAProxy sends it.
import { once } from 'node:events';
import net from 'node:net';
import { Duplex } from 'node:stream';

/** A TCP connection from `from` to 127.0.0.1:port, connected. */
export async function connectFrom(port: number, from: string): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => undefined);
  await once(socket, 'connect', { signal: AbortSignal.timeout(10_000) });
  socket.setNoDelay(true);
  return socket;
}

/**
 * A stream over `raw` whose first write goes out with `prefix` in front of it, in one socket write:
 * a TLS client over it sends the PROXY header and its ClientHello together, as a proxy whose
 * client spoke first does.
 */
export function prefixedStream(raw: net.Socket, prefix: Buffer): Duplex {
  let first = true;
  const stream: Duplex = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      const data = first ? Buffer.concat([prefix, chunk]) : chunk;
      first = false;
      raw.write(data, callback);
    },
    read() {
      raw.resume();
    },
    final(callback) {
      raw.end();
      callback();
    },
    destroy(err, callback) {
      raw.destroy();
      callback(err);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) raw.pause();
  });
  raw.on('end', () => stream.push(null));
  raw.on('close', () => stream.destroy());
  return stream;
}

/** Resolves once the server closed `socket` (end or reset). */
export function closedByServer(socket: net.Socket, timeoutMs = 10_000): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not close the connection')), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
  });
}
