// The WAL checkpointer thread: committing connections (autoCheckpoint off) never checkpoint, the
// thread copies their pages back and gets the WAL restarted under steady writes, and a reader holding
// an old snapshot neither blocks the writer nor loses its view.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { openDatabase, WalCheckpointer, type DatabaseHandle } from '../../src/db/index.js';
import { until } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';

const ROW = Buffer.alloc(3000, 7);
const PAGE = 4096;

/** Commits small transactions for `ms`, yielding between them; returns the largest WAL seen and the slowest commit. */
async function writeFor(db: DatabaseHandle, ms: number): Promise<{ maxWalBytes: number; commits: number; slowestMs: number }> {
  const insert = db.sqlite.prepare('INSERT INTO wal_test (payload) VALUES (?)');
  const commit = db.sqlite.transaction(() => {
    for (let i = 0; i < 8; i++) insert.run(ROW);
  });
  const wal = `${db.path}-wal`;
  let maxWalBytes = 0;
  let commits = 0;
  let slowestMs = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = performance.now();
    commit();
    slowestMs = Math.max(slowestMs, performance.now() - t0);
    commits++;
    if (existsSync(wal)) maxWalBytes = Math.max(maxWalBytes, statSync(wal).size);
    await sleep(2);
  }
  return { maxWalBytes, commits, slowestMs };
}

function open(dir: string): DatabaseHandle {
  const db = openDatabase(`${dir}/core.db`, { autoCheckpoint: false });
  db.sqlite.exec('CREATE TABLE IF NOT EXISTS wal_test (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)');
  return db;
}

describe('WAL checkpointer', () => {
  const dirs: { cleanup(): void }[] = [];
  after(() => dirs.forEach((d) => d.cleanup()));

  it('without it, a connection with autoCheckpoint off lets the WAL grow with every commit', async () => {
    const dir = tempDir('apiary-wal-');
    dirs.push(dir);
    const db = open(dir.path);
    const r = await writeFor(db, 600);
    // Every commit appended at least its 8 rows' pages: nothing was copied back or restarted.
    assert.ok(r.maxWalBytes >= r.commits * 8 * (ROW.length / PAGE) * PAGE * 0.9, `WAL ${r.maxWalBytes} bytes after ${r.commits} commits`);
    db.close();
  });

  it('copies committed pages back and keeps the WAL small under steady writes; no row is lost', async () => {
    const dir = tempDir('apiary-wal-');
    dirs.push(dir);
    const db = open(dir.path);
    const checkpointer = new WalCheckpointer({ dbPath: db.path, intervalMs: 25 });
    await checkpointer.ready;
    const r = await writeFor(db, 1500);
    await sleep(100);
    await checkpointer.close();
    const written = r.commits * 8 * ROW.length;
    assert.ok(checkpointer.totals.runs >= 20, `runs ${checkpointer.totals.runs}`);
    assert.ok(checkpointer.totals.frames * PAGE >= written * 0.5, `copied ${checkpointer.totals.frames} pages of ${written} bytes written`);
    // Restarted over and over: the file holds a few runs' worth of commits, not the whole stream.
    assert.ok(r.maxWalBytes < written / 4, `WAL reached ${r.maxWalBytes} bytes of ${written} written`);
    db.close();
    const check = new Database(`${dir.path}/core.db`, { readonly: true });
    assert.equal((check.prepare('SELECT count(*) AS n FROM wal_test').get() as { n: number }).n, r.commits * 8);
    check.close();
  });

  it('a reader holding an old snapshot keeps it, the writer is never blocked, and the WAL restarts once it is gone', async () => {
    const dir = tempDir('apiary-wal-');
    dirs.push(dir);
    const db = open(dir.path);
    await writeFor(db, 100);
    const reader = new Database(db.path, { readonly: true });
    reader.exec('BEGIN');
    const seen = (reader.prepare('SELECT count(*) AS n FROM wal_test').get() as { n: number }).n;
    const checkpointer = new WalCheckpointer({ dbPath: db.path, intervalMs: 20 });
    await checkpointer.ready;
    const held = await writeFor(db, 800);
    // The reader's snapshot is unchanged, the checkpointer could not restart the WAL under it, and
    // no commit waited on the checkpointer's lock for long.
    assert.equal((reader.prepare('SELECT count(*) AS n FROM wal_test').get() as { n: number }).n, seen);
    assert.ok(checkpointer.totals.busyRuns > 0, `busy runs ${checkpointer.totals.busyRuns}`);
    assert.ok(held.slowestMs < 250, `slowest commit ${held.slowestMs} ms`);
    const walWithReader = held.maxWalBytes;
    reader.exec('COMMIT');
    reader.close();
    // The first run after the reader left copies back the whole held WAL before it can restart it;
    // writes during that copy would append past the end. Wait (idle) for a run that restarted it:
    // a fixed 100 ms was not always enough on a loaded CI machine.
    const left = { runs: checkpointer.totals.runs, busy: checkpointer.totals.busyRuns };
    const t = checkpointer.totals;
    await until(() => t.runs > left.runs && t.busyRuns - left.busy < t.runs - left.runs, 15_000, 'a checkpointer run that restarted the WAL after the reader left (a run that was not busy)');
    const released = await writeFor(db, 600);
    await checkpointer.close();
    const written = released.commits * 8 * ROW.length;
    // Once the reader is gone the WAL is restarted and reused from its beginning: it no longer grows.
    assert.ok(statSync(`${db.path}-wal`).size <= Math.max(walWithReader, written / 4) + 64 * PAGE, 'WAL kept growing after the reader left');
    assert.ok(checkpointer.totals.walFrames * PAGE < written / 2, `WAL holds ${checkpointer.totals.walFrames} pages after the last run`);
    db.close();
  });
});
