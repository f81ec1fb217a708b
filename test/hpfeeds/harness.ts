// Shared pieces of the hpfeeds tests: a broker on an ephemeral port, a raw protocol peer that
// speaks frames over a real socket, a capturing logger and polling helpers.
import { once } from 'node:events';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { Registry } from 'prom-client';
import { Broker, type BrokerOptions } from '../../src/hpfeeds/broker.js';
import { MemoryAuthStore } from '../../src/hpfeeds/auth-stores.js';
import {
  FrameDecoder,
  OP_INFO,
  OP_PUBLISH,
  encodeAuthFromSecret,
  encodePublish,
  encodeSubscribe,
  type HpfeedsFrame,
} from '../../src/hpfeeds/codec.js';
import type { AuthKey, AuthStore, HpfeedsLogger } from '../../src/hpfeeds/types.js';

export function key(ident: string, secret: string, pubchans: string[], subchans: string[], owner = `${ident}-owner`): AuthKey {
  return { ident, owner, secret, pubchans, subchans };
}

export class CaptureLogger implements HpfeedsLogger {
  readonly entries: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
  debug(obj: Record<string, unknown>, msg: string) {
    this.entries.push({ level: 'debug', msg, obj });
  }
  info(obj: Record<string, unknown>, msg: string) {
    this.entries.push({ level: 'info', msg, obj });
  }
  warn(obj: Record<string, unknown>, msg: string) {
    this.entries.push({ level: 'warn', msg, obj });
  }
  error(obj: Record<string, unknown>, msg: string) {
    this.entries.push({ level: 'error', msg, obj });
  }
  text(): string {
    return this.entries.map((e) => `${e.level} ${e.msg} ${JSON.stringify(e.obj)}`).join('\n');
  }
}

export interface TestBroker {
  broker: Broker;
  store: MemoryAuthStore;
  registry: Registry;
  logger: CaptureLogger;
  port: number;
  metrics(): Promise<string>;
}

export async function startBroker(
  opts: Partial<BrokerOptions> & { keys?: AuthKey[]; endpoint?: string } = {},
): Promise<TestBroker> {
  const store = new MemoryAuthStore(opts.keys ?? []);
  const registry = new Registry();
  const logger = new CaptureLogger();
  const broker = new Broker({ name: 'testbroker', registry, logger, ...opts, authStore: opts.authStore ?? (store as AuthStore) });
  const { port } = await broker.listen(opts.endpoint ?? 'tcp:port=0:interface=127.0.0.1');
  return { broker, store, registry, logger, port, metrics: () => registry.metrics() };
}

