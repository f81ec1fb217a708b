// A TCP relay on 127.0.0.1 in front of a real server (Redis, here) that can make one chosen request
// slow: the next chunk from a client that contains a marker, and everything after it on that
// connection, wait `ms` before they go on (in order, as a slow network or a busy server would make
// them). Replies are passed at once. It lets a test hold one read deterministically without
// touching the code under test.
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface SlowRelay {
  /** `redis://127.0.0.1:<port>` style address of the relay. */
  readonly port: number;
  /** The next request containing `marker` (and what follows it) is held `ms`. */
  slowNext(rule: { marker: string; ms: number }): void;
  /** How many chunks were held so far. */
  readonly held: number;
  close(): Promise<void>;
}

export async function startSlowRelay(target: { host: string; port: number }): Promise<SlowRelay> {
  let rule: { marker: string; ms: number } | undefined;
  let held = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.once('close', () => sockets.delete(client));
    upstream.once('close', () => sockets.delete(upstream));
    upstream.on('data', (d) => client.write(d));
    // The tail of the chain of forwarded chunks: a held chunk delays the ones after it.
    let tail = Promise.resolve();
    client.on('data', (chunk) => {
      const r = rule;
      const hold = r !== undefined && chunk.includes(r.marker);
      if (hold) {
        held++;
        rule = undefined;
      }
      tail = tail.then(async () => {
        if (hold) await new Promise((resolve) => setTimeout(resolve, r!.ms));
        if (!upstream.destroyed) upstream.write(chunk);
      });
    });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    slowNext(r) {
      rule = r;
    },
    get held() {
      return held;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
