// hpfeeds credentials kept in the core's database (table `authkeys`, the reference broker's sqlite
// shape; the SQL is in the store). The broker asks `get()` at every login; changes made here,
// through the API, or by `apiary authkey` in another process (or another core on the same
// PostgreSQL) are pushed to the broker so live connections are re-checked at once.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { fitsString8, type AuthChangeListener, type AuthKey, type AuthStore } from '../hpfeeds/index.js';
import { authkeyVersion, type AuthkeyRecord, type AuthkeyStore } from './store.js';

/** ident and channel names travel in uint8-length-prefixed hpfeeds fields: 1..255 UTF-8 bytes. */
export const name255 = z.string().min(1).refine(fitsString8, { message: 'must be 1 to 255 bytes of UTF-8 (hpfeeds length-prefixed field)' });

/** Channels per direction of one authkey: each becomes a broker ACL entry checked per frame. */
const MAX_CHANNELS_PER_KEY = 1000;

export const authkeyInputSchema = z.object({
  ident: name255,
  owner: z.string().max(255).default(''),
  secret: z.string().min(8).max(255).optional().describe('generated when omitted'),
  pubchans: z.array(name255).max(MAX_CHANNELS_PER_KEY).default([]),
  subchans: z.array(name255).max(MAX_CHANNELS_PER_KEY).default([]),
});
export type AuthkeyInput = z.input<typeof authkeyInputSchema>;

/** An authkey as listed: never with its secret. */
export interface AuthkeySummary {
  ident: string;
  owner: string;
  pubchans: string[];
  subchans: string[];
  createdAt: number;
  updatedAt: number;
}

/** The reference broker's JSON auth file: {"ident": {"owner", "secret", "pubchans", "subchans"}}. */
export const referenceAuthFileSchema = z.record(
  name255,
  z.object({
    owner: z.string().default(''),
    secret: z.string().min(1),
    pubchans: z.array(name255).default([]),
    subchans: z.array(name255).default([]),
  }),
);

/** An authkey (or an auth file entry) that does not validate; the message names ident and field. */
export class AuthkeyInputError extends Error {
  override name = 'AuthkeyInputError';
}

export function generateHpfeedsSecret(): string {
  return randomBytes(24).toString('base64url');
}

