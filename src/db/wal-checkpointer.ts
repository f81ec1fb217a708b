import type { Worker } from 'node:worker_threads';
import { moduleBeside, spawnModuleWorker } from './worker-spawn.js';

/** @internal what the checkpointer thread is started with. */
export interface CheckpointWorkerData {
  dbPath: string;
}

/** @internal one run of the checkpointer thread. */
export interface CheckpointReport {
  /** Frames copied into the database file by this run. */
  frames: number;
  /** Frames in the WAL after the run (0 once a writer restarted it). */
  walFrames: number;
  /** The restart could not be had this time: the writer was in a transaction or a reader used the WAL. */
  busy: boolean;
  ms: number;
}

export interface WalCheckpointerOptions {
  dbPath: string;
  /** How often committed frames are copied back. Default 500 ms. */
  intervalMs?: number;
  onReport?: (report: CheckpointReport) => void;
  onError?: (message: string) => void;
}

const WORKER_URL = moduleBeside(import.meta.url, 'wal-checkpoint-worker');

/**
 * Checkpoints the SQLite WAL from a thread of its own. With SQLite's default (a checkpoint every
 * 1000 frames, run by whichever connection commits) the events writer stopped for the copy and its
 * fsyncs several times a second (commits of 5 to 25 ms at 10k events/s), and a write on the main
 * thread could do the same on the event loop. Connections that commit set wal_autocheckpoint = 0
 * (openDatabase's `autoCheckpoint: false`, the events writer's `walCheckpointer` flag); this thread
 * copies the frames back twice a second, holding the write lock only for the last few commits' pages
 * (see wal-checkpoint-worker.ts), and restarts the WAL so that the file stays small.
 */
export class WalCheckpointer {
  private worker!: Worker;
  private readonly timer: NodeJS.Timeout;
  private running = false;
  private closed = false;
  private started!: () => void;
  /** Resolves once the thread has its connection (tests wait for it). */
  readonly ready = new Promise<void>((resolve) => (this.started = resolve));
  /** Totals since start: pages copied back, runs, runs that could not restart the WAL; its size after the last. */
  readonly totals = { frames: 0, runs: 0, busyRuns: 0, walFrames: 0 };

  constructor(private readonly opts: WalCheckpointerOptions) {
    this.start();
    this.timer = setInterval(() => this.run(), Math.max(10, opts.intervalMs ?? 500));
    this.timer.unref();
  }

  private start(): void {
    const data: CheckpointWorkerData = { dbPath: this.opts.dbPath };
    const worker = spawnModuleWorker(WORKER_URL, { workerData: data });
    this.worker = worker;
    worker.unref();
    worker.on('message', (m: CheckpointReport | { error: string } | { ready: true }) => {
      if ('ready' in m) {
        this.started();
        return;
      }
      this.running = false;
      if ('error' in m) {
        this.opts.onError?.(m.error);
        return;
      }
      this.totals.frames += m.frames;
      this.totals.runs++;
      if (m.busy) this.totals.busyRuns++;
      this.totals.walFrames = m.walFrames;
      this.opts.onReport?.(m);
    });
    worker.on('error', (err) => this.opts.onError?.(err.message));
    // Every committing connection relies on this thread: without it the WAL would grow for ever.
    worker.on('exit', () => {
      if (this.closed || this.worker !== worker) return;
      this.opts.onError?.('WAL checkpointer thread exited; restarting it');
      this.running = false;
      setTimeout(() => this.closed || this.start(), 1000).unref();
    });
  }

  /** Asks for a run now (one at a time: a run still going makes this a no-op). */
  run(): void {
    if (this.running || this.closed) return;
    this.running = true;
    this.worker.postMessage({ type: 'run' });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    // Kept alive until the thread has closed its connection (it is unref'd while it runs).
    this.worker.ref();
    this.worker.postMessage({ type: 'close' });
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 5000).unref());
    await Promise.race([exited, timeout]);
    await this.worker.terminate().catch(() => undefined);
  }
}
