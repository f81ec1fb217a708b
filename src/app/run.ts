// `apiary serve` as a process: signals, the npm parent that may vanish, and the graceful stop of
// the core that buildCore (src/app.ts) composes.
import { buildCore } from '../app.js';
import type { Config } from '../config/index.js';
import { stopPretenuring, tuneScavenges } from './gc-tuning.js';

/**
 * `apiary serve`: runs until SIGINT/SIGTERM (or SIGHUP: the terminal went away), then stops
 * gracefully. Returns the exit code. The handlers are installed before anything starts, so a
 * signal during startup also ends in a clean stop (of whatever had started) instead of leaving a
 * redis-server behind; a second signal forces the exit.
 */
export async function runCore(config: Config): Promise<number> {
  tuneScavenges();
  stopPretenuring();
  let signalled: ((signal: string) => void) | undefined;
  const pending: string[] = [];
  const onSignal = (signal: NodeJS.Signals) => {
    if (pending.length > 0) {
      // The private redis-server is stopped by the supervisor's exit hook.
      process.stderr.write(`apiary: ${signal} again; exiting without waiting for the graceful stop\n`);
      process.exit(130);
    }
    pending.push(signal);
    signalled?.(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  // Under `npm start` / `npx apiary serve` the process systemd, compose or a shell signals is npm,
  // and npm exits on SIGTERM without passing it on: the core would run on, orphaned, with its ports
  // and its Redis. So when npm started us, npm going away counts as SIGTERM.
  // (Ctrl-C reaches npm and the core together: npm's exit then is not a second signal.)
  const parentWatch = watchNpmParent((npmPid) => {
    if (pending.length > 0) return;
    process.stderr.write(`apiary: npm (pid ${npmPid}) has exited; stopping as if sent SIGTERM\n`);
    onSignal('SIGTERM');
  });
  try {
    const core = await buildCore(config);
    const signal = await new Promise<string>((resolve) => {
      if (pending.length > 0) resolve(pending[0]!);
      else signalled = resolve;
    });
    core.app.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      core.app.log.error('shutdown took longer than 25 s; exiting');
      process.exit(1);
    }, 25_000);
    force.unref();
    await core.close();
    clearTimeout(force);
    core.app.log.info('stopped');
    return 0;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    clearInterval(parentWatch);
  }
}

/** Calls `onGone` once if this process was started by npm and its parent process has changed. */
function watchNpmParent(onGone: (npmPid: number) => void): NodeJS.Timeout | undefined {
  if (!process.env.npm_command && !process.env.npm_lifecycle_event) return undefined;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone(parent);
  }, 250);
  timer.unref();
  return timer;
}
