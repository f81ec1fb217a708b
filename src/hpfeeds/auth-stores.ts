// Auth stores compatible with the reference broker's JSON and environment backends, an in-memory
// store, and a composite that asks several in order. (The SQLite store lives in src/authkeys.)
import { watch as watchFs, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { fitsString8 } from './codec.js';
import { silentLogger, type AuthChangeListener, type AuthKey, type AuthStore, type HpfeedsLogger } from './types.js';

function isThenable<T>(value: unknown): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}

class ChangeFeed {
  private readonly listeners = new Set<AuthChangeListener>();

  add(listener: AuthChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(idents: readonly string[] | undefined): void {
    for (const listener of this.listeners) listener(idents);
  }
}

/** Keys held in memory; `set`/`delete` notify watchers (a Broker revalidates those idents). */
export class MemoryAuthStore implements AuthStore {
  private readonly keys = new Map<string, AuthKey>();
  private readonly feed = new ChangeFeed();

  constructor(keys: Iterable<AuthKey> = []) {
    for (const key of keys) this.keys.set(key.ident, key);
  }

  get(ident: string): AuthKey | undefined {
    return this.keys.get(ident);
  }

  set(key: AuthKey): void {
    this.keys.set(key.ident, key);
    this.feed.emit([key.ident]);
  }

  delete(ident: string): boolean {
    const existed = this.keys.delete(ident);
    if (existed) this.feed.emit([ident]);
    return existed;
  }

  watch(listener: AuthChangeListener): () => void {
    return this.feed.add(listener);
  }
}

function splitChannels(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
}

/**
 * The reference's environment backend: `HPFEEDS_<IDENT>_SECRET` (required), `_OWNER` (default:
 * the ident), `_PUBCHANS` and `_SUBCHANS` (comma-separated). IDENT is upper-cased. Reads the
 * env object it is given (pass process.env from the config layer).
 */
export class EnvAuthStore implements AuthStore {
  constructor(private readonly env: Readonly<Record<string, string | undefined>>) {}

  get(ident: string): AuthKey | undefined {
    const prefix = `HPFEEDS_${ident.toUpperCase()}_`;
    const secret = this.env[`${prefix}SECRET`];
    if (!secret) return undefined;
    return {
      ident,
      owner: this.env[`${prefix}OWNER`] || ident,
      secret,
      pubchans: splitChannels(this.env[`${prefix}PUBCHANS`]),
      subchans: splitChannels(this.env[`${prefix}SUBCHANS`]),
    };
  }
}

/** Asks each store in order; the first one that knows the ident wins. A store error is not skipped: it fails the lookup. */
export class CompositeAuthStore implements AuthStore {
  constructor(private readonly stores: readonly AuthStore[]) {}

  get(ident: string): AuthKey | undefined | Promise<AuthKey | undefined> {
    return this.lookup(ident, 0);
  }

  // Stays synchronous while the stores answer synchronously, so logins need no extra tick.
  private lookup(ident: string, from: number): AuthKey | undefined | Promise<AuthKey | undefined> {
    for (let i = from; i < this.stores.length; i++) {
      const result = this.stores[i].get(ident);
      if (isThenable<AuthKey | undefined | null>(result)) {
        return Promise.resolve(result).then((key) => key ?? this.lookup(ident, i + 1));
      }
      if (result) return result;
    }
    return undefined;
  }

  watch(listener: AuthChangeListener): () => void {
    const unsubscribes = this.stores.map((store) => store.watch?.(listener));
    return () => unsubscribes.forEach((unsubscribe) => unsubscribe?.());
  }
}

/** Parses the reference JSON format `{"ident": {"owner", "secret", "pubchans": [], "subchans": []}}`. Throws on any bad entry. */
export function parseAuthKeysJson(text: string): Map<string, AuthKey> {
  const root: unknown = JSON.parse(text);
  if (root === null || typeof root !== 'object' || Array.isArray(root)) throw new Error('root is not an object of ident -> authkey');
  const keys = new Map<string, AuthKey>();
  for (const [ident, entry] of Object.entries(root as Record<string, unknown>)) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new Error(`entry ${JSON.stringify(ident)} is not an object`);
    if (!fitsString8(ident)) throw new Error(`ident ${JSON.stringify(ident)} must be 1 to 255 bytes of UTF-8 (it is ${Buffer.byteLength(ident)})`);
    const { owner, secret, pubchans, subchans } = entry as Record<string, unknown>;
    if (typeof secret !== 'string' || secret === '') throw new Error(`entry ${JSON.stringify(ident)} has no secret`);
    if (owner !== undefined && typeof owner !== 'string') throw new Error(`entry ${JSON.stringify(ident)}: owner must be a string`);
    const channels = (field: string, value: unknown): string[] => {
      if (value === undefined) return [];
      if (!Array.isArray(value) || !value.every((c) => typeof c === 'string')) {
        throw new Error(`entry ${JSON.stringify(ident)}: ${field} must be a list of strings`);
      }
      const bad = (value as string[]).find((c) => !fitsString8(c));
      if (bad !== undefined) {
        throw new Error(`entry ${JSON.stringify(ident)}: channel ${JSON.stringify(bad)} in ${field} must be 1 to 255 bytes of UTF-8 (it is ${Buffer.byteLength(bad)})`);
      }
      return value as string[];
    };
    keys.set(ident, {
      ident,
      owner: owner ?? ident,
      secret,
      pubchans: channels('pubchans', pubchans),
      subchans: channels('subchans', subchans),
    });
  }
  return keys;
}