function toSummary(r: AuthkeyRecord): AuthkeySummary {
  return { ident: r.ident, owner: r.owner, pubchans: r.pubchans, subchans: r.subchans, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

export interface AuthkeyServiceOptions {
  store: AuthkeyStore;
  /** How often to look for changes made by other processes while someone watches. */
  pollIntervalMs?: number;
  /** Called when a poll for other processes' changes fails (it is retried at the next interval). */
  onPollError?: (err: unknown) => void;
}

export class AuthkeyService implements AuthStore {
  private readonly store: AuthkeyStore;
  private readonly listeners = new Set<AuthChangeListener>();
  private readonly pollIntervalMs: number;
  private readonly onPollError: (err: unknown) => void;
  /** ident -> authkeyVersion(): the keys as last seen or written here. */
  private known = new Map<string, string>();
  private lastMarker: string | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  /** The poll in flight (a slow database must not stack polls), and the watch period it serves. */
  private polling: { generation: number } | undefined;
  /** Moves at every close(): a poll of an earlier watch period changes nothing when it completes. */
  private generation = 0;
  /** Own changes made while the poll in flight reads (see poll). */
  private ownDuringPoll: Map<string, string | undefined> | undefined;
  /** The last read may predate an own change: read again at the next poll (see overlay). */
  private recheck = false;

  constructor(opts: AuthkeyServiceOptions) {
    this.store = opts.store;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.onPollError = opts.onPollError ?? (() => undefined);
  }

  /** AuthStore: looked up at every hpfeeds login (not cached: a removed key fails the next login). */
  async get(ident: string): Promise<AuthKey | undefined> {
    const row = await this.store.get(ident);
    if (!row) return undefined;
    return { ident: row.ident, owner: row.owner, secret: row.secret, pubchans: row.pubchans, subchans: row.subchans };
  }

  /** Creates or replaces a key; returns it with its secret (the only time it is shown). */
  async put(input: AuthkeyInput): Promise<AuthKey> {
    const [record] = this.records([input]);
    await this.store.upsert([record!]);
    this.changed(record!.ident, record!);
    return withoutDates(record!);
  }

  /** Creates a key only if the ident is free; returns undefined when it already exists. */
  async create(input: AuthkeyInput): Promise<AuthKey | undefined> {
    const [record] = this.records([input]);
    if (!(await this.store.insertIfAbsent(record!))) return undefined;
    this.changed(record!.ident, record!);
    return withoutDates(record!);
  }

  /** New secret for an existing ident; live connections using the old one are closed. */
  async rotate(ident: string): Promise<AuthKey | undefined> {
    const current = await this.get(ident);
    if (!current) return undefined;
    return this.put({ ...current, secret: generateHpfeedsSecret() });
  }

  async update(ident: string, patch: { owner?: string; pubchans?: string[]; subchans?: string[] }): Promise<AuthkeySummary | undefined> {
    const current = await this.get(ident);
    if (!current) return undefined;
    await this.put({ ...current, ...patch });
    return this.summary(ident);
  }

  async remove(ident: string): Promise<boolean> {
    const removed = await this.store.remove(ident);
    if (removed) this.changed(ident, undefined);
    return removed;
  }

  async summary(ident: string): Promise<AuthkeySummary | undefined> {
    const row = await this.store.get(ident);
    return row && toSummary(row);
  }

  async list(): Promise<AuthkeySummary[]> {
    return (await this.store.list()).map(toSummary);
  }

  /** Imports a reference-format JSON auth file (object already parsed); returns how many keys. */
  async importReference(json: unknown): Promise<number> {
    // Every entry is checked before any is written, and a bad one is reported by ident and field.
    const file = referenceAuthFileSchema.safeParse(json);
    if (!file.success) {
      throw new AuthkeyInputError(
        file.error.issues
          .map((i) => (i.path.length ? `ident '${String(i.path[0])}'${i.path.length > 1 ? ` field ${i.path.slice(1).join('.')}` : ''}: ${i.message}` : i.message))
          .join('; '),
      );
    }
    const problems: string[] = [];
    for (const [ident, k] of Object.entries(file.data)) {
      const entry = authkeyInputSchema.safeParse({ ident, ...k });
      if (!entry.success) problems.push(...entry.error.issues.map((i) => `ident '${ident}' field ${i.path.join('.') || 'ident'}: ${i.message}`));
    }
    if (problems.length) throw new AuthkeyInputError(problems.join('; '));
    // All in one transaction: a file is imported whole or not at all.
    const records = this.records(Object.entries(file.data).map(([ident, k]) => ({ ident, ...k })));
    await this.store.upsert(records);
    for (const r of records) this.changed(r.ident, r);
    return records.length;
  }

  /**
   * AuthStore change feed (the broker re-checks live connections of the reported idents). Covers
   * changes made through this service and those written by other processes (e.g. `apiary authkey
   * rm` while the core runs, or another core on the same PostgreSQL): each interval asks the store
   * for its change marker, and only when that moved are the versions read and compared.
   */
  watch(listener: AuthChangeListener): () => void {
    this.listeners.add(listener);
    if (!this.watchTimer) {
      this.runPoll();
      this.watchTimer = setInterval(() => this.runPoll(), this.pollIntervalMs);
      this.watchTimer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.close();
    };
  }

  private onChange(ident: string): void {
    for (const l of this.listeners) l([ident]);
  }

  close(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
    // A later watch() starts from a fresh baseline, as the first one did.
    this.lastMarker = undefined;
    this.generation++;
  }

  /** Validated input -> the record to store, its dates set now. */
  private records(inputs: readonly AuthkeyInput[]): AuthkeyRecord[] {
    const now = Date.now();
    return inputs.map((input) => {
      const k = authkeyInputSchema.parse(input);
      return { ident: k.ident, owner: k.owner, secret: k.secret ?? generateHpfeedsSecret(), pubchans: k.pubchans, subchans: k.subchans, createdAt: now, updatedAt: now };
    });
  }

  private runPoll(): void {
    if (this.polling?.generation === this.generation) return;
    const run = { generation: this.generation };
    this.polling = run;
    void this.poll(run.generation).finally(() => {
      if (this.polling === run) this.polling = undefined;
    });
  }

  /** Reads the versions when the store's change marker moved, and reports the idents that changed. */
  private async poll(generation: number): Promise<void> {
    // This service's own changes made while the reads are on their way are already announced and
    // in `known`; a read issued before them must not undo them (nor announce them again).
    const own = new Map<string, string | undefined>();
    this.ownDuringPoll = own;
    try {
      if (this.lastMarker === undefined) {
        // The starting point. Both reads are issued before anything else runs (the SQLite store
        // answers at once), so a change made right after watch() is not taken into the baseline.
        const [marker, versions] = await Promise.all([this.store.changeMarker(), this.store.versions()]);
        if (generation !== this.generation) return;
        this.lastMarker = marker;
        this.known = this.overlay(versions, own);
        return;
      }
      const marker = await this.store.changeMarker();
      if (generation !== this.generation || (marker === this.lastMarker && !this.recheck)) return;
      this.recheck = false;
      const versions = await this.store.versions();
      if (generation !== this.generation) return;
      this.lastMarker = marker;
      const before = this.known;
      this.known = this.overlay(versions, own);
      for (const [ident, version] of before) {
        if (this.known.get(ident) !== version) this.onChange(ident);
      }
      for (const ident of this.known.keys()) if (!before.has(ident)) this.onChange(ident);
    } catch (err) {
      this.onPollError(err);
    } finally {
      if (this.ownDuringPoll === own) this.ownDuringPoll = undefined;
    }
  }

  /**
   * `versions` with the own changes (ident -> version, or undefined when removed) laid over it.
   * Where the read disagrees with an own change, it was either issued before that change or saw
   * another connection's later one: the next poll reads again, whatever the marker says.
   */
  private overlay(versions: Map<string, string>, own: ReadonlyMap<string, string | undefined>): Map<string, string> {
    for (const [ident, version] of own) {
      if (versions.get(ident) !== version) this.recheck = true;
      if (version === undefined) versions.delete(ident);
      else versions.set(ident, version);
    }
    return versions;
  }

  /** This service wrote `record` (or removed the ident): remembered and announced at once. */
  private changed(ident: string, record: AuthkeyRecord | undefined): void {
    const version = record && authkeyVersion(record);
    if (version !== undefined) this.known.set(ident, version);
    else this.known.delete(ident);
    this.ownDuringPoll?.set(ident, version);
    this.onChange(ident);
  }
}

function withoutDates(r: AuthkeyRecord): AuthKey {
  return { ident: r.ident, owner: r.owner, secret: r.secret, pubchans: r.pubchans, subchans: r.subchans };
}
