// Syslog output: RFC 5424 messages, over UDP (one datagram each, RFC 5426: no delivery guarantee),
// TCP or TLS (octet-counting framing `<len> <msg>`, RFC 6587 / RFC 5425). A TCP or TLS batch
// counts as delivered once the kernel has taken it; a receiver that closes its end is noticed
// before the next write, so batches made while it was away wait in the backlog.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { SyslogOutputConfig } from './config.js';
import { SYSLOG_FACILITIES } from './config.js';
import type { Sender } from './delivery.js';
import { isoTime } from './format.js';
import type { AttackRecord } from './records.js';

/** Syslog severities of record severities: high → warning, medium → notice, low/informational → info. */
const SEVERITY: Record<string, number> = { high: 4, medium: 5, low: 6, informational: 6 };

function facilityCode(f: string): number {
  const i = SYSLOG_FACILITIES.indexOf(f);
  // 'security', 'console', 'solaris-cron' sit at 13-15 in the table above.
  return i < 0 ? 1 : i;
}

export function syslogEncoder(cfg: Pick<SyslogOutputConfig, 'facility' | 'hostname' | 'appName'>, procId = String(process.pid)) {
  const host = (cfg.hostname ?? osHostname().replace(/[^!-~]/g, '')) || '-';
  const fac = facilityCode(cfg.facility) * 8;
  const head = ` ${host} ${cfg.appName} ${procId} - - `;
  return (r: AttackRecord, line: string): string => `<${fac + (SEVERITY[r.severity] ?? 6)}>1 ${isoTime(r.timestamp)}${head}${line}`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => {
        onTimeout();
        reject(new Error(`${what} timed out after ${ms} ms`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(t));
}

export class StreamSyslogSender implements Sender {
  private socket: Socket | null = null;
  private ca: Buffer | undefined;
  private closed = false;

  constructor(private readonly cfg: SyslogOutputConfig) {
    if (cfg.transport === 'tls' && cfg.tls?.ca) this.ca = readFileSync(cfg.tls.ca);
  }

  private usable(s: Socket | null): s is Socket {
    return s !== null && !s.destroyed && !s.readableEnded && s.writable;
  }

  private connect(): Promise<Socket> {
    const { host, port, transport, tls } = this.cfg;
    return withTimeout(
      new Promise<Socket>((resolve, reject) => {
        const s: Socket =
          transport === 'tls'
            ? tlsConnect({ host, port, ca: this.ca, rejectUnauthorized: tls?.rejectUnauthorized ?? true, servername: tls?.servername ?? (/^[\d.:]+$/.test(host) ? undefined : host) }, () => done())
            : netConnect({ host, port }, () => done());
        const fail = (err: Error) => reject(err);
        function done() {
          s.off('error', fail);
          // Receivers send nothing; reading keeps 'end' (the peer closed) observable.
          s.on('data', () => undefined);
          s.on('error', () => s.destroy());
          s.on('end', () => s.destroy());
          s.setKeepAlive(true, 30_000);
          resolve(s);
        }
        s.once('error', fail);
      }),
      this.cfg.timeoutMs,
      `connect to ${host}:${port}`,
      () => undefined,
    );
  }

  async send(entries: readonly Buffer[]): Promise<{ done: number; rejected: number }> {
    if (!this.usable(this.socket)) {
      (this.socket as Socket | null)?.destroy();
      const fresh = await this.connect();
      // close() ran while connecting: do not keep a connection nobody will close.
      if (this.closed) {
        fresh.destroy();
        throw new Error('syslog output closed');
      }
      this.socket = fresh;
    }
    const s = this.socket;
    const parts: Buffer[] = [];
    for (const e of entries) parts.push(Buffer.from(`${e.length} `), e);
    const buf = Buffer.concat(parts);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        s.write(buf, (err) => (err ? reject(err) : resolve()));
      }),
      this.cfg.timeoutMs,
      'syslog write',
      () => s.destroy(),
    );
    return { done: entries.length, rejected: 0 };
  }

  async close(): Promise<void> {
    this.closed = true;
    const s = this.socket;
    this.socket = null;
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        s.destroy();
        resolve();
      }, 2000);
      s.end(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

export class UdpSyslogSender implements Sender {
  private socket: UdpSocket | null = null;

  constructor(private readonly cfg: SyslogOutputConfig) {}

  async send(entries: readonly Buffer[]): Promise<{ done: number; rejected: number }> {
    if (this.socket === null) {
      const family = this.cfg.host.includes(':') ? 'udp6' : 'udp4';
      const s = createSocket(family);
      s.on('error', () => undefined);
      this.socket = s;
    }
    const s = this.socket;
    let rejected = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      try {
        await new Promise<void>((resolve, reject) => s.send(e, this.cfg.port, this.cfg.host, (err) => (err ? reject(err) : resolve())));
      } catch (err) {
        // A datagram too large for UDP never fits: refused for good; others are retried.
        if ((err as NodeJS.ErrnoException).code === 'EMSGSIZE') rejected++;
        else if (i === 0) throw err;
        else return { done: i, rejected };
      }
    }
    return { done: entries.length, rejected };
  }

  async close(): Promise<void> {
    this.socket?.close();
    this.socket = null;
  }
}
