// Shared setup for the node gateway tests: a real SQLite file in a temp dir, the real HTTP server
// with the WebSocket route, a TCP listener on a free port, and raw line/frame clients.
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import { createHttpServer } from '../../src/api/index.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { createNodeGateway, type NodeGatewayHandle, type NodeGatewayOptions, type PeerResolver, type TcpListener } from '../../src/nodes/index.js';
import { tempDir } from '../helpers/tmp.js';

export interface LogRecord {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface Harness {
  db: DatabaseHandle;
  registry: Registry;
  gateway: NodeGatewayHandle;
  app: FastifyInstance;
  tcp: TcpListener;
  wsUrl: string;
  logs: LogRecord[];
  /** Every log line as written, to check that secrets never appear. */
  rawLogs: string[];
  close(): Promise<void>;
}

export async function startHarness(
  opts: Partial<Omit<NodeGatewayOptions, 'db' | 'logger' | 'registry'>> & { tls?: { certPath: string; keyPath: string }; tlsHandshakeTimeoutMs?: number; resolvePeer?: PeerResolver } = {},
): Promise<Harness> {
  const dir = tempDir('apiary-nodes-');
  const db = openDatabase(`${dir.path}/core.db`);
  const registry = new Registry();
  const logs: LogRecord[] = [];
  const rawLogs: string[] = [];
  const logger = pino({ level: 'debug' }, {
    write(line: string) {
      rawLogs.push(line);
      logs.push(JSON.parse(line) as LogRecord);
    },
  });
  const { tls: tlsOpts, tlsHandshakeTimeoutMs, resolvePeer, ...gatewayOpts } = opts;
  const gateway = await createNodeGateway({ db, logger, registry, ...gatewayOpts });
  const app = await createHttpServer();
  await app.register(gateway.wsRoute);
  await app.register(gateway.routes, { prefix: '/api/v1' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as net.AddressInfo;
  const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0, ...(tlsOpts ? { tls: tlsOpts } : {}), ...(tlsHandshakeTimeoutMs ? { tlsHandshakeTimeoutMs } : {}), resolvePeer });
  return {
    db,
    registry,
    gateway,
    app,
    tcp,
    wsUrl: `ws://127.0.0.1:${addr.port}/ws/node`,
    logs,
    rawLogs,
    async close() {
      await gateway.close();
      await app.close();
      db.close();
      dir.cleanup();
    },
  };
}

/** A NodeRegistration line with node_id written as a bare integer (exact u64). */
export function registration(nodeName: string, nodeId: string, totpCode?: string, extra: { address?: string; port?: number } = {}): string {
  const code = totpCode === undefined ? '' : `,"totp_code":${JSON.stringify(totpCode)}`;
  return `{"version":2,"message":{"NodeRegistration":{"node_id":${nodeId},"node_name":${JSON.stringify(nodeName)},"address":${JSON.stringify(extra.address ?? '10.0.0.5')},"port":${extra.port ?? 8080},"node_type":"Full"${code}}}}`;
}

export function statusUpdate(nodeId: string, status: string): string {
  return `{"version":2,"message":{"NodeStatusUpdate":{"node_id":${nodeId},"status":${JSON.stringify(status)}}}}`;
}

export function potStatus(nodeId: string, potId: string, status: string, message?: string, potType = 'cowrie'): string {
  const m = message === undefined ? '' : `,"message":${JSON.stringify(message)}`;
  return `{"version":2,"message":{"PotStatusUpdate":{"node_id":${nodeId},"pot_id":${JSON.stringify(potId)},"pot_type":${JSON.stringify(potType)},"status":${JSON.stringify(status)}${m}}}}`;
}

/** A line/frame client with an awaitable inbox, over raw TCP, TLS or WebSocket. */
export interface TestClient {
  send(text: string): void;
  /** Raw bytes, no framing added (TCP only). */
  write(data: string | Buffer): void;
  next(timeoutMs?: number): Promise<string>;
  /** Resolves when the server closed the connection. */
  closed: Promise<void>;
  isClosed(): boolean;
  close(): void;
  /** Closes gracefully: what was written is delivered first (TCP: FIN; WebSocket: close frame). */
  end(): void;
}

class Inbox {
  private items: string[] = [];
  private waiters: { resolve: (s: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  ended = false;

  push(item: string): void {
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(item);
    } else this.items.push(item);
  }

  end(): void {
    this.ended = true;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error('connection closed while waiting for a message'));
    }
  }

