// Real receivers on 127.0.0.1 for alert channels: an HTTP server that records what it got (and
// can answer errors for a while), and an SMTP server that requires STARTTLS with a certificate made
// in the test and a password.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';

export interface HttpHit {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: any;
}

export interface HttpReceiver {
  url: string;
  hits: HttpHit[];
  /** Answer this many requests with `failStatus` before answering normally. */
  failNext(n: number, status?: number): void;
  /** Body of normal answers (Telegram expects {"ok":true,...}). */
  answer: string;
  waitFor(n: number, timeoutMs?: number): Promise<HttpHit[]>;
  close(): Promise<void>;
}

export async function startHttpReceiver(answer = 'ok'): Promise<HttpReceiver> {
  const hits: HttpHit[] = [];
  let failures = 0;
  let failStatus = 503;
  const state = { answer };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      hits.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json });
      if (failures > 0) {
        failures--;
        res.writeHead(failStatus).end('unavailable');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(state.answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    failNext(n, status = 503) {
      failures = n;
      failStatus = status;
    },
    get answer() {
      return state.answer;
    },
    set answer(v: string) {
      state.answer = v;
    },
    async waitFor(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (hits.length < n) {
        if (Date.now() > deadline) throw new Error(`receiver got ${hits.length} requests, expected ${n}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Mail {
  from: string;
  to: string[];
  user: string | undefined;
  secure: boolean;
  data: string;
}

export interface SmtpReceiver {
  port: number;
  cert: TestCertificate;
  mails: Mail[];
  /** Commands seen before TLS: a client must not send AUTH or MAIL in the clear. */
  plainAuthAttempts: number;
  close(): Promise<void>;
}

export async function startSmtpReceiver(opts: { user: string; password: string }): Promise<SmtpReceiver> {
  const cert = makeTestCertificate();
  const mails: Mail[] = [];
  const state = { plainAuthAttempts: 0 };
  const server = new SMTPServer({
    key: cert.key,
    cert: cert.cert,
    secure: false,
    // STARTTLS is offered; AUTH is only allowed once the connection is encrypted.
    allowInsecureAuth: false,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    disabledCommands: [],
    onAuth(auth, session, cb) {
      if (!session.secure) {
        state.plainAuthAttempts++;
        return cb(new Error('encryption required'));
      }
      if (auth.username === opts.user && auth.password === opts.password) return cb(null, { user: auth.username });
      return cb(new Error('invalid credentials'));
    },
    onMailFrom(_address, session, cb) {
      if (!session.secure) return cb(new Error('STARTTLS first'));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          secure: session.secure,
          data: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    cert,
    mails,
    get plainAuthAttempts() {
      return state.plainAuthAttempts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          cert.cleanup();
          resolve();
        });
      }),
  };
}

export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
