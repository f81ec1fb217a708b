// Reads the PROXY header off a fresh socket before anything else does. The socket is read in
// paused mode ('readable' + read()); bytes that came in the same reads after the header are put
// back (unshift), so whoever takes the socket next (the line reader, the hpfeeds decoder, or a
// TLS server, which takes buffered bytes from a socket it wraps) sees the stream as if the header
// had never been there. Nothing here holds up other connections: each socket waits on its own
// events and timer.
import type { Socket } from 'node:net';
import { parseProxyHeader, type ProxyHeader, type RejectReason } from './header.js';

export type HeaderRead =
  | { ok: true; header: ProxyHeader; /** Header bytes consumed. */ bytes: number }
  | { ok: false; reason: RejectReason | 'timeout' | 'closed'; detail: string };

export interface HeaderReadOptions {
  timeoutMs: number;
  maxHeaderBytes: number;
}

export function readProxyHeader(socket: Socket, opts: HeaderReadOptions): Promise<HeaderRead> {
  return new Promise<HeaderRead>((resolve) => {
    let buffered: Buffer | undefined;
    let settled = false;
    const settle = (result: HeaderRead, rest?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      // Put back what followed the header: removing the last 'readable' listener leaves the
      // socket neither flowing nor paused, so the next 'data' listener (or a TLS wrap) gets it.
      if (rest !== undefined && rest.length > 0) socket.unshift(rest);
      resolve(result);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (!settled && (chunk = socket.read() as Buffer | null) !== null) {
        buffered = buffered === undefined ? chunk : Buffer.concat([buffered, chunk]);
        const parsed = parseProxyHeader(buffered, opts.maxHeaderBytes);
        if (parsed.status === 'incomplete') continue;
        if (parsed.status === 'invalid') return settle({ ok: false, reason: parsed.reason, detail: parsed.detail });
        return settle({ ok: true, header: parsed.header, bytes: parsed.length }, buffered.subarray(parsed.length));
      }
    };
    const onEnd = (): void => {
      const got = buffered?.length ?? 0;
      settle({ ok: false, reason: 'closed', detail: got === 0 ? 'closed before sending a PROXY protocol header' : `closed after ${got} bytes of an incomplete PROXY protocol header` });
    };
    const onError = (err: Error): void => settle({ ok: false, reason: 'closed', detail: `socket error before the PROXY protocol header: ${err.message}` });
    const timer = setTimeout(() => {
      const got = buffered?.length ?? 0;
      settle({ ok: false, reason: 'timeout', detail: `no complete PROXY protocol header within ${opts.timeoutMs} ms (${got} bytes received)` });
    }, opts.timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.on('error', onError);
  });
}
