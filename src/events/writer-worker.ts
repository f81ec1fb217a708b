// Entry point of the event writer thread (see sqlite-store.ts). It owns the one connection that
// writes the events table: batch inserts, the batch hooks of other domains (store.ts describes that
// seam), and retention deletes, so none of that synchronous disk work runs on the main event loop.
// Messages are handled strictly in arrival order: batches commit in the order they were sent.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { slabColumns, type SlabColumns } from './batch-slab.js';
import { EventSideIndex, type DeletedEvent } from './side-index.js';
import type { StoredEvent } from './store.js';
import type { AppendRequest, WriterReply, WriterRequest, WriterWorkerData } from './sqlite-store.js';

type BatchHook = (db: Database.Database, batch: readonly StoredEvent[]) => void;

/** A hook module's optional exports for hooks that buffer across batches (store.ts describes them). */
interface HookModule {
  init?: (db: Database.Database, options?: unknown) => void;
  onEventBatch?: BatchHook;
  flush?: (db: Database.Database) => void;
  pending?: () => boolean;
  replayFrom?: (db: Database.Database, maxEventId: number) => number | null;
}

/** A buffering hook is flushed once no batch has arrived for this long. */
const IDLE_FLUSH_MS = 200;
/** Rows per multi-row INSERT (7 parameters each, well under SQLite's 32 766). */
const INSERT_ROWS = 32;
const REPLAY_CHUNK = 2000;

const config = workerData as WriterWorkerData;
const port = parentPort!;

/** A committed event as hooks see it; `data` is parsed on first use only. */
class StoredEventView implements StoredEvent {
  private parsed: Record<string, unknown> | undefined;
  constructor(
    readonly id: number,
    readonly node: string,
    readonly potId: string,
    readonly potType: string,
    readonly eventType: string,
    readonly timestamp: number,
    readonly receivedAt: number,
    readonly dataJson: string,
    readonly fromStatus: boolean,
  ) {}
  get data(): Record<string, unknown> {
    if (this.parsed === undefined) {
      try {
        const v: unknown = JSON.parse(this.dataJson);
        this.parsed = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
      } catch {
        this.parsed = { raw: this.dataJson };
      }
    }
    return this.parsed;
  }
}

