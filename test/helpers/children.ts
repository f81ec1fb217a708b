// Child processes a test file starts (redis-servers, cores) die with it, however it ends.
// - Normal exit, an uncaught error, or SIGINT/SIGTERM/SIGHUP: every tracked pid gets SIGKILL.
// - SIGKILL of the test process (or the test runner killing it): a watchdog process, started once
//   per test file, holds the read end of a pipe from this process; when the pipe closes it kills
//   every pid it was told about. This is the parent-death safeguard node cannot set on a spawn.
import { spawn, type ChildProcess } from 'node:child_process';

const tracked = new Set<number>();
let watchdog: ChildProcess | undefined;

const WATCHDOG = `
const pids = new Set();
let buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    const pid = Number(line.slice(1));
    if (line[0] === '+') pids.add(pid); else pids.delete(pid);
  }
});
process.stdin.on('end', () => {
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  process.exit(0);
});
`;

function ensureWatchdog(): ChildProcess {
  if (watchdog && watchdog.exitCode === null) return watchdog;
  // Detached: a signal sent to the test's process group does not take the watchdog down first.
  watchdog = spawn(process.execPath, ['-e', WATCHDOG], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void }).unref?.();
  watchdog.on('error', () => {});
  watchdog.stdin?.on('error', () => {});
  return watchdog;
}

function killAll(): void {
  for (const pid of tracked) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  tracked.clear();
}

let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', killAll);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(code);
    });
  }
}

/** Kill this pid when the test process ends, whichever way. */
export function trackChild(pid: number | undefined): void {
  if (!pid) return;
  hookExit();
  tracked.add(pid);
  ensureWatchdog().stdin?.write(`+${pid}\n`);
}

/** The child ended normally: forget it (its pid may be reused). */
export function untrackChild(pid: number | undefined): void {
  if (!pid) return;
  tracked.delete(pid);
  if (watchdog && watchdog.exitCode === null) watchdog.stdin?.write(`-${pid}\n`);
}

/** Pids currently tracked (for the helper's own test). */
export function trackedChildren(): number[] {
  return [...tracked];
}
