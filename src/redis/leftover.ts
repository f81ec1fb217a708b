// A core killed with SIGKILL (OOM killer, kill -9, a crash in native code) cannot stop its
// redis-server: the child is re-parented and keeps running on the data directory. Before a new
// core starts its own, it looks for such a leftover and stops it, so two servers never write the
// same append-only file. The record file says which process the last core started; on Linux the
// process table is searched as well (redis-server chdirs into its data directory), which also
// finds a leftover whose record was lost.
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { redisInline } from './private-server.js';

/** What the core writes next to the AOF about the redis-server it runs. */
export interface RedisRecord {
  pid: number;
  port: number;
  dir: string;
  /** The core process that started it. */
  corePid: number;
  startedAt: string;
}

export const recordFileName = 'apiary-redis.json';

export function writeRecord(dir: string, record: RedisRecord): void {
  writeFileSync(join(dir, recordFileName), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

export function removeRecord(dir: string): void {
  rmSync(join(dir, recordFileName), { force: true });
}

export function readRecord(dir: string): RedisRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(join(dir, recordFileName), 'utf8')) as Partial<RedisRecord>;
    if (typeof r.pid === 'number' && typeof r.port === 'number') return r as RedisRecord;
  } catch {
    // Missing or unreadable: there is nothing to go on but the process table.
  }
  return undefined;
}

const procFs = existsSync('/proc/self/cwd');

function procRead(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (a zombie has exited; only its parent has not collected it yet). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const status = procFs ? procRead(pid, 'status') : undefined;
  return !status || !/^State:\s+Z/m.test(status);
}

function parentPid(pid: number): number | undefined {
  const m = procRead(pid, 'status')?.match(/^PPid:\s+(\d+)/m);
  return m ? Number(m[1]) : undefined;
}

/** redis-server processes (of this user) whose working directory is `dir`. Linux only. */
function redisServersIn(dir: string): number[] {
  if (!procFs) return [];
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || procRead(pid, 'comm')?.trim() !== 'redis-server') continue;
    try {
      if (readlinkSync(`/proc/${pid}/cwd`) === dir) found.push(pid);
    } catch {
      // Another user's process, or it just exited.
    }
  }
  return found;
}

/** Is `pid` a redis-server serving `dir`? Asked of /proc, or of the server itself on its port. */
async function servesDir(pid: number, dir: string, port: number | undefined): Promise<boolean> {
  if (procFs) {
    if (procRead(pid, 'comm')?.trim() !== 'redis-server') return false;
    try {
      return readlinkSync(`/proc/${pid}/cwd`) === dir;
    } catch {
      return false;
    }
  }
  if (!port) return false;
  const reply = await redisInline(port, 'CONFIG GET dir');
  return reply?.includes(`\r\n${dir}\r\n`) ?? false;
}

export interface Leftover {
  pid: number;
  /** The core that started it, when the record says so. */
  corePid?: number;
  /** That core is still running: the data directory is in use, not abandoned. */
  ownerAlive: boolean;
}

/** redis-servers left running on `dir` by an earlier core. */
export async function findLeftovers(dir: string): Promise<Leftover[]> {
  const record = readRecord(dir);
  const pids = new Set(redisServersIn(dir));
  if (record && isAlive(record.pid) && (await servesDir(record.pid, dir, record.port))) pids.add(record.pid);
  const out: Leftover[] = [];
  for (const pid of pids) {
    const ppid = parentPid(pid);
    let corePid: number | undefined;
    let ownerAlive: boolean;
    if (record?.pid === pid) {
      // The record names its core: still its parent (Linux) or, without /proc, simply alive.
      corePid = record.corePid;
      ownerAlive = corePid !== process.pid && isAlive(corePid) && (ppid === undefined || ppid === corePid);
    } else {
      // No record: a node process as parent is a running core; anything else (init, a
      // subreaper) means its core is gone.
      ownerAlive = ppid !== undefined && ppid !== 1 && ppid !== process.pid && procRead(ppid, 'comm')?.trim() === 'node';
      corePid = ownerAlive ? ppid : undefined;
    }
    out.push({ pid, corePid, ownerAlive });
  }
  return out;
}

/** SIGTERM (redis flushes its AOF), then SIGKILL if it has not exited within `graceMs`. */
export async function stopForeignProcess(pid: number, graceMs = 10_000): Promise<'stopped' | 'killed'> {
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!isAlive(pid)) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return !isAlive(pid);
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'stopped';
  }
  if (await gone(graceMs)) return 'stopped';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Exited in between.
  }
  await gone(5000);
  return 'killed';
}
