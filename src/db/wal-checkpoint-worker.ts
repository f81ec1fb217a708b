// Entry point of the WAL checkpointer thread (see wal-checkpointer.ts): its own connection copies
// committed WAL frames back into the database file, so no connection that commits (the events
// writer, the main thread) ever pays for a checkpoint inside its commit.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CheckpointReport, CheckpointWorkerData } from './wal-checkpointer.js';

const config = workerData as CheckpointWorkerData;
const port = parentPort!;
const db = new Database(config.dbPath, { fileMustExist: true });
// Never waits for a lock: a checkpoint that would have to wait does what it can without it (see run).
db.pragma('busy_timeout = 0');
db.pragma('wal_autocheckpoint = 0');

type Result = { busy: number; log: number; checkpointed: number };
const checkpoint = (mode: 'PASSIVE' | 'RESTART'): Result => (db.pragma(`wal_checkpoint(${mode})`) as Result[])[0]!;
/** The WAL as the previous run left it, to count the pages this run copied. */
let last = { log: 0, checkpointed: 0, restartable: false };

function run(): void {
  const started = performance.now();
  // 1. The bulk of the copy, holding no lock a writer or reader needs.
  checkpoint('PASSIVE');
  // 2. What was committed meanwhile, holding the write lock for that short copy, and the WAL
  //    restarted from its beginning (the writer reuses the file instead of appending forever).
  //    Passive passes alone never got there under steady writes: a writer restarts the WAL only
  //    when its transaction begins with every frame already copied back. Without a busy handler
  //    this gives up at once, as if it were passive, when the writer is in a transaction or a
  //    reader still uses the WAL; the next run tries again.
  const r = checkpoint('RESTART');
  const unchanged = r.log === last.log && r.checkpointed === last.checkpointed;
  // After a restart the counts start again from the beginning of the file.
  const fromZero = last.restartable || r.log < last.log;
  const frames = unchanged ? 0 : Math.max(0, fromZero ? r.checkpointed : r.checkpointed - last.checkpointed);
  last = { log: Math.max(0, r.log), checkpointed: Math.max(0, r.checkpointed), restartable: r.busy === 0 && r.log === r.checkpointed };
  const report: CheckpointReport = { frames, walFrames: Math.max(0, r.log), busy: r.busy === 1, ms: performance.now() - started };
  port.postMessage(report);
}

port.postMessage({ ready: true });
port.on('message', (m: { type: 'run' | 'close' }) => {
  if (m.type === 'close') {
    db.close();
    port.close();
    return;
  }
  try {
    run();
  } catch (err) {
    port.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
});
