// The core's private redis-server, looked after: started on a free port under the data
// directory, recorded (pid, port, dir) so a later core can find it, restarted with exponential
// back-off whenever it dies (each restart is logged and counted), and stopped with the core. A
// server left behind by a core that crashed is stopped before a new one starts (see leftover.ts).
//
// Why stop a leftover rather than adopt it: it is not our child, so we would learn of its death
// only by polling, and its log pipe leads nowhere. Stopping it costs a fraction of a second; its
// append-only file keeps every queued command for the new server.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { findLeftovers, removeRecord, stopForeignProcess, writeRecord } from './leftover.js';
import { freePort, launchRedisServer, stopRedisProcess, type RedisProcess } from './private-server.js';

/** The part of a pino logger this module uses. */
export interface RedisLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SupervisedRedisOptions {
  dir: string;
  binary?: string;
  logger: RedisLogger;
  registry?: Registry;
  /** First restart delay; doubles on each failed attempt up to maxMs. Defaults 200 ms / 30 s. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A server that ran this long before dying is restarted after initialBackoffMs again. Default 60 s. */
  stableAfterMs?: number;
}

export interface SupervisedRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Pid of the current redis-server, undefined while it is being restarted. */
  readonly pid: number | undefined;
  /** How many times it died and was restarted. */
  readonly restarts: number;
  /** Stops supervising, then stops the server gracefully (its AOF is flushed). */
  stop(): Promise<void>;
}

/** A data directory another core still uses; the start is refused. */
export class RedisDirInUseError extends Error {
  override name = 'RedisDirInUseError';
}

export async function startSupervisedRedis(opts: SupervisedRedisOptions): Promise<SupervisedRedis> {
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true });
  const log = opts.logger;
  const initialMs = opts.initialBackoffMs ?? 200;
  const maxMs = opts.maxBackoffMs ?? 30_000;
  const stableAfterMs = opts.stableAfterMs ?? 60_000;

  for (const left of await findLeftovers(dir)) {
    if (left.ownerAlive) {
      throw new RedisDirInUseError(
        `another apiary core (pid ${left.corePid}) is running with its redis-server (pid ${left.pid}) on ${dir}; stop it, or give this core another data directory`,
      );
    }
    log.warn(
      { redisPid: left.pid, previousCorePid: left.corePid, dir },
      `found a redis-server (pid ${left.pid}) left running by a previous core${left.corePid ? ` (pid ${left.corePid})` : ''} on this data directory; stopping it before starting a new one`,
    );
    const how = await stopForeignProcess(left.pid);
    log.info({ redisPid: left.pid, how }, `leftover redis-server ${how === 'stopped' ? 'stopped (AOF flushed)' : 'killed after it ignored SIGTERM'}`);
  }

  const registers = opts.registry ? [opts.registry] : [];
  const restartsTotal = new Counter({
    name: 'apiary_redis_restarts_total',
    help: 'Times the private redis-server died and was restarted by the core',
    registers,
  });
  const up = new Gauge({ name: 'apiary_redis_up', help: 'Whether the private redis-server is running (1) or being restarted (0)', registers });

  const port = await freePort();
  const onLog = (line: string) => log.debug({ line }, 'redis-server');
  let proc: RedisProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let startedAt = 0;
  let delay = initialMs;
  let timer: NodeJS.Timeout | undefined;

  // A core that exits without stop() (process.exit, an uncaught exception) still takes its server with it.
  const onProcessExit = () => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGTERM');
  };
  process.on('exit', onProcessExit);

  const started = (p: RedisProcess) => {
    proc = p;
    startedAt = Date.now();
    up.set(1);
    writeRecord(dir, { pid: p.pid, port, dir, corePid: process.pid, startedAt: new Date(startedAt).toISOString() });
    void p.exited.then((how) => onExit(p, how));
  };

  const onExit = (p: RedisProcess, how: { code: number | null; signal: NodeJS.Signals | null }) => {
    if (stopping || proc !== p) return;
    proc = undefined;
    up.set(0);
    restarts++;
    restartsTotal.inc();
    if (Date.now() - startedAt >= stableAfterMs) delay = initialMs;
    log.warn(
      { redisPid: p.pid, code: how.code, signal: how.signal, restart: restarts, inMs: delay },
      `private redis-server (pid ${p.pid}) exited unexpectedly (${how.signal ?? `code ${how.code}`}); restart #${restarts} in ${delay} ms`,
    );
    schedule();
  };

  const schedule = () => {
    timer = setTimeout(() => void relaunch(), delay);
    delay = Math.min(delay * 2, maxMs);
  };

  const relaunch = async () => {
    if (stopping) return;
    try {
      const p = await launchRedisServer({ dir, port, binary: opts.binary, onLog, detached: true });
      if (stopping) {
        await stopRedisProcess(p);
        return;
      }
      started(p);
      log.info({ redisPid: p.pid, port, restart: restarts }, `private redis-server restarted (pid ${p.pid}, port ${port})`);
    } catch (err) {
      log.error({ err: (err as Error).message, port, nextInMs: delay }, 'could not restart the private redis-server; trying again');
      schedule();
    }
  };

  started(await launchRedisServer({ dir, port, binary: opts.binary, onLog, detached: true }));
  log.info({ redisPid: proc!.pid, port, dir }, 'started private redis-server');

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return proc?.pid;
    },
    get restarts() {
      return restarts;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      clearTimeout(timer);
      const p = proc;
      proc = undefined;
      if (p) await stopRedisProcess(p, 'SIGTERM');
      up.set(0);
      removeRecord(dir);
      process.off('exit', onProcessExit);
    },
  };
}