export interface JsonFileAuthStoreOptions {
  path: string;
  logger?: HpfeedsLogger;
  /** mtime/size polling period, the fallback when fs.watch misses an event. Default 2000 ms; 0 turns polling off. */
  pollIntervalMs?: number;
  /**
   * Watch the file's directory with fs.watch (default true). False leaves polling alone, for
   * filesystems whose change notifications are unreliable (NFS, some container volume mounts).
   */
  watchFiles?: boolean;
}

/**
 * The reference's JSON file backend with hot reload (fs.watch on the directory, so atomic
 * rename-over saves are seen, plus stat polling). A file that fails to parse is logged and the
 * previous keys stay in force. Changed idents are reported to watchers (a Broker revalidates them).
 */
export class JsonFileAuthStore implements AuthStore {
  readonly path: string;
  private keys = new Map<string, AuthKey>();
  private readonly feed = new ChangeFeed();
  private readonly logger: HpfeedsLogger;
  private readonly pollIntervalMs: number;
  private readonly watchFiles: boolean;
  private fingerprint = ''; // set by open() before anything reads it
  private watcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<boolean> | undefined;
  private reloadAgain = false;
  private closed = false;

  private constructor(opts: JsonFileAuthStoreOptions) {
    this.path = opts.path;
    this.logger = opts.logger ?? silentLogger;
    this.pollIntervalMs = opts.pollIntervalMs ?? 2000;
    this.watchFiles = opts.watchFiles ?? true;
    if (!Number.isFinite(this.pollIntervalMs) || this.pollIntervalMs < 0) throw new RangeError('pollIntervalMs must be 0 or more');
  }

  /** Loads the file (throws if it is missing or invalid: better to refuse to start) and starts watching it. */
  static async open(opts: JsonFileAuthStoreOptions): Promise<JsonFileAuthStore> {
    const store = new JsonFileAuthStore(opts);
    store.fingerprint = await store.statFingerprint();
    store.keys = parseAuthKeysJson(await readFile(store.path, 'utf8'));
    store.logger.info({ path: store.path, keys: store.keys.size }, 'hpfeeds auth file loaded');
    store.startWatching();
    return store;
  }

  get size(): number {
    return this.keys.size;
  }

  get(ident: string): AuthKey | undefined {
    return this.keys.get(ident);
  }

  watch(listener: AuthChangeListener): () => void {
    return this.feed.add(listener);
  }

  /** Re-reads the file now. Resolves false (and keeps the previous keys) if it cannot be read or parsed. */
  reload(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = this.doReload().finally(() => {
      this.reloading = undefined;
      if (this.reloadAgain && !this.closed) {
        this.reloadAgain = false;
        void this.reload();
      }
    });
    return this.reloading;
  }

  /** Stops watching; a reload still under way keeps the keys it had (nothing is read after close). */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
    this.watcher = this.pollTimer = this.debounceTimer = undefined;
  }

  private async doReload(): Promise<boolean> {
    let next: Map<string, AuthKey>;
    try {
      this.fingerprint = await this.statFingerprint();
      next = parseAuthKeysJson(await readFile(this.path, 'utf8'));
    } catch (err) {
      this.logger.error({ path: this.path, err: (err as Error).message }, 'hpfeeds auth file reload failed; keeping the previous keys');
      return false;
    }
    if (this.closed) return false;
    const changed: string[] = [];
    for (const ident of new Set([...this.keys.keys(), ...next.keys()])) {
      if (JSON.stringify(this.keys.get(ident)) !== JSON.stringify(next.get(ident))) changed.push(ident);
    }
    this.keys = next;
    this.logger.info({ path: this.path, keys: next.size, changed: changed.length }, 'hpfeeds auth file reloaded');
    if (changed.length > 0) this.feed.emit(changed);
    return true;
  }

  private async statFingerprint(): Promise<string> {
    const s = await stat(this.path);
    return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  }

  private startWatching(): void {
    if (this.watchFiles) this.startFsWatch();
    if (this.pollIntervalMs > 0) this.startPolling();
  }

  private startFsWatch(): void {
    const file = basename(this.path);
    const onChange = (_event: string, name: string | null): void => {
      // Linux names the entry on every directory event; other platforms may not (null): reload then.
      if (name === null || name === file) this.scheduleReload();
    };
    // Stryker disable all: what follows only differs from the tested path when the OS refuses or
    // breaks an inotify watch (watch limit reached, filesystem gone), which a test cannot cause
    // without changing system settings; both failures only log and leave polling in charge.
    try {
      this.watcher = watchFs(dirname(this.path), { persistent: false }, onChange);
      this.watcher.on('error', (err) => {
        this.logger.warn({ path: this.path, err: err.message }, 'hpfeeds auth file watch failed; relying on polling');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.logger.warn({ path: this.path, err: (err as Error).message }, 'hpfeeds auth file cannot be watched; relying on polling');
    }
    // Stryker restore all
  }

  private startPolling(): void {
    this.pollTimer = setInterval(() => {
      this.statFingerprint().then(
        (fingerprint) => {
          // A reload under way records the fingerprint it read; one seen meanwhile would only
          // repeat it (a later change still differs at the next poll).
          if (fingerprint !== this.fingerprint && !this.reloading) this.scheduleReload();
        },
        () => {}, // a missing file is reported by the reload that follows its reappearance
      );
    }, this.pollIntervalMs).unref();
  }

  /**
   * Editors write in several steps: events within 50 ms of the first one fold into one reload.
   * The timer is not pushed back by later events: a poll shorter than the window that keeps seeing
   * the changed file would otherwise postpone the reload forever. A write that lands after the
   * reload read the file raises its own event (and changes the fingerprint), so it is not missed.
   */
  private scheduleReload(): void {
    if (this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.reload();
    }, 50).unref();
  }
}
