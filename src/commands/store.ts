// The commands table is the authority on a command's status: every transition is a
// compare-and-set on `status`, so the worker, the answer tracker, the expiry sweep and cancel can
// race freely and exactly one of them wins each transition.
import { and, desc, eq, inArray, lt, type SQL } from 'drizzle-orm';
import type { DatabaseHandle } from '../db/index.js';
import { commands, nodes } from '../db/schema.js';
import type { NodeCommandBody } from '../protocol/index.js';
import type { CommandKind, CommandResult, CommandStatus, CommandView, TerminalStatus } from './types.js';

export type CommandRow = typeof commands.$inferSelect;

export interface NewCommand {
  id: string;
  nodeName: string;
  kind: CommandKind;
  potId: string | null;
  command: NodeCommandBody;
  batchId: string | null;
  requestedBy: string | null;
  createdAt: number;
  expiresAt: number;
}

export interface ListFilter {
  node?: string;
  status?: CommandStatus;
  batchId?: string;
  kind?: CommandKind;
  /** Only commands with seq below this (paging, newest first). */
  beforeSeq?: number;
  limit: number;
}

// Raw statements return column names as stored; aliased so rows match drizzle's CommandRow.
const COLS = `id, seq, node_name AS nodeName, kind, pot_id AS potId, command, status, result,
  batch_id AS batchId, requested_by AS requestedBy, created_at AS createdAt, sent_at AS sentAt,
  finished_at AS finishedAt, expires_at AS expiresAt`;

interface Stmt<P extends unknown[], R = unknown> {
  get(...p: P): R | undefined;
  all(...p: P): R[];
  run(...p: P): { changes: number };
}

