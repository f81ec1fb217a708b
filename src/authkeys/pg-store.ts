// hpfeeds authkeys in PostgreSQL (table authkeys, drizzle/pg/): the same behaviour as
// sqlite-store.ts, checked by the same contract tests (test/authkeys/store-contract.test.ts).
import type pg from 'pg';
import { inPgTransaction, type PgDatabaseHandle } from '../db/index.js';
import { authkeyVersion, parseChannels, type AuthkeyRecord, type AuthkeyStore } from './store.js';

interface Row {
  ident: string;
  owner: string;
  secret: string;
  pubchans: string;
  subchans: string;
  createdAt: number;
  updatedAt: number;
}

const COLUMNS = 'ident, owner, secret, pubchans, subchans, created_at AS "createdAt", updated_at AS "updatedAt"';
const record = (r: Row): AuthkeyRecord => ({ ...r, pubchans: parseChannels(r.pubchans), subchans: parseChannels(r.subchans) });
const UPSERT = `INSERT INTO authkeys (ident, owner, secret, pubchans, subchans, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
  ON CONFLICT (ident) DO UPDATE SET owner = excluded.owner, secret = excluded.secret, pubchans = excluded.pubchans,
    subchans = excluded.subchans, updated_at = excluded.updated_at`;

export class PgAuthkeyStore implements AuthkeyStore {
  private readonly pool: pg.Pool;

  constructor(database: PgDatabaseHandle) {
    this.pool = database.pool;
  }

  async get(ident: string): Promise<AuthkeyRecord | undefined> {
    const row = (await this.pool.query<Row>(`SELECT ${COLUMNS} FROM authkeys WHERE ident = $1`, [ident])).rows[0];
    return row && record(row);
  }

  async list(): Promise<AuthkeyRecord[]> {
    // COLLATE "C": byte order, as SQLite sorts (the database's collation would differ by server).
    return (await this.pool.query<Row>(`SELECT ${COLUMNS} FROM authkeys ORDER BY ident COLLATE "C"`)).rows.map(record);
  }

  async upsert(records: readonly AuthkeyRecord[]): Promise<void> {
    if (records.length === 0) return;
    if (records.length === 1) {
      await this.pool.query(UPSERT, params(records[0]!));
      return;
    }
    await inPgTransaction(this.pool, async (client) => {
      for (const r of records) await client.query(UPSERT, params(r));
    });
  }

  async insertIfAbsent(r: AuthkeyRecord): Promise<boolean> {
    const res = await this.pool.query(
      'INSERT INTO authkeys (ident, owner, secret, pubchans, subchans, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ident) DO NOTHING',
      params(r),
    );
    return (res.rowCount ?? 0) > 0;
  }

  async remove(ident: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM authkeys WHERE ident = $1', [ident])).rowCount ?? 0) > 0;
  }

  async versions(): Promise<Map<string, string>> {
    const { rows } = await this.pool.query<Row>(`SELECT ${COLUMNS} FROM authkeys`);
    return new Map(rows.map((r) => [r.ident, authkeyVersion(record(r))]));
  }

  async changeMarker(): Promise<string> {
    // PostgreSQL has no data_version: a fingerprint of every row, one row back. It moves with any
    // insert, delete or update, whoever made it.
    const { rows } = await this.pool.query<{ marker: string }>(
      `SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(
         concat_ws(chr(1), ident, updated_at::text, owner, secret, pubchans, subchans), 0)::numeric), 0)::text AS marker FROM authkeys`,
    );
    return rows[0]!.marker;
  }
}

function params(r: AuthkeyRecord): [string, string, string, string, string, number, number] {
  return [r.ident, r.owner, r.secret, JSON.stringify(r.pubchans), JSON.stringify(r.subchans), r.createdAt, r.updatedAt];
}
