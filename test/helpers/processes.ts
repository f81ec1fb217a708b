// Real child processes for tests: the core as a person runs it (bin/apiary.js, npm start), with
// its JSON log parsed as it arrives. Every process started here, and every pid a test registers
// (the core's redis-server), is killed when the test calls killAll(); if the test process ends any
// other way (exit, SIGTERM from the test runner's timeout, SIGKILL) ./children.ts kills them.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { trackChild, untrackChild } from './children.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

const tracked = new Set<number>();
function killTracked(): void {
  for (const pid of tracked) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    untrackChild(pid);
  }
  tracked.clear();
}

/** Registers a pid to kill when the test ends (e.g. the redis-server a core started). */
export function track(pid: number | undefined): void {
  if (!pid) return;
  tracked.add(pid);
  trackChild(pid);
}

export function killAll(): void {
  killTracked();
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface LogRecord {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** Parsed JSON log lines so far. */
  logs: LogRecord[];
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log record matching, within `ms`. */
  waitLog(match: (r: LogRecord) => boolean, ms: number, what: string): Promise<LogRecord>;
}

export function start(cmd: string, args: string[], opts: SpawnOptions & { env: Record<string, string | undefined> }): Proc {
  const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  track(child.pid);
  let out = '';
  let err = '';
  let partial = '';
  const logs: LogRecord[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d;
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogRecord);
      } catch {
        // npm's own banner lines.
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => {
      tracked.delete(child.pid!);
      untrackChild(child.pid);
      res({ code, signal });
    }),
  );
  return {
    child,
    pid: child.pid!,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitLog: (match, ms, what) =>
      until(
        async () => {
          const found = logs.find(match);
          if (found) return found;
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${what}\nstderr: ${err}\nstdout tail: ${out.slice(-2000)}`);
          }
          return undefined;
        },
        ms,
        what,
      ),
  };
}

/** Flags that put a core's three listeners on these ports of 127.0.0.1 (0: a free port each). */
export function portFlags(ports: { api: number; nodeTcp: number; hpfeeds: number }): string[] {
  return ['--api-host', '127.0.0.1', '--api-port', String(ports.api), '--node-tcp-host', '127.0.0.1', '--node-tcp-port', String(ports.nodeTcp), '--hpfeeds-endpoint', `tcp:port=${ports.hpfeeds}:interface=127.0.0.1`];
}

/** Flags that put every listener of a core on a free port of 127.0.0.1. */
export const freePortFlags = portFlags({ api: 0, nodeTcp: 0, hpfeeds: 0 });

/** Below Linux's ephemeral range (32768-60999 by default): no outgoing connection is given these. */
const RESTARTABLE_PORTS = { from: 20_000, to: 32_000 };

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The listener flags of a core that will be started again on the same ports (the nodes know it
 * there): free ports below the ephemeral range, picked at random. A port the kernel picked for a
 * listener (port 0) is ephemeral: once the core lets it go, any outgoing connection of the machine
 * may be given it, and the restarted core then finds it taken (seen once in CI, in the rolling
 * restart of test/cluster/processes.test.ts).
 */
export async function restartablePortFlags(): Promise<string[]> {
  const ports: number[] = [];
  while (ports.length < 3) {
    const port = RESTARTABLE_PORTS.from + Math.floor(Math.random() * (RESTARTABLE_PORTS.to - RESTARTABLE_PORTS.from));
    if (!ports.includes(port) && (await canListen(port))) ports.push(port);
  }
  const [api, nodeTcp, hpfeeds] = ports as [number, number, number];
  return portFlags({ api, nodeTcp, hpfeeds });
}

/** Environment for a core under test: its own data dir, JSON logs, nothing inherited that changes behaviour. */
export function coreEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, APIARY_DATA_DIR: dataDir, LOG_FORMAT: 'json', LOG_LEVEL: 'info', ...extra };
  for (const k of ['REDIS_URL', 'APIARY_DB', 'API_PORT', 'NODE_TCP_PORT', 'HPFEEDS_ENDPOINTS', 'NODE_OPTIONS']) if (!(k in extra)) delete env[k];
  return env;
}

export interface CoreAddresses {
  api: number;
  nodeTcp: number;
  hpfeeds: number;
  redisPid?: number;
  redisPort?: number;
}

/** Waits for 'apiary is ready' and returns where the core listens (and its redis-server). */
export async function readyCore(p: Proc, ms = 60_000): Promise<CoreAddresses> {
  const ready = await p.waitLog((r) => r.msg === 'apiary is ready', ms, 'apiary is ready');
  const redis = p.logs.find((r) => r.msg === 'started private redis-server');
  track(redis?.redisPid as number | undefined);
  return {
    api: (ready.api as { port: number }).port,
    nodeTcp: (ready.nodeTcp as { port: number }).port,
    hpfeeds: (ready.hpfeeds as { port: number }[])[0]!.port,
    redisPid: redis?.redisPid as number | undefined,
    redisPort: redis?.port as number | undefined,
  };
}

/** True when nothing accepts connections on 127.0.0.1:port. */
export async function portClosed(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      res(false);
    });
    s.once('error', () => res(true));
  });
}
