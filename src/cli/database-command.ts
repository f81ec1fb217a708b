// The frame shared by the commands that work on the database directly (`apiary token`,
// `apiary authkey`): `<sub> [args] [--db PATH] [--help]`, usage errors answered with exit code 2,
// the database opened for the command and closed after it, whatever happens.
import { userInfo } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { maskedChanges, SqliteAuditStore } from '../audit/index.js';
import { openDatabase, type DatabaseHandle } from '../db/index.js';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
const common = { db: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;
type Parsed<O extends OptionsConfig> = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: O & typeof common }>>;

export interface DatabaseCommand<O extends OptionsConfig> {
  sub: string;
  values: Parsed<O>['values'];
  positionals: string[];
  database: DatabaseHandle;
}

export async function runDatabaseCommand<O extends OptionsConfig>(
  argv: string[],
  spec: {
    options: O;
    usage: string;
    defaultDbPath: string;
    /** Changes made by this command go to the audit log, like those made through the API. */
    audit?: { command: string; readOnly: readonly string[] };
  },
  io: CliIo,
  run: (cmd: DatabaseCommand<O>) => number | Promise<number>,
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
  const database = openDatabase(db ?? spec.defaultDbPath);
  let status = 1;
  try {
    status = await run({ sub, values, positionals, database });
    return status;
  } finally {
    if (spec.audit && !spec.audit.readOnly.includes(sub)) await recordCliAction(database, spec.audit.command, sub, values, positionals, status);
    database.close();
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
async function recordCliAction(database: DatabaseHandle, command: string, sub: string, values: object, positionals: string[], status: number): Promise<void> {
  const { db: _db, help: _help, ...options } = values as Record<string, unknown>;
  const user = localUser();
  try {
    await new SqliteAuditStore(database).append({
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
