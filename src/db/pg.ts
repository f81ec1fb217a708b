// Opens the core's PostgreSQL database (DATABASE_URL=postgres://…) and brings it to the current
// schema with the migrations in drizzle/pg/. The PostgreSQL counterpart of openDatabase() in
// index.ts: stores of the domains that run on PostgreSQL receive the returned handle.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as pgSchema from './pg-schema.js';

export type PgDb = NodePgDatabase<typeof pgSchema>;

export interface PgDatabaseHandle {
  /** drizzle query builder over the schema in ./pg-schema.ts */
  db: PgDb;
  /** The connection pool, for hand-written SQL on hot paths. */
  pool: pg.Pool;
  /** Ends the pool once the queries in flight are done; safe to call twice. */
  close(): Promise<void>;
}

export interface PgDatabaseOptions {
  /** Pool size. Default 10. */
  max?: number;
  /** Called with errors of idle pooled connections (server restart, network), which pg emits on the pool. */
  onIdleError?: (err: Error) => void;
}

const migrationsFolder = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle/pg');
/** pg_advisory_lock key of migrations: several cores starting together migrate one at a time. */
const MIGRATION_LOCK = 0x61706d67; // 'apmg'

const INT8_OID = 20;
/**
 * bigint columns (epoch ms, ids, counters) are read as numbers, as from SQLite, instead of pg's
 * default strings. A value past 2^53 would lose digits: refused loudly instead.
 */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${text} does not fit a JavaScript number`);
  return n;
}
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Runs `work` in one transaction on a pooled connection: COMMIT when it resolves, ROLLBACK when it
 * throws (the error is passed on). A connection that cannot even roll back is not given back to
 * the pool. The stores of every domain share this instead of each writing BEGIN/COMMIT again.
 */
export async function inPgTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await work(client);
    await client.query('COMMIT');
    client.release();
    return out;
  } catch (err) {
    const broken = await client.query('ROLLBACK').then(
      () => undefined,
      (e: Error) => e,
    );
    client.release(broken);
    throw err;
  }
}

/**
 * Connects a pool to `url` and applies pending migrations (under an advisory lock, so concurrent
 * starts do not race), then returns the handle. Rejects, with the pool closed, when the server is
 * unreachable or a migration fails.
 */
export async function openPgDatabase(url: string, opts: PgDatabaseOptions = {}): Promise<PgDatabaseHandle> {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, types, application_name: 'apiary' });
  pool.on('error', (err) => opts.onIdleError?.(err));
  try {
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        await migrate(drizzle(client), { migrationsFolder });
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      }
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    db: drizzle(pool, { schema: pgSchema }),
    pool,
    close() {
      closing ??= pool.end();
      return closing;
    },
  };
}
