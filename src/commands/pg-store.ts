// The command store in PostgreSQL (table commands, sequence commands_seq): the same behaviour as
// sqlite-store.ts, checked by the same contract tests (test/commands/store-contract.test.ts), for
// several cores sharing one database. What SQLite gets from having one writer is made explicit:
// - seq: drawn from the sequence commands_seq inside the inserting transaction, which first takes
//   one transaction-scoped advisory lock shared by every insert (held to COMMIT). Inserts of
//   commands are therefore serialised across cores and seq order is commit order: a command can
//   never become visible with a lower seq than one of the same node already visible (and
//   possibly sent). Command inserts are operator actions, rare next to everything else; one lock
//   (not one per node) keeps a broadcast to thousands of nodes within PostgreSQL's lock table.
// - one in flight per node: markSent runs in a transaction that takes a per-node advisory lock
//   (hash of the node name, held to COMMIT) before its UPDATE re-checks, in a fresh snapshot, that
//   nothing of that node is sent and nothing earlier is queued. Two claims for one node (from two
//   workers or two cores) run one after the other, and the second sees the first's row as sent.
import type pg from 'pg';
import { inPgTransaction, type PgDatabaseHandle } from '../db/index.js';
import { queuedRow, type CommandRow, type CommandStore, type ListFilter, type NewCommand } from './store.js';
import type { CommandResult, CommandStatus, TerminalStatus } from './types.js';

const COLS = `id, seq, node_name AS "nodeName", kind, pot_id AS "potId", command, status, result,
  batch_id AS "batchId", requested_by AS "requestedBy", created_at AS "createdAt", sent_at AS "sentAt",
  finished_at AS "finishedAt", expires_at AS "expiresAt"`;

/** pg_advisory_xact_lock(key, 0): every insert of commands. */
export const INSERT_LOCK = 0x61706369; // 'apci'
/** pg_advisory_xact_lock(key, hashtext(node)): claims of one node's commands. */
const CLAIM_LOCK = 0x6170636c; // 'apcl'

const INSERT = `INSERT INTO commands (id, seq, node_name, kind, pot_id, command, status, batch_id, requested_by, created_at, expires_at)
  SELECT id, seq, node_name, kind, pot_id, command, 'queued', batch_id, requested_by, created_at, expires_at
  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[])
    AS t(id, seq, node_name, kind, pot_id, command, batch_id, requested_by, created_at, expires_at)`;

export class PgCommandStore implements CommandStore {
  private readonly pool: pg.Pool;

  constructor(database: PgDatabaseHandle) {
    this.pool = database.pool;
  }

