// Permissions of the data directory: it holds node TOTP secrets and hpfeeds secrets (SQLite), the
// bootstrap admin token and the private Redis, so only the core's user may read it. New things are
// created private; existing ones that other local users could read are fixed at start, with a
// warning (they were readable until now).
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';

export interface PermissionLogger {
  warn(obj: object, msg: string): void;
}

const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

/** Creates `dir` (and missing parents) mode 0700, or restricts an existing one to 0700. */
export function ensurePrivateDir(dir: string, logger: PermissionLogger): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
    // mkdir applies the umask; a umask of 0 must not widen it, and parents created on the way
    // are left as the umask makes them (they may be shared directories).
    chmodSync(dir, PRIVATE_DIR);
    return;
  }
  restrict(dir, PRIVATE_DIR, logger);
}

/** Restricts an existing file to 0600 (nothing when it does not exist). */
export function ensurePrivateFile(path: string, logger: PermissionLogger): void {
  if (existsSync(path)) restrict(path, PRIVATE_FILE, logger);
}

/** The SQLite file and the WAL/shared-memory files SQLite keeps next to it. */
export function sqliteFiles(dbPath: string): string[] {
  return [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, `${dbPath}-journal`];
}

function restrict(path: string, mode: number, logger: PermissionLogger): void {
  const st = statSync(path);
  const current = st.mode & 0o777;
  if ((current & 0o077) === 0) return;
  const uid = process.getuid?.();
  if ((uid !== undefined && uid !== 0 && st.uid !== uid) || (st.isDirectory() && (st.mode & 0o1000) !== 0)) {
    // Someone else's or a shared sticky directory (APIARY_DATA_DIR=/tmp...): not ours to change.
    logger.warn({ path, mode: current.toString(8).padStart(4, '0') }, 'data path is readable by other local users and is not ours to restrict; use a private directory');
    return;
  }
  chmodSync(path, mode);
  logger.warn(
    { path, was: current.toString(8).padStart(4, '0'), now: mode.toString(8).padStart(4, '0') },
    'data file or directory was readable by other local users; permissions restricted (secrets in it may have been exposed)',
  );
}
