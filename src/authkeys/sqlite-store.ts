// hpfeeds authkeys in SQLite (table authkeys, the reference broker's sqlite shape). A login is one
// prepared lookup by ident; change detection reads PRAGMA data_version, which moves only when
// another connection committed, so an idle database costs one tiny query per poll.
import type { DatabaseHandle } from '../db/index.js';
import { authkeyVersion, parseChannels, type AuthkeyRecord, type AuthkeyStore } from './store.js';

interface Row {
  ident: string;
  owner: string;
  secret: string;
  pubchans: string;
  subchans: string;
  created_at: number;
  updated_at: number;
}

const record = (r: Row): AuthkeyRecord => ({
  ident: r.ident,
  owner: r.owner,
  secret: r.secret,
  pubchans: parseChannels(r.pubchans),
  subchans: parseChannels(r.subchans),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class SqliteAuthkeyStore implements AuthkeyStore {
  private readonly sqlite;
  private readonly stmt;
  private readonly upsertAll: (records: readonly AuthkeyRecord[]) => void;

  constructor(database: DatabaseHandle) {
    const s = (this.sqlite = database.sqlite);
    this.stmt = {
      get: s.prepare<[string], Row>('SELECT * FROM authkeys WHERE ident = ?'),
      list: s.prepare<[], Row>('SELECT * FROM authkeys ORDER BY ident'),
      upsert: s.prepare<[string, string, string, string, string, number, number]>(
        `INSERT INTO authkeys (ident, owner, secret, pubchans, subchans, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (ident) DO UPDATE SET owner = excluded.owner, secret = excluded.secret, pubchans = excluded.pubchans,
           subchans = excluded.subchans, updated_at = excluded.updated_at`,
      ),
      insert: s.prepare<[string, string, string, string, string, number, number]>(
        'INSERT INTO authkeys (ident, owner, secret, pubchans, subchans, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ident) DO NOTHING',
      ),
      remove: s.prepare<[string]>('DELETE FROM authkeys WHERE ident = ?'),
      all: s.prepare<[], Row>('SELECT * FROM authkeys'),
    };
    this.upsertAll = s.transaction((records: readonly AuthkeyRecord[]) => {
      for (const r of records) this.stmt.upsert.run(...params(r));
    });
  }

  async get(ident: string): Promise<AuthkeyRecord | undefined> {
    const row = this.stmt.get.get(ident);
    return row && record(row);
  }

  async list(): Promise<AuthkeyRecord[]> {
    return this.stmt.list.all().map(record);
  }

  async upsert(records: readonly AuthkeyRecord[]): Promise<void> {
    if (records.length > 0) this.upsertAll(records);
  }

  async insertIfAbsent(r: AuthkeyRecord): Promise<boolean> {
    return this.stmt.insert.run(...params(r)).changes > 0;
  }

  async remove(ident: string): Promise<boolean> {
    return this.stmt.remove.run(ident).changes > 0;
  }

  async versions(): Promise<Map<string, string>> {
    return new Map(this.stmt.all.all().map((r) => [r.ident, authkeyVersion(record(r))]));
  }

  async changeMarker(): Promise<string> {
    // A closed connection (the core shutting down while a poll was due) has nothing new to say.
    if (!this.sqlite.open) return 'closed';
    return String(this.sqlite.pragma('data_version', { simple: true }));
  }
}

function params(r: AuthkeyRecord): [string, string, string, string, string, number, number] {
  return [r.ident, r.owner, r.secret, JSON.stringify(r.pubchans), JSON.stringify(r.subchans), r.createdAt, r.updatedAt];
}