export class CommandStore {
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
    claimNext: Stmt<[number, string]>;
    unmarkSent: Stmt<[string]>;
    finish: Stmt<[string, string | null, number, string, string]>;
    progress: Stmt<[string, string]>;
    deleteQueued: Stmt<[string]>;
    pending: Stmt<[], CommandRow>;
    dueExpiry: Stmt<[number], CommandRow>;
    countByStatus: Stmt<[string], { n: number }>;
    nodesWithQueued: Stmt<[], { node: string }>;
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
      markSent: prepare(`UPDATE commands SET status = 'sent', sent_at = ? WHERE id = ? AND status = 'queued'`),
      claimNext: prepare(
        `UPDATE commands SET status = 'sent', sent_at = ? WHERE id = ? AND status = 'queued' AND NOT EXISTS (
           SELECT 1 FROM commands AS o WHERE o.node_name = commands.node_name
             AND (o.status = 'sent' OR (o.status = 'queued' AND o.seq < commands.seq)))`,
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
      newestSeq: prepare('SELECT seq FROM commands ORDER BY rowid DESC LIMIT 1'),
    };
    const max = s.prepare('SELECT MAX(seq) AS m FROM commands').get() as { m: number | null };
    this.nextSeq = (max.m ?? 0) + 1;
  }

  /**
   * Inserts commands with consecutive seq numbers in one transaction. seq comes from this process's
   * counter (seeded from MAX(seq) at start), moved past the newest row's when another instance
   * sharing the file inserted since: the write lock is taken first (IMMEDIATE), so the newest row
   * (highest rowid) holds the highest seq and no two writers hand out the same one.
   */
  insert(rows: NewCommand[]): CommandRow[] {
    const out: CommandRow[] = [];
    this.sqlite.transaction(() => {
      const newest = this.stmt.newestSeq.get();
      if (newest && newest.seq >= this.nextSeq) this.nextSeq = newest.seq + 1;
      for (const r of rows) {
        const seq = this.nextSeq++;
        const json = JSON.stringify(r.command);
        this.stmt.insert.run(
          r.id, seq, r.nodeName, r.kind, r.potId, json, r.batchId, r.requestedBy, r.createdAt, r.expiresAt,
        );
        out.push({
          id: r.id,
          seq,
          nodeName: r.nodeName,
          kind: r.kind,
          potId: r.potId,
          command: json,
          status: 'queued',
          result: null,
          batchId: r.batchId,
          requestedBy: r.requestedBy,
          createdAt: r.createdAt,
          sentAt: null,
          finishedAt: null,
          expiresAt: r.expiresAt,
        });
      }
    }).immediate();
    return out;
  }

  get(id: string): CommandRow | undefined {
    return this.stmt.get.get(id);
  }

  /** The node's command awaiting an answer, if any (at most one by construction). */
  inFlight(node: string): CommandRow | undefined {
    return this.stmt.inFlight.get(node);
  }

  hasEarlierQueued(node: string, seq: number): boolean {
    return this.stmt.earlierQueued.get(node, seq) !== undefined;
  }

  nextQueued(node: string): CommandRow | undefined {
    return this.stmt.nextQueued.get(node);
  }

  markSent(id: string, at: number): boolean {
    return this.stmt.markSent.run(at, id).changes === 1;
  }

  /**
   * markSent for delivery: only while nothing of the node is sent and no earlier command of it is
   * queued, checked in the same statement, so one-in-flight and order hold even when several
   * instances sharing the database deliver to one node around a session takeover.
   */
  claimNext(id: string, at: number): boolean {
    return this.stmt.claimNext.run(at, id).changes === 1;
  }

  /** Undoes markSent when the write to the node did not happen. */
  unmarkSent(id: string): boolean {
    return this.stmt.unmarkSent.run(id).changes === 1;
  }

  finish(id: string, from: 'queued' | 'sent', to: TerminalStatus, result: CommandResult | null, at: number): boolean {
    return this.stmt.finish.run(to, result ? JSON.stringify(result) : null, at, id, from).changes === 1;
  }

  progress(id: string, result: CommandResult): void {
    this.stmt.progress.run(JSON.stringify(result), id);
  }

  /** Withdraws a command that was never accepted (Redis refused it); false if it already moved on. */
  withdraw(id: string): boolean {
    return this.stmt.deleteQueued.run(id).changes === 1;
  }

  pending(): CommandRow[] {
    return this.stmt.pending.all();
  }

  dueForExpiry(now: number): CommandRow[] {
    return this.stmt.dueExpiry.all(now);
  }

  nodesWithQueued(): string[] {
    return this.stmt.nodesWithQueued.all().map((r) => r.node);
  }

  count(status: CommandStatus): number {
    return this.stmt.countByStatus.get(status)?.n ?? 0;
  }

  list(f: ListFilter): CommandRow[] {
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

  /** Distinct honeypot_type of the InstallPot commands in the table. */
  installedPotTypes(limit: number): string[] {
    return this.sqlite
      .prepare<[number], { t: string }>(
        "SELECT DISTINCT json_extract(command, '$.InstallPot.honeypot_type') AS t FROM commands WHERE kind = 'InstallPot' AND t IS NOT NULL LIMIT ?",
      )
      .all(limit)
      .map((r) => r.t);
  }

  /** Enrollment of a node, or undefined when the name is unknown. */
  nodeEnrollment(name: string): string | undefined {
    return this.db.select({ e: nodes.enrollment }).from(nodes).where(eq(nodes.name, name)).get()?.e;
  }

  knownNodes(names: string[]): Map<string, string> {
    const out = new Map<string, string>();
    // Chunked: SQLite caps the number of bound parameters per statement.
    for (let i = 0; i < names.length; i += 500) {
      const chunk = names.slice(i, i + 500);
      for (const r of this.db
        .select({ name: nodes.name, e: nodes.enrollment })
        .from(nodes)
        .where(inArray(nodes.name, chunk))
        .all()) {
        out.set(r.name, r.e);
      }
    }
    return out;
  }

  /** Nodes allowed to connect; with `statuses`, only those whose last reported status is one of them. */
  selectNodes(statuses?: string[]): string[] {
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

export function toView(row: CommandRow): CommandView {
  return {
    id: row.id,
    seq: row.seq,
    node: row.nodeName,
    kind: row.kind as CommandKind,
    potId: row.potId,
    command: JSON.parse(row.command) as NodeCommandBody,
    status: row.status as CommandStatus,
    result: row.result ? (JSON.parse(row.result) as CommandResult) : null,
    batchId: row.batchId,
    requestedBy: row.requestedBy,
    createdAt: new Date(row.createdAt).toISOString(),
    sentAt: row.sentAt === null ? null : new Date(row.sentAt).toISOString(),
    finishedAt: row.finishedAt === null ? null : new Date(row.finishedAt).toISOString(),
    expiresAt: new Date(row.expiresAt).toISOString(),
  };
}
