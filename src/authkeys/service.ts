// hpfeeds credentials kept in the core's SQLite database (table `authkeys`, the reference
// broker's sqlite shape). The broker asks `get()` at every login; changes made here, through the
// API, or by `apiary authkey` in another process are pushed to the broker so live connections are
// re-checked at once.
import { randomBytes } from 'node:crypto';
import { asc, eq } from 'drizzle-orm';
import { z } from 'zod';
import type { DatabaseHandle } from '../db/index.js';
import { tables } from '../db/index.js';
import { fitsString8, type AuthChangeListener, type AuthKey, type AuthStore } from '../hpfeeds/index.js';

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

function parseChannels(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((c): c is string => typeof c === 'string') : [];
  } catch {
    return [];
  }
}

function toSummary(r: typeof tables.authkeys.$inferSelect): AuthkeySummary {
  return {
    ident: r.ident,
    owner: r.owner,
    pubchans: parseChannels(r.pubchans),
    subchans: parseChannels(r.subchans),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export interface AuthkeyServiceOptions {
  database: DatabaseHandle;
  /** How often to look for changes made by other processes while someone watches. */
  pollIntervalMs?: number;
}

export class AuthkeyService implements AuthStore {
  private readonly db;
  private readonly sqlite;
  private readonly listeners = new Set<AuthChangeListener>();
  private readonly pollIntervalMs: number;
  private readonly byIdent;
  private readonly versions;
  private readonly versionOf;
  private known = new Map<string, number>();
  private lastDataVersion = -1;
  private watchTimer: NodeJS.Timeout | undefined;

  constructor(opts: AuthkeyServiceOptions) {
    this.db = opts.database.db;
    this.sqlite = opts.database.sqlite;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.byIdent = this.sqlite.prepare<[string], { ident: string; owner: string; secret: string; pubchans: string; subchans: string }>(
      'SELECT ident, owner, secret, pubchans, subchans FROM authkeys WHERE ident = ?',
    );
    this.versions = this.sqlite.prepare<[], { ident: string; updated_at: number }>('SELECT ident, updated_at FROM authkeys');
    this.versionOf = this.sqlite.prepare<[string], { updated_at: number }>('SELECT updated_at FROM authkeys WHERE ident = ?');
  }

  /** AuthStore: looked up at every hpfeeds login. */
  get(ident: string): AuthKey | undefined {
    const row = this.byIdent.get(ident);
    if (!row) return undefined;
    return {
      ident: row.ident,
      owner: row.owner,
      secret: row.secret,
      pubchans: parseChannels(row.pubchans),
      subchans: parseChannels(row.subchans),
    };
  }

  /** Creates or replaces a key; returns it with its secret (the only time it is shown). */
  put(input: AuthkeyInput): AuthKey {
    const k = authkeyInputSchema.parse(input);
    const now = Date.now();
    const secret = k.secret ?? generateHpfeedsSecret();
    const row = {
      ident: k.ident,
      owner: k.owner,
      secret,
      pubchans: JSON.stringify(k.pubchans),
      subchans: JSON.stringify(k.subchans),
      createdAt: now,
      updatedAt: now,
    };
    this.db
      .insert(tables.authkeys)
      .values(row)
      .onConflictDoUpdate({
        target: tables.authkeys.ident,
        set: { owner: row.owner, secret, pubchans: row.pubchans, subchans: row.subchans, updatedAt: now },
      })
      .run();
    this.changed(k.ident);
    return { ident: k.ident, owner: k.owner, secret, pubchans: k.pubchans, subchans: k.subchans };
  }

  /** Creates a key only if the ident is free; returns undefined when it already exists. */
  create(input: AuthkeyInput): AuthKey | undefined {
    if (this.byIdent.get(input.ident)) return undefined;
    return this.put(input);
  }

  /** New secret for an existing ident; live connections using the old one are closed. */
  rotate(ident: string): AuthKey | undefined {
    const current = this.get(ident);
    if (!current) return undefined;
    return this.put({ ...current, secret: generateHpfeedsSecret() });
  }

  update(ident: string, patch: { owner?: string; pubchans?: string[]; subchans?: string[] }): AuthkeySummary | undefined {
    const current = this.get(ident);
    if (!current) return undefined;
    this.put({ ...current, ...patch });
    return this.summary(ident);
  }

  remove(ident: string): boolean {
    const res = this.db.delete(tables.authkeys).where(eq(tables.authkeys.ident, ident)).run();
    if (res.changes > 0) this.changed(ident);
    return res.changes > 0;
  }

  summary(ident: string): AuthkeySummary | undefined {
    const row = this.db.select().from(tables.authkeys).where(eq(tables.authkeys.ident, ident)).get();
    return row && toSummary(row);
  }

  list(): AuthkeySummary[] {
    return this.db.select().from(tables.authkeys).orderBy(asc(tables.authkeys.ident)).all().map(toSummary);
  }

  /** Imports a reference-format JSON auth file (object already parsed); returns how many keys. */
  importReference(json: unknown): number {
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
    const parsed = file.data;
    const tx = this.sqlite.transaction(() => {
      for (const [ident, k] of Object.entries(parsed)) this.put({ ident, ...k });
    });
    tx();
    return Object.keys(parsed).length;
  }

  /**
   * AuthStore change feed (the broker re-checks live connections of the reported idents). Covers
   * changes made through this service and those written by other processes (e.g. `apiary authkey
   * rm` while the core runs): `PRAGMA data_version` changes only when another connection
   * committed, so an idle database costs one tiny query per interval.
   */
  watch(listener: AuthChangeListener): () => void {
    this.listeners.add(listener);
    if (!this.watchTimer) {
      this.snapshot();
      this.lastDataVersion = this.dataVersion();
      this.watchTimer = setInterval(() => this.poll(), this.pollIntervalMs);
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
  }

  private dataVersion(): number {
    return this.sqlite.pragma('data_version', { simple: true }) as number;
  }

  private poll(): void {
    if (!this.sqlite.open) return;
    const v = this.dataVersion();
    if (v === this.lastDataVersion) return;
    this.lastDataVersion = v;
    const before = this.known;
    this.snapshot();
    for (const [ident, updatedAt] of before) {
      if (this.known.get(ident) !== updatedAt) this.onChange(ident);
    }
    for (const ident of this.known.keys()) if (!before.has(ident)) this.onChange(ident);
  }

  private snapshot(): void {
    this.known = new Map(this.versions.all().map((r) => [r.ident, r.updated_at]));
  }

  private changed(ident: string): void {
    const row = this.versionOf.get(ident);
    if (row) this.known.set(ident, row.updated_at);
    else this.known.delete(ident);
    this.onChange(ident);
  }
}
