// The frame shared by the commands that work on the database directly (`apiary token`,
// `apiary authkey`): `<sub> [args] [--db PATH] [--help]`, usage errors answered with exit code 2,
// the database opened for the command and closed after it, whatever happens.
import { parseArgs, type ParseArgsConfig } from 'node:util';
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
  spec: { options: O; usage: string; defaultDbPath: string },
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
  try {
    return await run({ sub, values, positionals, database });
  } finally {
    database.close();
  }
}
