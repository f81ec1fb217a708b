// `apiary authkey add|list|rm|import`: manage hpfeeds credentials in the core's database. A running
// core notices the change within a second and re-checks live connections of that ident.
import { readFileSync } from 'node:fs';
import { ZodError } from 'zod';
import { runDatabaseCommand, type CliIo, type CliTarget } from '../cli/database-command.js';
import { AuthkeyService } from './service.js';
import { SqliteAuthkeyStore } from './sqlite-store.js';
import type { AuthkeyStore } from './store.js';
import { PgAuthkeyStore } from './pg-store.js';

const usage = `usage:
  apiary authkey add IDENT [--owner NAME] [--secret S] [--pub CHAN]... [--sub CHAN]...
  apiary authkey list
  apiary authkey rm IDENT
  apiary authkey rotate IDENT
  apiary authkey import FILE     (reference broker JSON: {"ident":{"owner","secret","pubchans","subchans"}})
common: --db PATH (default: $APIARY_DB or <data-dir>/apiary.sqlite)`;

const options = {
  owner: { type: 'string' },
  secret: { type: 'string' },
  pub: { type: 'string', multiple: true },
  sub: { type: 'string', multiple: true },
} as const;

export async function runAuthkeyCli(argv: string[], io: CliIo, target: CliTarget): Promise<number> {
  return runDatabaseCommand(argv, { options, usage, target, store: { sqlite: (d): AuthkeyStore => new SqliteAuthkeyStore(d), pg: (d) => new PgAuthkeyStore(d) }, audit: { command: 'authkey', readOnly: ['list'] } }, io, async ({ sub, values, positionals, store }) => {
    const keys = new AuthkeyService({ store });
    try {
      switch (sub) {
        case 'add': {
          const ident = positionals[0];
          if (!ident) throw new UsageError('add needs an IDENT');
          const key = await keys.put({ ident, owner: values.owner, secret: values.secret, pubchans: values.pub ?? [], subchans: values.sub ?? [] });
          io.stdout.write(`ident: ${key.ident}\nsecret: ${key.secret}\npubchans: ${key.pubchans.join(',')}\nsubchans: ${key.subchans.join(',')}\n`);
          return 0;
        }
        case 'list': {
          const rows = await keys.list();
          io.stdout.write(`${['IDENT', 'OWNER', 'PUBCHANS', 'SUBCHANS'].join('\t')}\n`);
          for (const k of rows) io.stdout.write(`${[k.ident, k.owner, k.pubchans.join(','), k.subchans.join(',')].join('\t')}\n`);
          return 0;
        }
        case 'rm': {
          const ident = positionals[0];
          if (!ident) throw new UsageError('rm needs an IDENT');
          if (!(await keys.remove(ident))) {
            io.stderr.write(`no authkey ${ident}\n`);
            return 1;
          }
          io.stdout.write(`removed ${ident}\n`);
          return 0;
        }
        case 'rotate': {
          const ident = positionals[0];
          if (!ident) throw new UsageError('rotate needs an IDENT');
          const key = await keys.rotate(ident);
          if (!key) {
            io.stderr.write(`no authkey ${ident}\n`);
            return 1;
          }
          io.stdout.write(`ident: ${key.ident}\nsecret: ${key.secret}\n`);
          return 0;
        }
        case 'import': {
          const file = positionals[0];
          if (!file) throw new UsageError('import needs a FILE');
          let json: unknown;
          try {
            json = JSON.parse(readFileSync(file, 'utf8'));
          } catch (err) {
            throw new Error(`cannot read ${file} as JSON: ${(err as Error).message}`);
          }
          const n = await keys.importReference(json);
          io.stdout.write(`imported ${n} authkeys\n`);
          return 0;
        }
        default:
          throw new UsageError(`unknown authkey command '${sub}'`);
      }
    } catch (err) {
      io.stderr.write(`${err instanceof UsageError ? `${err.message}\n${usage}` : `error: ${describeError(err, sub === 'import' ? undefined : positionals[0])}`}\n`);
      return err instanceof UsageError ? 2 : 1;
    } finally {
      keys.close();
    }
  });
}

class UsageError extends Error {}

/** A validation failure names the ident and the field, never dumps zod's JSON. */
function describeError(err: unknown, ident: string | undefined): string {
  if (err instanceof ZodError) {
    const fields = err.issues.map((i) => `field ${i.path.join('.') || '(value)'}: ${i.message}`).join('; ');
    return ident ? `authkey '${ident}' ${fields}` : fields;
  }
  return (err as Error).message;
}
