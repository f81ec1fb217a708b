// Every test that needs PostgreSQL gets its own database, created here with a unique name on the
// server at 127.0.0.1:5432 (or APIARY_TEST_PG_ADMIN_URL) and dropped by the caller (usually in
// `after`). Each database is tracked: one still there when the process exits is dropped then, and
// databases of test processes that died (SIGKILL) are dropped by the next run. No test depends on
// what else is on the server.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import pg from 'pg';

const ADMIN_URL = process.env.APIARY_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PREFIX = 'apiary_test_';
const tracked = new Set<string>();
let exitHookInstalled = false;
let staleSwept = false;

export interface TestPgDatabase {
  /** postgres:// URL of the new, empty database. */
  url: string;
  name: string;
  /** Drops the database (its open connections are ended first); safe to call twice. */
  drop(): Promise<void>;
}

function urlOf(database: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const dropSql = (name: string) => `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`;

/**
 * Why PostgreSQL tests cannot run here (nothing listens on the server's address), or undefined
 * when something listens. Only that case skips: a server that listens but refuses us is a failure.
 */
export async function pgSkipReason(): Promise<string | undefined> {
  const u = new URL(ADMIN_URL);
  const host = u.hostname;
  const port = Number(u.port || 5432);
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (err) => resolve(`PostgreSQL tests skipped: nothing listens on ${host}:${port} (${(err as NodeJS.ErrnoException).code}); start PostgreSQL 15+ there or set APIARY_TEST_PG_ADMIN_URL`));
  });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers cannot wait for a promise: a child process drops what this one still holds.
  process.once('exit', () => {
    if (tracked.size === 0) return;
    const names = [...tracked];
    const script = `import pg from ${JSON.stringify(import.meta.resolve('pg'))};
      const c = new pg.Client({ connectionString: ${JSON.stringify(ADMIN_URL)} });
      await c.connect();
      for (const n of ${JSON.stringify(names)}) await c.query(\`DROP DATABASE IF EXISTS "\${n}" WITH (FORCE)\`).catch(() => {});
      await c.end();`;
    spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore', timeout: 15_000 });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Drops test databases left by test processes that no longer run (killed before their cleanup). */
export function dropStaleTestDatabases(): Promise<void> {
  return admin(dropStale);
}

async function dropStale(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE '${PREFIX}%'`);
  for (const { datname } of rows) {
    const pid = Number(/^apiary_test_(\d+)_[0-9a-f]+$/.exec(datname)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) await client.query(dropSql(datname)).catch(() => undefined);
  }
}

/** A new empty database with a unique name (apiary_test_<pid>_<random>). */
export async function createTestPgDatabase(): Promise<TestPgDatabase> {
  installExitHook();
  const name = `${PREFIX}${process.pid}_${randomBytes(6).toString('hex')}`;
  await admin(async (client) => {
    if (!staleSwept) {
      staleSwept = true;
      await dropStale(client);
    }
    await client.query(`CREATE DATABASE "${name}"`);
  });
  tracked.add(name);
  let dropping: Promise<void> | undefined;
  return {
    url: urlOf(name),
    name,
    drop() {
      dropping ??= admin((client) => client.query(dropSql(name))).then(() => {
        tracked.delete(name);
      });
      return dropping;
    },
  };
}

/** Whether a database of that name exists (tests of the cleanup itself). */
export async function pgDatabaseExists(name: string): Promise<boolean> {
  return admin(async (client) => ((await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0);
}
