// The `apiary` command. Each subcommand loads only the domain it needs.
import { ConfigError, configHelp, loadConfig } from '../config/index.js';
import { StartupError } from '../startup.js';
import { packageVersion } from '../version.js';

const io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

const usage = `apiary: core for fleets of HoneyBee honeypot nodes, with a built-in hpfeeds broker

usage: apiary <command> [options]

commands:
  serve                      run the core (REST API, node gateway, hpfeeds broker); see apiary serve --help
  token create|list|revoke   operator API tokens
  user create|list|passwd|disable|enable
                             people who log in to the console
  authkey add|list|rm|rotate|import
                             hpfeeds credentials
  hpfeeds subscribe|publish  hpfeeds client, compatible with the reference tool's flags
  node simulate              simulated HoneyBee node(s), for tests and benchmarks

Database commands (token, user, authkey) use the database of serve: DATABASE_URL (PostgreSQL) when
set, else APIARY_DB / APIARY_DATA_DIR; --db PATH names a SQLite file instead.
`;

/** The database of the offline management commands, from the same config as `serve`. */
function dbTarget(): { dbPath: string; databaseUrl?: string } {
  const config = loadConfig([], process.env);
  return { dbPath: config.dbPath, databaseUrl: config.databaseUrl };
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      if (rest.includes('--help') || rest.includes('-h')) {
        io.stdout.write(`usage: apiary serve [options]\n\nEvery option can also be set by its environment variable; flags win.\n\n${configHelp()}\n`);
        return 0;
      }
      const config = loadConfig(rest, process.env);
      const { runCore } = await import('../app/run.js');
      return runCore(config);
    }
    case 'token': {
      const { runTokenCli } = await import('../access/index.js');
      return runTokenCli(rest, io, dbTarget());
    }
    case 'user': {
      const { runUserCli } = await import('../users/index.js');
      return runUserCli(rest, io, dbTarget());
    }
    case 'authkey': {
      const { runAuthkeyCli } = await import('../authkeys/index.js');
      return runAuthkeyCli(rest, io, dbTarget());
    }
    case 'hpfeeds': {
      const { runHpfeedsCli } = await import('../hpfeeds/index.js');
      return runHpfeedsCli(rest, io);
    }
    case 'node': {
      const nodeUsage = 'usage: apiary node simulate [options]   simulated HoneyBee node(s); see apiary node simulate --help\n';
      if (rest[0] === '--help' || rest[0] === '-h' || rest[0] === 'help') {
        io.stdout.write(nodeUsage);
        return 0;
      }
      if (rest[0] !== 'simulate') {
        io.stderr.write(rest[0] ? `unknown node command '${rest[0]}'\n${nodeUsage}` : nodeUsage);
        return 2;
      }
      const { runSimulatorCli } = await import('../simulator/index.js');
      return runSimulatorCli(rest.slice(1), io);
    }
    case '--version':
    case '-v':
      io.stdout.write(`${packageVersion()}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout.write(usage);
      return command ? 0 : 2;
    default:
      io.stderr.write(`unknown command '${command}'\n\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // A mistake in the setup is one line saying what to change; anything else is a bug: the stack.
    if (err instanceof ConfigError || err instanceof StartupError) io.stderr.write(`apiary: ${err.message}\n`);
    else io.stderr.write(`apiary: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
