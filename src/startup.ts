// Startup failures a person can fix, each turned into one line that says what is wrong and which
// setting changes it. `apiary serve` prints the line and exits non-zero (src/cli/main.ts); the
// composition root (src/app.ts) has stopped whatever had started, the private Redis included.
import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { optionNames, type Config, type OptionKey } from './config/index.js';

export class StartupError extends Error {
  override name = 'StartupError';
}

const reasons: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'is a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
};

/** A short reason for a system error: "permission denied" rather than the errno dump. */
export function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e?.code && reasons[e.code]) || e?.message || String(err);
}

/**
 * DATABASE_URL is accepted by the configuration (src/db/pg.ts can open it) but no domain runs on
 * PostgreSQL yet: refused at startup, rather than ignored while the data goes to SQLite.
 */
/** The data directory exists (or is created) and this user can read and write it. */
export function checkDataDir(config: Config): void {
  try {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    accessSync(config.dataDir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new StartupError(`cannot use the data directory ${config.dataDir} (${optionNames('dataDir')}): ${reasonOf(err)}`);
  }
}

/** Opens the database (the SQLite file or PostgreSQL), naming it and its settings on failure. */
export async function openingDatabase<T>(config: Config, open: () => T | Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (err) {
    const which = config.databaseUrl !== undefined ? `the PostgreSQL database of ${optionNames('databaseUrl')}` : `the database ${config.dbPath} (${optionNames('dbPath')} or ${optionNames('dataDir')})`;
    throw new StartupError(`cannot open ${which}: ${reasonOf(err)}`);
  }
}

/** The node TLS certificate and key can be read and belong together, before anything listens. */
export function checkNodeTls(config: Config): void {
  if (!config.nodeTlsCert || !config.nodeTlsKey) return;
  const read = (key: OptionKey, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new StartupError(`cannot read ${path} (${optionNames(key)}): ${reasonOf(err)}`);
    }
  };
  const cert = read('nodeTlsCert', config.nodeTlsCert);
  const key = read('nodeTlsKey', config.nodeTlsKey);
  try {
    createSecureContext({ cert, key, minVersion: 'TLSv1.3' });
  } catch (err) {
    throw new StartupError(
      `${config.nodeTlsCert} and ${config.nodeTlsKey} (${optionNames('nodeTlsCert')}, ${optionNames('nodeTlsKey')}) are not a usable PEM certificate and key: ${(err as Error).message}`,
    );
  }
}

/**
 * Runs a listen call; a port already in use (or a privileged one) becomes a line that names the
 * listener and the setting that moves it.
 */
export async function listening<T>(what: string, setting: string, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
    const where = `port ${e.port ?? port} on ${e.address ?? host}`;
    if (e.code === 'EADDRINUSE') throw new StartupError(`${where} (${what}) is already in use by another program; choose another port with ${setting}`);
    if (e.code === 'EACCES') throw new StartupError(`no permission to listen on ${where} (${what}); choose a port above 1023 with ${setting}`);
    if (e.code === 'EADDRNOTAVAIL') throw new StartupError(`address ${e.address ?? host} (${what}) is not an address of this machine; change it with ${setting}`);
    // Not about the port: a certificate file of a TLS listener, say. Name the file when there is one.
    throw new StartupError(`${what} (${setting}): ${e.path ? `${e.path}: ` : ''}${reasonOf(err)}`);
  }
}
