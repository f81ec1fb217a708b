// Starts and stops a redis-server child process owned by this process. Used by the core when
// REDIS_URL is unset (a laptop needs nothing but the redis-server binary) and by the tests, which
// must never depend on a Redis someone else runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { resolve } from 'node:path';

export interface PrivateRedisOptions {
  /** Directory for the append-only file and dump; created if missing. */
  dir: string;
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** Append-only persistence (fsync every second). On by default: queued commands must survive. */
  appendOnly?: boolean;
  /** Path of the redis-server binary. */
  binary?: string;
  /** Called with each line redis-server prints, for the caller's logger. */
  onLog?: (line: string) => void;
}

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** Graceful stop (SIGTERM: redis flushes the AOF and exits). */
  stop(): Promise<void>;
  /** Abrupt stop (SIGKILL), for failure tests. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and directory after stop() or kill(). */
  restart(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

export async function startPrivateRedis(opts: PrivateRedisOptions): Promise<PrivateRedis> {
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const port = opts.port && opts.port > 0 ? opts.port : await freePort();
  const binary = opts.binary ?? 'redis-server';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function launch(): Promise<void> {
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', opts.appendOnly === false ? 'no' : 'yes',
      '--appendfsync', 'everysec',
      '--daemonize', 'no',
      '--protected-mode', 'yes',
    ];
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    exited = new Promise((res) => proc.once('exit', () => res()));
    const forward = (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n')) if (line.trim()) opts.onLog?.(line.trim());
    };
    proc.stdout?.on('data', forward);
    proc.stderr?.on('data', forward);
    const spawnError = new Promise<never>((_, rej) =>
      proc.once('error', (err) => rej(new Error(`cannot start ${binary}: ${err.message}`))),
    );
    const deadline = Date.now() + 10_000;
    const ready = (async () => {
      while (Date.now() < deadline) {
        if (proc.exitCode !== null) throw new Error(`${binary} exited with code ${proc.exitCode}`);
        if (await ping(port)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${binary} did not answer PING on port ${port} within 10 s`);
    })();
    await Promise.race([ready, spawnError]);
  }

  async function signal(sig: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(sig);
    await exited;
  }

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid;
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      await launch();
    },
  };
}
