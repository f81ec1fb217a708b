// Starting worker threads that run this project's modules, both from the TypeScript sources (dev,
// tests: tsx) and from the compiled JavaScript (dist/ after `npm run build`).
//
// Node 20 does not apply the parent's tsx loader to a worker's entry module, so a .ts entry is
// started through a two-line bootstrap that registers tsx inside the worker first. Every module the
// worker then imports (including plug-in modules given by path) goes through tsx as well.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * URL of a module next to the caller, with the caller's own extension: `moduleBeside(import.meta.url,
 * 'writer-worker')` is writer-worker.ts under tsx and writer-worker.js once compiled.
 */
export function moduleBeside(callerUrl: string, name: string): URL {
  const ext = callerUrl.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, callerUrl);
}

/** Starts `moduleUrl` (a .ts or .js file URL) as a worker thread. */
export function spawnModuleWorker(moduleUrl: URL, opts: WorkerOptions = {}): Worker {
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, opts);
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsx)})` +
    `.then((m) => { m.register(); return import(${JSON.stringify(moduleUrl.href)}); })`;
  return new Worker(bootstrap, { ...opts, eval: true });
}

/**
 * Starts `moduleUrl` as a child process with an IPC channel that carries structured-clone data
 * ('advanced' serialisation). A process, unlike a thread, can be killed at once even while it is
 * inside a long native call (a SQLite statement).
 */
export function forkModule(moduleUrl: URL, args: string[] = []): ChildProcess {
  const execArgv = moduleUrl.pathname.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
  return fork(fileURLToPath(moduleUrl), args, { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}
