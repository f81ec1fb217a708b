// `apiary user create|list|passwd|disable|enable`: console users, managed straight in the database
// (works whether or not the core is running; a running core ends the sessions of a user disabled or
// re-passworded here within a second, WebSockets included).
import { readFileSync } from 'node:fs';
import { roles, type Role } from '../api/index.js';
import { runDatabaseCommand, type CliIo, type CliTarget } from '../cli/database-command.js';
import { generatePassword } from './password.js';
import { SqliteUserStore } from './sqlite-store.js';
import type { UserStore } from './store.js';
import { PgUserStore } from './pg-store.js';
import { UserError, UserService } from './service.js';

const usage = `usage:
  apiary user create USERNAME --role admin|operator|viewer [--password-file FILE | --password-stdin]
  apiary user list
  apiary user passwd USERNAME [--password-file FILE | --password-stdin]
  apiary user disable USERNAME
  apiary user enable USERNAME
The password is the first line of FILE or of standard input; without either, a random one is
generated and printed once. Passwords need at least 12 characters.
common: --db PATH (default: $APIARY_DB or <data-dir>/apiary.sqlite)`;

const options = { role: { type: 'string' }, 'password-file': { type: 'string' }, 'password-stdin': { type: 'boolean' } } as const;

export interface UserCliIo extends CliIo {
  stdin?: NodeJS.ReadableStream;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    // A password is one line; nothing after it is needed.
    if (text.includes('\n') || text.length > 64 * 1024) break;
  }
  return text;
}

const firstLine = (text: string) => text.split(/\r?\n/)[0] ?? '';

export async function runUserCli(argv: string[], io: UserCliIo, target: CliTarget): Promise<number> {
  return runDatabaseCommand(argv, { options, usage, target, store: { sqlite: (d): UserStore => new SqliteUserStore(d), pg: (d) => new PgUserStore(d) }, audit: { command: 'user', readOnly: ['list'] } }, io, async ({ sub, values, positionals, store }) => {
    // Session lifetimes do not matter to these commands: they only end sessions.
    const users = new UserService({ store, idleMs: 60_000, maxAgeMs: 60_000 });
    /** The password given by --password-file or --password-stdin, null when none was, or an exit code. */
    const givenPassword = async (): Promise<string | null | number> => {
      if (values['password-file'] !== undefined && values['password-stdin']) {
        io.stderr.write(`give --password-file or --password-stdin, not both\n${usage}\n`);
        return 2;
      }
      if (values['password-file'] !== undefined) {
        try {
          return firstLine(readFileSync(values['password-file'], 'utf8'));
        } catch (err) {
          io.stderr.write(`cannot read --password-file: ${(err as Error).message}\n`);
          return 1;
        }
      }
      if (values['password-stdin']) {
        if (!io.stdin) {
          io.stderr.write('no standard input to read the password from\n');
          return 1;
        }
        return firstLine(await readAll(io.stdin));
      }
      return null;
    };
    const named = (verb: string) => {
      const username = positionals[0];
      if (!username) {
        io.stderr.write(`${verb} needs a USERNAME\n${usage}\n`);
        return undefined;
      }
      return username;
    };
    try {
      switch (sub) {
        case 'create': {
          const username = named('create');
          if (!username) return 2;
          const role = values.role as Role | undefined;
          if (!role || !roles.includes(role)) {
            io.stderr.write(`--role must be one of ${roles.join(', ')}\n${usage}\n`);
            return 2;
          }
          const password = await givenPassword();
          if (typeof password === 'number') return password;
          const { user, generatedPassword } = await users.create(username, role, password ?? undefined);
          io.stdout.write(`id: ${user.id}\nusername: ${user.username}\nrole: ${user.role}\n`);
          if (generatedPassword) io.stdout.write(`password: ${generatedPassword}\n(shown once; store it now)\n`);
          return 0;
        }
        case 'list': {
          io.stdout.write('ID\tUSERNAME\tROLE\tCREATED\tLAST LOGIN\tDISABLED\n');
          const iso = (t: number | null) => (t ? new Date(t).toISOString() : '-');
          for (const u of await users.list()) io.stdout.write(`${[u.id, u.username, u.role, iso(u.createdAt), iso(u.lastLoginAt), iso(u.disabledAt)].join('\t')}\n`);
          return 0;
        }
        case 'passwd':
        case 'disable':
        case 'enable': {
          const username = named(sub);
          if (!username) return 2;
          const user = await users.byName(username);
          if (!user) {
            io.stderr.write(`no user ${username}\n`);
            return 1;
          }
          if (sub === 'passwd') {
            const password = await givenPassword();
            if (typeof password === 'number') return password;
            const generated = password === null;
            const next = password ?? generatePassword();
            await users.update(user.id, { password: next });
            io.stdout.write(`password of ${user.username} changed; their sessions have ended\n`);
            if (generated) io.stdout.write(`password: ${next}\n(shown once; store it now)\n`);
          } else {
            await users.update(user.id, { disabled: sub === 'disable' });
            io.stdout.write(sub === 'disable' ? `disabled ${user.username}; their sessions have ended\n` : `enabled ${user.username}\n`);
          }
          return 0;
        }
        default:
          io.stderr.write(`unknown user command '${sub}'\n${usage}\n`);
          return 2;
      }
    } catch (err) {
      if (err instanceof UserError) {
        io.stderr.write(`${err.message}\n`);
        return err.code === 'bad_request' ? 2 : 1;
      }
      throw err;
    }
  });
}
