// The command store in SQLite (table commands). Statements are prepared once; each method runs
// synchronously on the core's connection and resolves at once. SQLite has one writer at a time,
// so every statement (markSent's checks included) is atomic, even when several instances share
// the file (session routing tests do). seq comes from this process's counter, moved past the
// newest row's at each insert (see insert).
import { and, desc, eq, inArray, lt, type SQL } from 'drizzle-orm';
import type { DatabaseHandle } from '../db/index.js';
import { commands, nodes } from '../db/schema.js';
import { queuedRow, type CommandRow, type CommandStore, type ListFilter, type NewCommand } from './store.js';
import type { CommandResult, CommandStatus, TerminalStatus } from './types.js';

// Raw statements return column names as stored; aliased so rows match CommandRow.
const COLS = `id, seq, node_name AS nodeName, kind, pot_id AS potId, command, status, result,
  batch_id AS batchId, requested_by AS requestedBy, created_at AS createdAt, sent_at AS sentAt,
  finished_at AS finishedAt, expires_at AS expiresAt`;

interface Stmt<P extends unknown[], R = unknown> {
  get(...p: P): R | undefined;
  all(...p: P): R[];
  run(...p: P): { changes: number };
}

export class SqliteCommandStore implements CommandStore {
  private readonly db: DatabaseHandle['db'];
  private readonly sqlite: DatabaseHandle['sqlite'];
  private nextSeq: number;
  private readonly stmt: {
    insert: Stmt<[string, number, string, string, string | null, string, string | null, string | null, number, number]>;
    get: Stmt<[string], CommandRow>;
    inFlight: Stmt<[string], CommandRow>;
    earlierQueued: Stmt<[string, number], { id: string }>;
    nextQueued: Stmt<[string], CommandRow>;
    markSent: Stmt<[number, string]>;
    unmarkSent: Stmt<[string]>;
    finish: Stmt<[string, string | null, number, string, string]>;
    progress: Stmt<[string, string]>;
    deleteQueued: Stmt<[string]>;
    pending: Stmt<[], CommandRow>;
    dueExpiry: Stmt<[number], CommandRow>;
    countByStatus: Stmt<[string], { n: number }>;
    nodesWithQueued: Stmt<[], { node: string }>;
    installedPotTypes: Stmt<[number], { t: string }>;
    newestSeq: Stmt<[], { seq: number }>;
  };