  async insert(rows: NewCommand[]): Promise<CommandRow[]> {
    if (rows.length === 0) return [];
    return this.inTransaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, 0)', [INSERT_LOCK]);
      const drawn = await client.query<{ seq: number }>("SELECT nextval('commands_seq') AS seq FROM generate_series(1, $1)", [rows.length]);
      const seqs = drawn.rows.map((r) => r.seq).sort((a, b) => a - b);
      const out = rows.map((r, i) => queuedRow(r, seqs[i]!, JSON.stringify(r.command)));
      await client.query(INSERT, [
        out.map((r) => r.id),
        out.map((r) => r.seq),
        out.map((r) => r.nodeName),
        out.map((r) => r.kind),
        out.map((r) => r.potId),
        out.map((r) => r.command),
        out.map((r) => r.batchId),
        out.map((r) => r.requestedBy),
        out.map((r) => r.createdAt),
        out.map((r) => r.expiresAt),
      ]);
      return out;
    });
  }

  async get(id: string): Promise<CommandRow | undefined> {
    return this.one(`SELECT ${COLS} FROM commands WHERE id = $1`, [id]);
  }

  async inFlight(node: string): Promise<CommandRow | undefined> {
    return this.one(`SELECT ${COLS} FROM commands WHERE node_name = $1 AND status = 'sent' ORDER BY seq LIMIT 1`, [node]);
  }

  async hasEarlierQueued(node: string, seq: number): Promise<boolean> {
    const res = await this.pool.query(`SELECT 1 FROM commands WHERE node_name = $1 AND status = 'queued' AND seq < $2 LIMIT 1`, [node, seq]);
    return (res.rowCount ?? 0) > 0;
  }

  async nextQueued(node: string): Promise<CommandRow | undefined> {
    return this.one(`SELECT ${COLS} FROM commands WHERE node_name = $1 AND status = 'queued' ORDER BY seq LIMIT 1`, [node]);
  }

  async markSent(id: string, at: number): Promise<boolean> {
    return this.inTransaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext(node_name)) FROM commands WHERE id = $2', [CLAIM_LOCK, id]);
      // A new statement, so a new snapshot: it sees every claim committed while we waited.
      const res = await client.query(
        `UPDATE commands SET status = 'sent', sent_at = $1 WHERE id = $2 AND status = 'queued'
           AND NOT EXISTS (SELECT 1 FROM commands o WHERE o.node_name = commands.node_name AND o.status = 'sent')
           AND NOT EXISTS (SELECT 1 FROM commands o WHERE o.node_name = commands.node_name AND o.status = 'queued' AND o.seq < commands.seq)`,
        [at, id],
      );
      return res.rowCount === 1;
    });
  }

  async unmarkSent(id: string): Promise<boolean> {
    return (await this.pool.query(`UPDATE commands SET status = 'queued', sent_at = NULL WHERE id = $1 AND status = 'sent'`, [id])).rowCount === 1;
  }

  async finish(id: string, from: 'queued' | 'sent', to: TerminalStatus, result: CommandResult | null, at: number): Promise<boolean> {
    const res = await this.pool.query('UPDATE commands SET status = $1, result = $2, finished_at = $3 WHERE id = $4 AND status = $5', [
      to,
      result ? JSON.stringify(result) : null,
      at,
      id,
      from,
    ]);
    return res.rowCount === 1;
  }

  async progress(id: string, result: CommandResult): Promise<void> {
    await this.pool.query(`UPDATE commands SET result = $1 WHERE id = $2 AND status = 'sent'`, [JSON.stringify(result), id]);
  }

  async withdraw(id: string): Promise<boolean> {
    return (await this.pool.query(`DELETE FROM commands WHERE id = $1 AND status = 'queued'`, [id])).rowCount === 1;
  }

  async pending(): Promise<CommandRow[]> {
    return (await this.pool.query<CommandRow>(`SELECT ${COLS} FROM commands WHERE status IN ('queued', 'sent') ORDER BY seq`)).rows;
  }

  async dueForExpiry(now: number): Promise<CommandRow[]> {
    return (await this.pool.query<CommandRow>(`SELECT ${COLS} FROM commands WHERE status = 'queued' AND expires_at <= $1 ORDER BY seq`, [now])).rows;
  }

  async nodesWithQueued(): Promise<string[]> {
    const res = await this.pool.query<{ node: string }>(`SELECT DISTINCT node_name AS node FROM commands WHERE status = 'queued'`);
    return res.rows.map((r) => r.node);
  }

  async count(status: CommandStatus): Promise<number> {
    return (await this.pool.query<{ n: number }>('SELECT COUNT(*) AS n FROM commands WHERE status = $1', [status])).rows[0]?.n ?? 0;
  }

  async list(f: ListFilter): Promise<CommandRow[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const param = (v: string | number) => `$${params.push(v)}`;
    if (f.node !== undefined) where.push(`node_name = ${param(f.node)}`);
    if (f.status !== undefined) where.push(`status = ${param(f.status)}`);
    if (f.batchId !== undefined) where.push(`batch_id = ${param(f.batchId)}`);
    if (f.kind !== undefined) where.push(`kind = ${param(f.kind)}`);
    if (f.beforeSeq !== undefined) where.push(`seq < ${param(f.beforeSeq)}`);
    const sql = `SELECT ${COLS} FROM commands ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ${param(f.limit)}`;
    return (await this.pool.query<CommandRow>(sql, params)).rows;
  }

  async installedPotTypes(limit: number): Promise<string[]> {
    const res = await this.pool.query<{ t: string }>(
      `SELECT DISTINCT t FROM (SELECT command::json -> 'InstallPot' ->> 'honeypot_type' AS t FROM commands WHERE kind = 'InstallPot') s
       WHERE t IS NOT NULL LIMIT $1`,
      [limit],
    );
    return res.rows.map((r) => r.t);
  }

  async knownNodes(names: string[]): Promise<Map<string, string>> {
    const res = await this.pool.query<{ name: string; e: string }>('SELECT name, enrollment AS e FROM nodes WHERE name = ANY($1::text[])', [names]);
    return new Map(res.rows.map((r) => [r.name, r.e]));
  }

  async selectNodes(statuses?: string[]): Promise<string[]> {
    // COLLATE "C": names in byte order, as SQLite sorts them, whatever the database's collation.
    const res = await this.pool.query<{ name: string }>(
      `SELECT name FROM nodes WHERE enrollment IN ('approved', 'enrolled') AND ($1::text[] IS NULL OR status = ANY($1::text[]))
       ORDER BY name COLLATE "C"`,
      [statuses ?? null],
    );
    return res.rows.map((r) => r.name);
  }

  private async one(sql: string, params: unknown[]): Promise<CommandRow | undefined> {
    return (await this.pool.query<CommandRow>(sql, params)).rows[0];
  }

  private inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inPgTransaction(this.pool, work);
  }
}