/** SQLITE_BUSY and its extended codes: another connection holds a lock this one needs. */
function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function main(): Promise<void> {
  const db = new Database(config.dbPath, { fileMustExist: true });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${Math.floor(config.busyTimeoutMs)}`);
  db.pragma('foreign_keys = ON');
  // A multi-row INSERT keeps a statement journal (to undo just that statement); in a temp file it
  // cost more system time than the multi-row statement saved. It holds a few pages.
  db.pragma('temp_store = MEMORY');
  // Checkpoints inside this thread's commits stopped the writer for the copy and its fsyncs (5 to 25
  // ms, several times a second at 10k events/s); the core runs them in a thread of their own.
  if (config.walCheckpointer) db.pragma('wal_autocheckpoint = 0');

  const hooks: { name: string; fn: BatchHook; mod: HookModule }[] = [];
  for (const { url, options } of config.batchHooks) {
    const mod = (await import(url)) as HookModule;
    if (typeof mod.onEventBatch !== 'function') throw new Error(`batch hook module ${url} exports no onEventBatch(db, batch)`);
    mod.init?.(db, options);
    hooks.push({ name: url, fn: mod.onEventBatch, mod });
  }

  const insertSql = 'INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES ';
  // Text is bound as UTF-8 bytes (Buffers: copied as they are) and stored as TEXT by the CAST, which
  // takes a blob's bytes as text in the database's encoding (UTF-8). data comes from the slab as a
  // view: bound as a string it was decoded into a V8 string here, then measured and encoded back to
  // UTF-8 by the binding (~0.5 µs per event of the writer's time, for the same bytes). The four
  // names are encoded once, when the main thread sends them (~0.13 µs per event less).
  const text = 'CAST(? AS TEXT)';
  const row = `(${text}, ${text}, ${text}, ${text}, ?, ${text}, ?)`;
  const insert = db.prepare(insertSql + row);
  // Rows go in INSERT_ROWS at a time: one statement run instead of INSERT_ROWS (binding, VDBE
  // start-up and the AUTOINCREMENT sequence update are per statement): ~0.6 µs less per event.
  const insertMany = db.prepare(insertSql + new Array(INSERT_ROWS).fill(row).join(', '));
  const params: unknown[] = new Array(7 * INSERT_ROWS);
  // A nested db.transaction() is a SAVEPOINT: a throwing hook rolls back its own writes only.
  const runHook = db.transaction((fn: BatchHook, events: readonly StoredEvent[]) => fn(db, events));
  let hookFailures: { hook: string; error: string }[] = [];
  // Failures of flushes outside a batch (idle, replay) are reported with the next batch's reply.
  let laterFailures: { hook: string; error: string }[] = [];

  const flushHook = db.transaction((mod: HookModule) => mod.flush!(db));
  const flushHooks = (): void => {
    for (const hook of hooks) {
      if (hook.mod.flush === undefined || hook.mod.pending?.() === false) continue;
      try {
        flushHook(hook.mod);
      } catch (err) {
        laterFailures.push({ hook: hook.name, error: errorText(err) });
      }
    }
  };
  let idleTimer: NodeJS.Timeout | undefined;
  const scheduleIdleFlush = (): void => {
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    idleTimer = hooks.some((h) => h.mod.flush !== undefined && h.mod.pending?.() !== false) ? setTimeout(flushHooks, IDLE_FLUSH_MS) : undefined;
  };

  // Events committed after a buffering hook's last write (a crash lost its buffer) are fed to it
  // again, then flushed, before the writer takes new batches.
  const maxEventId = (db.prepare('SELECT coalesce(max(id), 0) FROM events').pluck().get() as number);
  const replaySelect = db.prepare(
    'SELECT id, node_name, pot_id, pot_type, event_type, timestamp, received_at, data FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?',
  );
  type ReplayRow = { id: number; node_name: string; pot_id: string; pot_type: string; event_type: string; timestamp: number; received_at: number; data: string };
  for (const hook of hooks) {
    let from = hook.mod.replayFrom?.(db, maxEventId) ?? null;
    if (from === null) continue;
    while (from < maxEventId) {
      const rows = replaySelect.all(from, maxEventId, REPLAY_CHUNK) as ReplayRow[];
      if (rows.length === 0) break;
      const batch = rows.map((r) => new StoredEventView(r.id, r.node_name, r.pot_id, r.pot_type, r.event_type, r.timestamp, r.received_at, r.data, false));
      try {
        runHook(hook.fn, batch);
      } catch (err) {
        laterFailures.push({ hook: hook.name, error: errorText(err) });
      }
      from = rows.at(-1)!.id;
    }
    flushHooks();
  }

  const side = startSideIndex(db, (error) => laterFailures.push({ hook: SIDE_INDEX_NAME, error }));

  // The main thread's string table for the name columns (see AppendRequest).
  let names: string[] = [];
  // The same names as UTF-8, for binding.
  let nameBytes: Buffer[] = [];
  // The main thread's batch slabs this thread has mapped (batch-slab.ts), by id.
  const slabs = new Map<number, SlabColumns>();
  const appendBatch = db.transaction((m: AppendRequest): Float64Array => {
    const n = m.count;
    const slab = slabs.get(m.slabId);
    if (slab === undefined) throw new Error(`batch slab ${m.slabId} was never described to this writer`);
    const ids = new Float64Array(n);
    const k = slab.nameIds;
    const off = slab.offsets;
    const bytes = slab.bytes;
    const timestamp = slab.timestamp;
    const receivedAt = slab.receivedAt;
    let i = 0;
    for (; i + INSERT_ROWS <= n; i += INSERT_ROWS) {
      for (let r = 0, p = 0; r < INSERT_ROWS; r++, p += 7) {
        const e = i + r;
        params[p] = nameBytes[k[4 * e]!];
        params[p + 1] = nameBytes[k[4 * e + 1]!];
        params[p + 2] = nameBytes[k[4 * e + 2]!];
        params[p + 3] = nameBytes[k[4 * e + 3]!];
        params[p + 4] = timestamp[e];
        params[p + 5] = bytes.subarray(off[e], off[e + 1]);
        params[p + 6] = receivedAt[e];
      }
      const res = insertMany.run(params);
      // One statement holding the write lock: its rows get consecutive AUTOINCREMENT ids.
      if (res.changes !== INSERT_ROWS) throw new Error(`multi-row insert changed ${res.changes} rows, not ${INSERT_ROWS}`);
      const first = Number(res.lastInsertRowid) - INSERT_ROWS + 1;
      for (let r = 0; r < INSERT_ROWS; r++) ids[i + r] = first + r;
    }
    for (; i < n; i++) {
      const data = bytes.subarray(off[i], off[i + 1]);
      ids[i] = Number(insert.run(nameBytes[k[4 * i]!], nameBytes[k[4 * i + 1]!], nameBytes[k[4 * i + 2]!], nameBytes[k[4 * i + 3]!], timestamp[i], data, receivedAt[i]).lastInsertRowid);
    }
    if (hooks.length > 0) {
      const events: StoredEvent[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const dataJson = bytes.toString('utf8', off[i], off[i + 1]);
        events[i] = new StoredEventView(ids[i]!, names[k[4 * i]!]!, names[k[4 * i + 1]!]!, names[k[4 * i + 2]!]!, names[k[4 * i + 3]!]!, timestamp[i]!, receivedAt[i]!, dataJson, slab.fromStatus[i] === 1);
      }
      for (const hook of hooks) {
        try {
          runHook(hook.fn, events);
        } catch (err) {
          hookFailures.push({ hook: hook.name, error: errorText(err) });
        }
      }
    }
    side.afterAppend(
      ids,
      (e) => names[k[4 * e]!]!,
      (e) => names[k[4 * e + 3]!]!,
    );
    return ids;
  });

  // received_at, not the node's timestamp: a node with a wrong clock must not get its events
  // deleted on arrival (or kept forever). Uses events_received_idx. RETURNING: the side tables'
  // rows of the deleted events go in the same transaction (retentionDelete).
  const deleteByAge = db.prepare(
    'DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < ? ORDER BY received_at LIMIT ?) RETURNING id, node_name, event_type',
  );
  // ids are AUTOINCREMENT (never reused) and retention only removes the oldest, so "the newest
  // maxRows ids" bounds the row count without a COUNT(*) scan.
  const deleteByRows = db.prepare(
    'DELETE FROM events WHERE id <= ? AND id < (SELECT coalesce(min(id), 0) FROM events) + ? RETURNING id, node_name, event_type',
  );
  const retentionDelete = sideIndexedDelete(db, side);
  const maxId = db.prepare('SELECT coalesce(max(id), 0) AS maxId FROM events');

  // SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20... ms between tries: a batch that met the WAL
  // checkpointer's brief write lock (its RESTART step, twice a second) waited 8 to 18 ms for a lock
  // held 2 or 3. Appends try again every half millisecond instead, within the same busy timeout.
  const busyOff = db.prepare('PRAGMA busy_timeout = 0');
  const busyOn = db.prepare(`PRAGMA busy_timeout = ${Math.floor(config.busyTimeoutMs)}`);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const appendRetrying = (m: AppendRequest): Float64Array => {
    const deadline = performance.now() + config.busyTimeoutMs;
    busyOff.get();
    try {
      for (;;) {
        try {
          return appendBatch(m);
        } catch (err) {
          if (!isBusy(err) || performance.now() >= deadline) throw err;
          Atomics.wait(nap, 0, 0, 0.5);
        }
      }
    } finally {
      busyOn.get();
    }
  };

  const handle = (m: WriterRequest): void => {
    let reply: WriterReply;
    switch (m.type) {
      case 'append': {
        hookFailures = laterFailures;
        laterFailures = [];
        // The table grows even if the batch then fails: the main thread counts these names as sent.
        if (m.resetNames) {
          names = [];
          nameBytes = [];
        }
        for (const name of m.names) {
          names.push(name);
          nameBytes.push(Buffer.from(name, 'utf8'));
        }
        for (const id of m.retired) slabs.delete(id);
        if (m.slab !== undefined) slabs.set(m.slab.id, slabColumns(m.slab));
        try {
          const started = performance.now();
          const ids = appendRetrying(m);
          reply = { type: 'appended', seq: m.seq, ids, seconds: (performance.now() - started) / 1000, hookFailures };
          port.postMessage(reply, [ids.buffer as ArrayBuffer]);
          scheduleIdleFlush();
          // A due side index catch-up runs in a transaction of its own once the batch that made it
          // due is answered, not in that batch's commit. Right away: deferred (setImmediate) it
          // waited behind every batch the main thread sent back to back, up to Node's 1000 messages
          // per port wake-up.
          if (side.catchUpDue) side.catchUpNow();
        } catch (err) {
          side.appendFailed();
          port.postMessage({ type: 'failed', seq: m.seq, error: errorText(err) } satisfies WriterReply);
        }
        return;
      }
      case 'retention': {
        try {
          let age = 0;
          let rows = 0;
          if (m.receivedBefore > 0) age = retentionDelete(deleteByAge, m.receivedBefore, m.limit);
          if (m.maxRows > 0 && age < m.limit) {
            const keepAbove = (maxId.get() as { maxId: number }).maxId - m.maxRows;
            if (keepAbove > 0) rows = retentionDelete(deleteByRows, keepAbove, m.limit - age);
          }
          reply = { type: 'retained', seq: m.seq, age, rows };
        } catch (err) {
          reply = { type: 'failed', seq: m.seq, error: errorText(err) };
        }
        port.postMessage(reply);
        return;
      }
      case 'close':
        if (idleTimer !== undefined) clearTimeout(idleTimer);
        flushHooks();
        side.close();
        db.close();
        port.postMessage({ type: 'closed', seq: m.seq } satisfies WriterReply);
        port.close();
        return;
    }
  };
  port.on('message', handle);
  port.postMessage({ type: 'ready', seq: 0 } satisfies WriterReply);
}

// Side index tables (side-index.ts): kept apart from the append and retention handlers above.
const SIDE_INDEX_NAME = 'events side index';

/** The side index of this writer: its catch-ups ride on appends, on idle and at close. */
function startSideIndex(db: Database.Database, onFailure: (error: string) => void): EventSideIndex {
  return new EventSideIndex(db, { ...config.sideIndex, onFailure });
}

/** A retention DELETE ... RETURNING id, node_name, event_type and the removal of its side rows, in one transaction. */
function sideIndexedDelete(db: Database.Database, side: EventSideIndex): (stmt: Database.Statement, ...params: unknown[]) => number {
  return db.transaction((stmt: Database.Statement, ...params: unknown[]) => {
    const deleted = stmt.all(...params) as DeletedEvent[];
    side.forget(deleted);
    return deleted.length;
  });
}

main().catch((err: unknown) => {
  port.postMessage({ type: 'startFailed', seq: 0, error: errorText(err) } satisfies WriterReply);
});
