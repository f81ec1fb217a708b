// The frame shared by the commands that work on the database directly (`apiary token`,
// `apiary user`, `apiary authkey`): `<sub> [args] [--db PATH] [--help]`, usage errors answered with
// exit code 2, the database opened for the command and closed after it, whatever happens. The
// database is the one `serve` uses: PostgreSQL when DATABASE_URL is set (unless --db names a SQLite
// file), else the SQLite file; each command names its store on either and gets the right one.
import { userInfo } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { maskedChanges, PgAuditStore, SqliteAuditStore, type AuditStore } from '../audit/index.js';
import { openDatabase, openPgDatabase, type DatabaseHandle, type PgDatabaseHandle } from '../db/index.js';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
const common = { db: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;
type Parsed<O extends OptionsConfig> = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: O & typeof common }>>;

/** Where the command works: a SQLite file path, or the database settings of `serve`. */
export type CliTarget = string | { dbPath: string; databaseUrl?: string };

/** A domain's store on either database; the command builds the one its target names. */
export interface StoreOn<S> {
  sqlite(database: DatabaseHandle): S;
  pg(database: PgDatabaseHandle): S;
}

export interface DatabaseCommand<O extends OptionsConfig, S> {
  sub: string;
  values: Parsed<O>['values'];
  positionals: string[];
  store: S;
}

interface OpenedDatabase {
  storeOf<S>(on: StoreOn<S>): S;
  close(): Promise<void>;
}

async function openTarget(target: CliTarget, dbFlag: string | undefined): Promise<OpenedDatabase> {
  const url = typeof target === 'string' || dbFlag !== undefined ? undefined : target.databaseUrl;
  if (url !== undefined) {
    const database = await openPgDatabase(url, { max: 2 });
    return { storeOf: (on) => on.pg(database), close: () => database.close() };
  }
  const database = openDatabase(dbFlag ?? (typeof target === 'string' ? target : target.dbPath));
  return {
    storeOf: (on) => on.sqlite(database),
    async close() {
      database.close();
    },
  };
}

const auditStoreOn: StoreOn<AuditStore> = { sqlite: (d) => new SqliteAuditStore(d), pg: (d) => new PgAuditStore(d) };

export async function runDatabaseCommand<O extends OptionsConfig, S>(
  argv: string[],
  spec: {
    options: O;
    usage: string;
    target: CliTarget;
    store: StoreOn<S>;
    /** Changes made by this command go to the audit log, like those made through the API. */
    audit?: { command: string; readOnly: readonly string[] };
  },
  io: CliIo,
  run: (cmd: DatabaseCommand<O, S>) => number | Promise<number>,
): Promise<number> {
  const [sub, ...rest] = argv;
  // `apiary token --help`, `apiary authkey -h`: help, not an unknown subcommand.
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(`${spec.usage}\n`);
    return 0;
  }
  if (sub?.startsWith('-')) {
    io.stderr.write(`expected a subcommand before ${sub}\n${spec.usage}\n`);
    return 2;
  }
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, options: { ...spec.options, ...common } });
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n${spec.usage}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  // The generic `values` hides the common options from the type checker; they are always there.
  const { db, help } = values as { db?: string; help?: boolean };
  if (!sub) {
    io.stderr.write(`${spec.usage}\n`);
    return 2;
  }
  if (help) {
    io.stdout.write(`${spec.usage}\n`);
    return 0;
  }
  let database: OpenedDatabase;
  try {
    database = await openTarget(spec.target, db);
  } catch (err) {
    // The URL may carry a password: the message of a failed connection does not.
    io.stderr.write(`cannot open the database: ${(err as Error).message}\n`);
    return 1;
  }
  let status = 1;
  try {
    status = await run({ sub, values, positionals, store: database.storeOf(spec.store) });
    return status;
  } finally {
    if (spec.audit && !spec.audit.readOnly.includes(sub)) await recordCliAction(database.storeOf(auditStoreOn), spec.audit.command, sub, values, positionals, status);
    await database.close();
  }
}

/** The local user name, or undefined where the platform cannot say. */
function localUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

/**
 * An audit entry for a CLI change: actor `cli:<local user>`, source `local`, action
 * `cli.<command>.<sub>`, method `CLI`, status the exit code, the options with secrets masked.
 */
async function recordCliAction(audit: AuditStore, command: string, sub: string, values: object, positionals: string[], status: number): Promise<void> {
  const { db: _db, help: _help, ...options } = values as Record<string, unknown>;
  const user = localUser();
  try {
    await audit.append({
      at: Date.now(),
      actorId: null,
      actorName: `cli:${user ?? 'unknown'}`,
      actorRole: null,
      actorKind: 'cli',
      source: 'local',
      action: `cli.${command}.${sub}`,
      method: 'CLI',
      route: `apiary ${command} ${sub}`,
      target: positionals[0] ?? (typeof options.name === 'string' ? options.name : null),
      status,
      changes: maskedChanges({ ...options, ...(positionals.length ? { args: positionals } : {}) }),
    });
  } catch {
    // The change itself is done; an audit write that fails must not turn it into an error.
  }
}
