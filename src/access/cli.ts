// `apiary token create|list|revoke`: operator API tokens, managed straight in the database (works
// whether or not the core is running).
import { roles, type Role } from '../api/index.js';
import { runDatabaseCommand, type CliIo, type CliTarget } from '../cli/database-command.js';
import { SqliteTokenStore } from './sqlite-store.js';
import type { TokenStore } from './store.js';
import { PgTokenStore } from './pg-store.js';
import { TokenService } from './tokens.js';

const usage = `usage:
  apiary token create --role admin|operator|viewer [--name NAME]
  apiary token list
  apiary token revoke ID
common: --db PATH (default: $APIARY_DB or <data-dir>/apiary.sqlite)`;

const options = { role: { type: 'string' }, name: { type: 'string' } } as const;

export async function runTokenCli(argv: string[], io: CliIo, target: CliTarget): Promise<number> {
  return runDatabaseCommand(argv, { options, usage, target, store: { sqlite: (d): TokenStore => new SqliteTokenStore(d), pg: (d) => new PgTokenStore(d) }, audit: { command: 'token', readOnly: ['list'] } }, io, async ({ sub, values, positionals, store }) => {
    const tokens = new TokenService(store);
    switch (sub) {
      case 'create': {
        const role = values.role as Role | undefined;
        if (!role || !roles.includes(role)) {
          io.stderr.write(`--role must be one of ${roles.join(', ')}\n${usage}\n`);
          return 2;
        }
        const created = await tokens.create(values.name ?? `${role}-token`, role);
        io.stdout.write(`id: ${created.id}\nrole: ${created.role}\ntoken: ${created.token}\n(shown once; store it now)\n`);
        return 0;
      }
      case 'list': {
        io.stdout.write('ID\tNAME\tROLE\tCREATED\tLAST USED\tREVOKED\n');
        const iso = (t: number | null) => (t ? new Date(t).toISOString() : '-');
        for (const t of await tokens.list()) {
          io.stdout.write(`${[t.id, t.name, t.role, iso(t.createdAt), iso(t.lastUsedAt), iso(t.revokedAt)].join('\t')}\n`);
        }
        return 0;
      }
      case 'revoke': {
        const id = positionals[0];
        if (!id) {
          io.stderr.write(`revoke needs an ID\n${usage}\n`);
          return 2;
        }
        if (!(await tokens.revoke(id))) {
          io.stderr.write(`no active token ${id}\n`);
          return 1;
        }
        io.stdout.write(`revoked ${id}\n`);
        return 0;
      }
      default:
        io.stderr.write(`unknown token command '${sub}'\n${usage}\n`);
        return 2;
    }
  });
}