  next(timeoutMs: number): Promise<string> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.ended) return Promise.reject(new Error('connection closed while waiting for a message'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push({ resolve, reject, timer });
    });
  }
}

function lineClient(socket: net.Socket): TestClient {
  const inbox = new Inbox();
  let buf = '';
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      inbox.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  socket.on('error', () => {});
  const closedP = new Promise<void>((resolve) =>
    socket.on('close', () => {
      closed = true;
      inbox.end();
      resolve();
    }),
  );
  return {
    send: (text) => socket.write(text + '\n'),
    write: (data) => socket.write(data),
    next: (t = 5000) => inbox.next(t),
    get closed() {
      return bounded(closedP, 15_000, 'the server to close the connection');
    },
    isClosed: () => closed,
    close: () => socket.destroy(),
    end: () => socket.end(),
  };
}

/** `p`, or a rejection naming `what` after `ms` (the timer does not keep the process alive). */
export function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** `localAddress` (127.0.0.2, 127.0.0.3...) makes the connection come from another loopback address. */
export async function tcpClient(port: number, localAddress?: string): Promise<TestClient> {
  const socket = net.connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
  await once(socket, 'connect', { signal: AbortSignal.timeout(10_000) });
  return lineClient(socket);
}

export async function tlsClient(port: number, ca: string, extra: tls.ConnectionOptions = {}): Promise<TestClient & { protocol: string | null }> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...extra });
  await once(socket, 'secureConnect', { signal: AbortSignal.timeout(10_000) });
  return Object.assign(lineClient(socket), { protocol: socket.getProtocol() });
}

export async function wsClient(url: string): Promise<TestClient & { ws: WebSocket }> {
  const ws = new WebSocket(url);
  const inbox = new Inbox();
  let closed = false;
  ws.on('message', (data, isBinary) => inbox.push(isBinary ? '<binary>' : data.toString()));
  ws.on('error', () => {});
  const closedP = new Promise<void>((resolve) =>
    ws.on('close', () => {
      closed = true;
      inbox.end();
      resolve();
    }),
  );
  await once(ws, 'open', { signal: AbortSignal.timeout(10_000) });
  return {
    ws,
    send: (text) => ws.send(text),
    write: () => {
      throw new Error('raw writes are TCP only');
    },
    next: (t = 5000) => inbox.next(t),
    get closed() {
      return bounded(closedP, 15_000, 'the server to close the WebSocket');
    },
    isClosed: () => closed,
    close: () => ws.terminate(),
    end: () => ws.close(),
  };
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  let total = 0;
  for (const v of data.values) {
    const l = v.labels as Record<string, string>;
    if (Object.entries(labels).every(([k, val]) => l[k] === val)) total += v.value;
  }
  return total;
}

export function nodeRow(h: Harness, name: string): Record<string, unknown> | undefined {
  return h.db.sqlite.prepare('SELECT * FROM nodes WHERE name = ?').get(name) as Record<string, unknown> | undefined;
}

export function nodeLog(h: Harness, name: string): { kind: string; message: string | null }[] {
  return h.db.sqlite.prepare('SELECT kind, message FROM node_log WHERE node_name = ? ORDER BY id').all(name) as { kind: string; message: string | null }[];
}

export function parseAck(line: string): { node_id_raw: string; accepted: boolean; message?: string; totp_key?: string } {
  const m = /"node_id":(\d+)/.exec(line);
  const body = (JSON.parse(line) as { message: { RegistrationAck: { accepted: boolean; message?: string; totp_key?: string } } }).message.RegistrationAck;
  if (!body) throw new Error(`not a RegistrationAck: ${line}`);
  return { node_id_raw: m ? m[1] : '', ...body };
}
