// Starts and stops a redis-server child process owned by this process. Used by the tests, which
// must never depend on a Redis someone else runs, and (through supervisor.ts) by the core when
// REDIS_URL is unset, so a laptop needs nothing but the redis-server binary.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { resolve } from 'node:path';

export interface RedisLaunchOptions {
  /** Directory for the append-only file and dump; created if missing. */
  dir: string;
  /** TCP port on 127.0.0.1. */
  port: number;
  /** Append-only persistence (fsync every second). On by default: queued commands must survive. */
  appendOnly?: boolean;
  /** Path of the redis-server binary. */
  binary?: string;
  /** Called with each line redis-server prints, for the caller's logger. */
  onLog?: (line: string) => void;
  /**
   * Own process group: a Ctrl-C at the terminal (SIGINT to the whole foreground group) then
   * reaches only the core, which stops Redis itself, after the parts that use it.
   */
  detached?: boolean;
}

/** One running redis-server child. */
export interface RedisProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Settles when the process has exited, with how it ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface PrivateRedisOptions extends Omit<RedisLaunchOptions, 'port'> {
  /** TCP port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
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

/**
 * Sends one inline command to a Redis on 127.0.0.1 and resolves with the raw reply, or undefined
 * when nothing answered within the timeout. Enough for PING and CONFIG GET without a client library.
 */
export function redisInline(port: number, command: string, timeoutMs = 500): Promise<string | undefined> {
  return new Promise((res) => {
    const sock = connect({ port, host: '127.0.0.1' });
    let buf = '';
    let settled = false;
    const done = (reply: string | undefined) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      res(reply);
    };
    sock.setTimeout(timeoutMs, () => done(undefined));
    sock.on('error', () => done(undefined));
    sock.on('connect', () => sock.write(`${command}\r\n`));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      if (isCompleteReply(buf)) done(buf);
    });
    sock.on('close', () => done(buf || undefined));
  });
}

/** True once `buf` holds a whole simple/error reply or a whole array of bulk strings. */
function isCompleteReply(buf: string): boolean {
  if (buf.startsWith('+') || buf.startsWith('-') || buf.startsWith(':')) return buf.includes('\r\n');
  if (!buf.startsWith('*')) return buf.includes('\r\n');
  const lines = buf.split('\r\n');
  const count = Number(lines[0]!.slice(1));
  // *N, then N pairs of $len / value, then the empty string after the final CRLF.
  return count <= 0 ? lines.length >= 2 : lines.length >= 2 + count * 2;
}

export async function ping(port: number): Promise<boolean> {
  return (await redisInline(port, 'PING'))?.startsWith('+PONG') ?? false;
}

/** Spawns redis-server and resolves once it answers PING (or rejects, with the process gone). */
export async function launchRedisServer(opts: RedisLaunchOptions): Promise<RedisProcess> {
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const binary = opts.binary ?? 'redis-server';
  const args = [
    '--port', String(opts.port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', opts.appendOnly === false ? 'no' : 'yes',
    '--appendfsync', 'everysec',
    '--daemonize', 'no',
    '--protected-mode', 'yes',
  ];
  const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    proc.once('exit', (code, signal) => res({ code, signal })),
  );
  let lastLines: string[] = [];
  const forward = (d: Buffer) => {
    for (const line of d.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      lastLines = [...lastLines.slice(-4), line.trim()];
      opts.onLog?.(line.trim());
    }
  };
  proc.stdout?.on('data', forward);
  proc.stderr?.on('data', forward);
  const spawnError = new Promise<never>((_, rej) =>
    proc.once('error', (err) => rej(new Error(`cannot start ${binary}: ${err.message}`))),
  );
  spawnError.catch(() => undefined);
  const deadline = Date.now() + 10_000;
  const ready = (async () => {
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        // Give the pipes a moment to deliver redis-server's last words (usually the reason).
        await new Promise((r) => setTimeout(r, 20));
        const why = lastLines.find((l) => /error|fatal|address already in use|can't/i.test(l)) ?? lastLines.at(-1);
        throw new Error(`${binary} exited with code ${proc.exitCode}${why ? `: ${why.replace(/^\d+:\w+ [^*#]*[*#] /, '')}` : ''}`);
      }
      if (await ping(opts.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${binary} did not answer PING on port ${opts.port} within 10 s`);
  })();
  try {
    await Promise.race([ready, spawnError]);
  } catch (err) {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      proc.kill('SIGKILL');
      await exited;
    }
    throw err;
  }
  return { child: proc, pid: proc.pid!, exited };
}

/** Stops a child redis-server: SIGTERM (it flushes the AOF), SIGKILL if it lingers. */
export async function stopRedisProcess(proc: RedisProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const lingering = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), graceMs)));
  if ((await Promise.race([proc.exited, lingering])) === 'timeout') {
    child.kill('SIGKILL');
    await proc.exited;
  }
  clearTimeout(timer);
}

/** An unsupervised redis-server child, for tests and benchmarks that kill and restart it on purpose. */
export async function startPrivateRedis(opts: PrivateRedisOptions): Promise<PrivateRedis> {
  const port = opts.port && opts.port > 0 ? opts.port : await freePort();
  let proc: RedisProcess | undefined = await launchRedisServer({ ...opts, port });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return proc?.pid;
    },
    stop: async () => {
      if (proc) await stopRedisProcess(proc, 'SIGTERM');
    },
    kill: async () => {
      if (proc) await stopRedisProcess(proc, 'SIGKILL');
    },
    async restart() {
      if (proc) await stopRedisProcess(proc, 'SIGTERM');
      proc = undefined;
      proc = await launchRedisServer({ ...opts, port });
    },
  };
}
