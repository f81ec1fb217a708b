// Opens the core's SQLite database and brings it to the current schema with the migrations in
// drizzle/. Everything that needs the database receives the returned handle; nothing opens its own.
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.js';

export * as tables from './schema.js';
export { ReadPool, QueryTimeoutError, PoolBusyError } from './read-pool.js';
export type { ReadPoolOptions, QueryModule, QueryModuleRef } from './read-pool.js';
export { moduleBeside, spawnModuleWorker } from './worker-spawn.js';
export { ChunkedSweep } from './chunked-sweep.js';
export { WalCheckpointer } from './wal-checkpointer.js';
export type { WalCheckpointerOptions } from './wal-checkpointer.js';
export { registerWalMetrics } from './wal-metrics.js';
// PostgreSQL (DATABASE_URL): schema, pool + migrations, day partitions of events.
export * as pgTables from './pg-schema.js';
export { inPgTransaction, openPgDatabase } from './pg.js';
export type { PgDatabaseHandle, PgDatabaseOptions, PgDb } from './pg.js';
export { EventPartitions, partitionName, partitionDay, dayOf, DAY_MS } from './pg-partitions.js';
export type { EventPartitionsOptions } from './pg-partitions.js';
export type { ChunkedSweepOptions } from './chunked-sweep.js';

export type Db = BetterSQLite3Database<typeof schema>;

export interface DatabaseHandle {
  /** drizzle query builder over the schema in ./schema.ts */
  db: Db;
  /** The raw better-sqlite3 connection, for prepared statements on hot paths. */
  sqlite: Database.Database;
  path: string;
  close(): void;
}

const migrationsFolder = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle');

/**
 * Opens (creating if needed) the SQLite file at `path` and applies pending migrations.
 * WAL + synchronous=NORMAL: a committed transaction survives a process crash, and readers
 * (API queries) never block the event writer.
 */
export function openDatabase(path: string, opts: { autoCheckpoint?: boolean } = {}): DatabaseHandle {
  if (path !== ':memory:') {
    mkdirSync(dirname(resolve(path)), { recursive: true, mode: 0o700 });
    // The file holds node TOTP and hpfeeds secrets: create it 0600 ourselves, SQLite would use
    // 0644. SQLite gives its -wal and -shm files the mode of the database file.
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  }
  const sqlite = new Database(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // With a WalCheckpointer running, this connection's commits never checkpoint on the event loop.
  if (opts.autoCheckpoint === false) sqlite.pragma('wal_autocheckpoint = 0');
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder });
  return {
    db,
    sqlite,
    path,
    close() {
      if (sqlite.open) sqlite.close();
    },
  };
}
