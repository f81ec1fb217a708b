// Runs the `apiary` command as a user does: a separate process, bounded, killed with the test
// process however it ends.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trackChild, untrackChild } from '../helpers/children.js';

/** The entry point a user runs: the compiled CLI after `npm run build` (npm test builds first), else the sources. */
export const MAIN = fileURLToPath(new URL('../../bin/apiary.js', import.meta.url));
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `apiary <args>` to completion (bounded); `input` is written to its standard input. */
export function apiary(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000, input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'silent', ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    trackChild(child.pid);
    if (input !== undefined) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`apiary ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      untrackChild(child.pid);
      resolve({ code, stdout, stderr });
    });
  });
}