export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Polls the broker's metrics until `pattern` matches. */
export async function waitForMetric(t: { metrics(): Promise<string> }, pattern: RegExp, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(await t.metrics())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for metric ${pattern}`);
    await sleep(5);
  }
}

/** Waits until the broker has handled SUBSCRIBE (or UNSUBSCRIBE, count 0) frames already sent. */
export function waitSubscriptions(t: { metrics(): Promise<string> }, ident: string, chan: string, count = 1): Promise<void> {
  return waitForMetric(t, new RegExp(`^hpfeeds_broker_subscriptions\\{ident="${ident}",chan="${chan}"\\} ${count}$`, 'm'));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rejects if `promise` takes longer than `ms`; the timer is cleared so it never holds the process. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A client driven frame by frame, for asserting exact wire behaviour. */
/** The two reference identities most broker tests log in as: alice publishes and subscribes, bob only reads `events`. */
export const ALICE_BOB_KEYS = [
  key('alice', 'alice-secret', ['events', 'alerts'], ['events', 'alerts']),
  key('bob', 'bob-secret', [], ['events']),
];

/** The PUBLISH frames a peer has received, in order. */
export function publishes(peer: RawPeer) {
  return peer.frames.filter((f) => f.op === OP_PUBLISH) as Array<Extract<(typeof peer.frames)[number], { op: 3 }>>;
}

export class RawPeer {
  readonly frames: HpfeedsFrame[] = [];
  /** Raw chunks as received (to check that OP_INFO came in one piece). */
  readonly chunks: Buffer[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  private readonly decoder = new FrameDecoder();
  private cursor = 0;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.decoder.push(chunk);
      for (let f = this.decoder.next(); f; f = this.decoder.next()) this.frames.push(f);
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
  }

  static async connect(port: number, tls?: { ca: string; servername?: string }): Promise<RawPeer> {
    const socket = tls
      ? connectTls({ host: '127.0.0.1', port, ca: tls.ca, servername: tls.servername ?? 'localhost' })
      : connectTcp({ host: '127.0.0.1', port });
    await once(socket, tls ? 'secureConnect' : 'connect');
    const peer = new RawPeer(socket);
    await peer.waitFrames(1);
    return peer;
  }

  /** A peer over a socket the test opened itself (e.g. after writing a PROXY header); waits for OP_INFO. */
  static async over(socket: Socket): Promise<RawPeer> {
    const peer = new RawPeer(socket);
    await peer.waitFrames(1);
    return peer;
  }

  /** Connects and authenticates (AUTH plus `then` frames in the same write). */
  static async login(port: number, ident: string, secret: string, then: Buffer[] = []): Promise<RawPeer> {
    const peer = await RawPeer.connect(port);
    peer.write(Buffer.concat([peer.auth(ident, secret), ...then]));
    return peer;
  }

  /** Bytes received that do not (yet) form a whole frame. */
  get bufferedBytes(): number {
    return this.decoder.bufferedBytes;
  }

  /**
   * Reads at most `bytesPerSecond` on average from now on (a slow consumer): the socket is paused
   * while it has read ahead of its allowance. Returns a function that stops the throttle.
   */
  throttle(bytesPerSecond: number): () => void {
    let debt = 0;
    let last = performance.now();
    const onData = (chunk: Buffer) => {
      debt += chunk.length;
      if (debt > 0) this.socket.pause();
    };
    this.socket.on('data', onData);
    const timer = setInterval(() => {
      const now = performance.now();
      debt = Math.max(-bytesPerSecond / 50, debt - ((now - last) / 1000) * bytesPerSecond);
      last = now;
      if (debt <= 0 && !this.isClosed) this.socket.resume();
    }, 5);
    return () => {
      clearInterval(timer);
      this.socket.off('data', onData);
      this.socket.resume();
    };
  }

  get info(): Extract<HpfeedsFrame, { op: 1 }> {
    const info = this.frames[0];
    if (info?.op !== OP_INFO) throw new Error('no OP_INFO received');
    return info;
  }

  auth(ident: string, secret: string): Buffer {
    return encodeAuthFromSecret(this.info.nonce, ident, secret);
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  subscribe(ident: string, channel: string): void {
    this.write(encodeSubscribe(ident, channel));
  }

  publish(ident: string, channel: string, payload: string | Buffer): void {
    this.write(encodePublish(ident, channel, payload));
  }

  async waitFrames(count: number, timeoutMs = 5000): Promise<void> {
    await waitFor(() => this.frames.length >= count, timeoutMs, `${count} frames`);
  }

  /** Next frame not yet returned by this method (OP_INFO excluded). */
  async nextFrame(timeoutMs = 5000): Promise<HpfeedsFrame> {
    if (this.cursor === 0) this.cursor = 1;
    await waitFor(() => this.frames.length > this.cursor || this.isClosed, timeoutMs, 'next frame');
    if (this.frames.length <= this.cursor) throw new Error('connection closed before the next frame');
    return this.frames[this.cursor++];
  }

  /** Waits for an ERROR frame followed by the close of the connection; returns its text. */
  async expectErrorAndClose(timeoutMs = 5000): Promise<string> {
    await withTimeout(this.closed, timeoutMs, 'connection not closed');
    const errors = this.frames.filter((f) => f.op === 0);
    if (errors.length === 0) throw new Error('closed without an ERROR frame');
    return (errors[errors.length - 1] as { message: string }).message;
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    await withTimeout(this.closed, timeoutMs, 'connection not closed');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A raw socket that leaves from `localAddress` (any 127.0.0.0/8 address works on Linux). */
const closedBySocket = new WeakMap<Socket, Promise<unknown>>();
export async function connectFrom(port: number, localAddress: string): Promise<Socket> {
  const socket = connectTcp({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => {});
  closedBySocket.set(socket, once(socket, 'close'));
  await once(socket, 'connect');
  return socket;
}
/** Resolves when a socket from connectFrom() is closed. */
export const closedOf = (s: Socket): Promise<unknown> => closedBySocket.get(s)!;

/** Logs in from `localAddress`; `error` resolves with the ERROR text, or undefined on a close without one. */
export async function loginFrom(port: number, localAddress: string, ident: string, secret: string): Promise<{ socket: Socket; error: Promise<string | undefined> }> {
  const socket = await connectFrom(port, localAddress);
  let buf = Buffer.alloc(0);
  let authSent = false;
  const error = new Promise<string | undefined>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && buf.length >= buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const op = buf[4];
        if (op === 1 && !authSent) {
          authSent = true;
          const nonce = buf.subarray(6 + buf[5], len);
          socket.write(encodeAuthFromSecret(nonce, ident, secret));
        } else if (op === 0) {
          resolve(buf.toString('utf8', 5, len));
        }
        buf = buf.subarray(len);
      }
    });
    socket.once('close', () => resolve(undefined));
  });
  return { socket, error };
}