  constructor(handle: DatabaseHandle) {
    this.db = handle.db;
    this.sqlite = handle.sqlite;
    const s = handle.sqlite;
    const prepare = <P extends unknown[], R = unknown>(sql: string) => s.prepare(sql) as unknown as Stmt<P, R>;
    this.stmt = {
      insert: prepare(
        `INSERT INTO commands (id, seq, node_name, kind, pot_id, command, status, batch_id, requested_by, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
      ),
      get: prepare(`SELECT ${COLS} FROM commands WHERE id = ?`),
      inFlight: prepare(`SELECT ${COLS} FROM commands WHERE node_name = ? AND status = 'sent' ORDER BY seq LIMIT 1`),
      earlierQueued: prepare(
        `SELECT id FROM commands WHERE node_name = ? AND status = 'queued' AND seq < ? ORDER BY seq LIMIT 1`,
      ),
      nextQueued: prepare(`SELECT ${COLS} FROM commands WHERE node_name = ? AND status = 'queued' ORDER BY seq LIMIT 1`),
      // The checks of the delivery loop, repeated in the UPDATE itself (both use
      // commands_node_status_seq_idx): the claim holds whatever ran between check and claim.
      markSent: prepare(
        `UPDATE commands SET status = 'sent', sent_at = ? WHERE id = ? AND status = 'queued'
           AND NOT EXISTS (SELECT 1 FROM commands o WHERE o.node_name = commands.node_name AND o.status = 'sent')
           AND NOT EXISTS (SELECT 1 FROM commands o WHERE o.node_name = commands.node_name AND o.status = 'queued' AND o.seq < commands.seq)`,
      ),
      unmarkSent: prepare(`UPDATE commands SET status = 'queued', sent_at = NULL WHERE id = ? AND status = 'sent'`),
      finish: prepare(
        `UPDATE commands SET status = ?, result = ?, finished_at = ? WHERE id = ? AND status = ?`,
      ),
      progress: prepare(`UPDATE commands SET result = ? WHERE id = ? AND status = 'sent'`),
      deleteQueued: prepare(`DELETE FROM commands WHERE id = ? AND status = 'queued'`),
      pending: prepare(`SELECT ${COLS} FROM commands WHERE status IN ('queued', 'sent') ORDER BY seq`),
      dueExpiry: prepare(`SELECT ${COLS} FROM commands WHERE status = 'queued' AND expires_at <= ? ORDER BY seq`),
      countByStatus: prepare('SELECT COUNT(*) AS n FROM commands WHERE status = ?'),
      nodesWithQueued: prepare(`SELECT DISTINCT node_name AS node FROM commands WHERE status = 'queued'`),
      installedPotTypes: prepare(
        "SELECT DISTINCT json_extract(command, '$.InstallPot.honeypot_type') AS t FROM commands WHERE kind = 'InstallPot' AND t IS NOT NULL LIMIT ?",
      ),
      newestSeq: prepare('SELECT seq FROM commands ORDER BY rowid DESC LIMIT 1'),
    };
    const max = s.prepare('SELECT MAX(seq) AS m FROM commands').get() as { m: number | null };
    this.nextSeq = (max.m ?? 0) + 1;
  }

  /**
   * seq comes from this process's counter (seeded from MAX(seq) at start), moved past the newest
   * row's when another process sharing the file inserted since: the write lock is taken first
   * (IMMEDIATE), so the newest row (highest rowid) holds the highest seq and no two writers hand
   * out the same one.
   */
  async insert(rows: NewCommand[]): Promise<CommandRow[]> {
    const out: CommandRow[] = [];
    this.sqlite.transaction(() => {
      const newest = this.stmt.newestSeq.get();
      if (newest && newest.seq >= this.nextSeq) this.nextSeq = newest.seq + 1;
      for (const r of rows) {
        const seq = this.nextSeq++;
        const json = JSON.stringify(r.command);
        this.stmt.insert.run(r.id, seq, r.nodeName, r.kind, r.potId, json, r.batchId, r.requestedBy, r.createdAt, r.expiresAt);
        out.push(queuedRow(r, seq, json));
      }
    }).immediate();
    return out;
  }

  async get(id: string): Promise<CommandRow | undefined> {
    return this.stmt.get.get(id);
  }

  async inFlight(node: string): Promise<CommandRow | undefined> {
    return this.stmt.inFlight.get(node);
  }

  async hasEarlierQueued(node: string, seq: number): Promise<boolean> {
    return this.stmt.earlierQueued.get(node, seq) !== undefined;
  }

  async nextQueued(node: string): Promise<CommandRow | undefined> {
    return this.stmt.nextQueued.get(node);
  }

  async markSent(id: string, at: number): Promise<boolean> {
    return this.stmt.markSent.run(at, id).changes === 1;
  }

  async unmarkSent(id: string): Promise<boolean> {
    return this.stmt.unmarkSent.run(id).changes === 1;
  }

  async finish(id: string, from: 'queued' | 'sent', to: TerminalStatus, result: CommandResult | null, at: number): Promise<boolean> {
    return this.stmt.finish.run(to, result ? JSON.stringify(result) : null, at, id, from).changes === 1;
  }

  async progress(id: string, result: CommandResult): Promise<void> {
    this.stmt.progress.run(JSON.stringify(result), id);
  }

  async withdraw(id: string): Promise<boolean> {
    return this.stmt.deleteQueued.run(id).changes === 1;
  }

  async pending(): Promise<CommandRow[]> {
    return this.stmt.pending.all();
  }

  async dueForExpiry(now: number): Promise<CommandRow[]> {
    return this.stmt.dueExpiry.all(now);
  }

  async nodesWithQueued(): Promise<string[]> {
    return this.stmt.nodesWithQueued.all().map((r) => r.node);
  }

  async count(status: CommandStatus): Promise<number> {
    return this.stmt.countByStatus.get(status)?.n ?? 0;
  }

  async list(f: ListFilter): Promise<CommandRow[]> {
    const conds: SQL[] = [];
    if (f.node !== undefined) conds.push(eq(commands.nodeName, f.node));
    if (f.status !== undefined) conds.push(eq(commands.status, f.status));
    if (f.batchId !== undefined) conds.push(eq(commands.batchId, f.batchId));
    if (f.kind !== undefined) conds.push(eq(commands.kind, f.kind));
    if (f.beforeSeq !== undefined) conds.push(lt(commands.seq, f.beforeSeq));
    return this.db
      .select()
      .from(commands)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(desc(commands.seq))
      .limit(f.limit)
      .all();
  }

  async installedPotTypes(limit: number): Promise<string[]> {
    return this.stmt.installedPotTypes.all(limit).map((r) => r.t);
  }

  async knownNodes(names: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    // Chunked: SQLite caps the number of bound parameters per statement.
    for (let i = 0; i < names.length; i += 500) {
      const chunk = names.slice(i, i + 500);
      for (const r of this.db.select({ name: nodes.name, e: nodes.enrollment }).from(nodes).where(inArray(nodes.name, chunk)).all()) {
        out.set(r.name, r.e);
      }
    }
    return out;
  }

  async selectNodes(statuses?: string[]): Promise<string[]> {
    const conds: SQL[] = [inArray(nodes.enrollment, ['approved', 'enrolled'])];
    if (statuses) conds.push(inArray(nodes.status, statuses));
    return this.db
      .select({ name: nodes.name })
      .from(nodes)
      .where(and(...conds))
      .orderBy(nodes.name)
      .all()
      .map((r) => r.name);
  }
}
