// Persistence of nodes, pots and the node lifecycle log. Operator-facing reads and writes go
// through drizzle; per-message paths (last_seen, pot status, node status) use prepared statements.
import { and, count, desc, eq, lt, ne, type SQL } from 'drizzle-orm';
import type { DatabaseHandle } from '../db/index.js';
import { nodeLog, nodes, pots } from '../db/schema.js';

export type NodeRow = typeof nodes.$inferSelect;
export type PotRow = typeof pots.$inferSelect;
export type NodeLogRow = typeof nodeLog.$inferSelect;

export type Enrollment = 'pending' | 'approved' | 'enrolled' | 'revoked';

/** Status of a pot the node no longer reports (its GetInstalledPots answer left it out). */
export const POT_MISSING = 'missing';

export interface NodeListFilter {
  enrollment?: Enrollment;
  status?: string;
}

export interface RegisteredInfo {
  nodeId: string;
  nodeType: string;
  address: string;
  port: number;
  remoteAddress: string;
  transport: string;
}

export class NodeStore {
  private readonly db: DatabaseHandle['db'];
  private readonly touchMany: (entries: [name: string, lastSeen: number][]) => void;
  private readonly stmt: {
    status: { run(status: string, lastSeen: number, name: string): unknown };
    potUpsert: {
      run(name: string, potId: string, potType: string, status: string, message: string | null, at: number): unknown;
    };
    log: { run(name: string, kind: string, message: string | null, at: number): unknown };
    cowriePot: { get(name: string): { pot_id: string } | undefined };
    claimStep: { run(step: number, now: number, name: string, secret: string, step2: number): { changes: number } };
  };

  constructor(handle: DatabaseHandle) {
    this.db = handle.db;
    const s = handle.sqlite;
    const touchOne = s.prepare('UPDATE nodes SET last_seen_at = ? WHERE name = ?');
    this.touchMany = s.transaction((entries: [string, number][]) => {
      for (const [name, lastSeen] of entries) touchOne.run(lastSeen, name);
    });
    this.stmt = {
      status: s.prepare('UPDATE nodes SET status = ?, last_seen_at = ? WHERE name = ?'),
      // A pot keeps its last known pot_type and last message when a status line arrives without
      // one (GetInstalledPots and GetPotStatus answers carry no message).
      potUpsert: s.prepare(
        `INSERT INTO pots (node_name, pot_id, pot_type, status, last_message, updated_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (node_name, pot_id) DO UPDATE SET
           pot_type = CASE WHEN excluded.pot_type <> '' THEN excluded.pot_type ELSE pots.pot_type END,
           status = excluded.status, last_message = coalesce(excluded.last_message, pots.last_message),
           updated_at = excluded.updated_at`,
      ),
      log: s.prepare('INSERT INTO node_log (node_name, kind, message, at) VALUES (?, ?, ?, ?)'),
      cowriePot: s.prepare(
        `SELECT pot_id FROM pots WHERE node_name = ? AND pot_type = 'cowrie'
         ORDER BY status = '${POT_MISSING}', status = 'Running' DESC, updated_at DESC, pot_id LIMIT 1`,
      ),
      // Compare-and-set so two concurrent registrations cannot both spend the same code, and a
      // secret rotated meanwhile is not credited with a code of the old one.
      claimStep: s.prepare(
        `UPDATE nodes SET last_totp_step = ?, updated_at = ?
         WHERE name = ? AND totp_secret = ? AND enrollment = 'enrolled'
           AND (last_totp_step IS NULL OR last_totp_step < ?)`,
      ),
    };
  }

  get(name: string): NodeRow | undefined {
    return this.db.select().from(nodes).where(eq(nodes.name, name)).get();
  }

  list(filter: NodeListFilter = {}): NodeRow[] {
    const conds: SQL[] = [];
    if (filter.enrollment) conds.push(eq(nodes.enrollment, filter.enrollment));
    if (filter.status) conds.push(eq(nodes.status, filter.status));
    return this.db
      .select()
      .from(nodes)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(nodes.name)
      .all();
  }

  countByEnrollment(enrollment: Enrollment): number {
    return this.db.select({ n: count() }).from(nodes).where(eq(nodes.enrollment, enrollment)).get()?.n ?? 0;
  }

  /** Inserts a node; false when the name is taken. */
  insert(row: { name: string; enrollment: Enrollment; totpSecret?: string | null; address?: string | null; remoteAddress?: string | null; now: number }): boolean {
    const res = this.db
      .insert(nodes)
      .values({
        name: row.name,
        enrollment: row.enrollment,
        totpSecret: row.totpSecret ?? null,
        address: row.address ?? null,
        remoteAddress: row.remoteAddress ?? null,
        status: 'Offline',
        createdAt: row.now,
        updatedAt: row.now,
      })
      .onConflictDoNothing()
      .run();
    return res.changes === 1;
  }

  update(name: string, values: Partial<Omit<NodeRow, 'name' | 'createdAt'>>, now: number): boolean {
    const res = this.db
      .update(nodes)
      .set({ ...values, updatedAt: now })
      .where(eq(nodes.name, name))
      .run();
    return res.changes === 1;
  }

  delete(name: string): boolean {
    return this.db.delete(nodes).where(eq(nodes.name, name)).run().changes === 1;
  }

  /** Spends a TOTP time step for `secret`; false when it (or a later one) was already used. */
  claimTotpStep(name: string, secret: string, step: number, now: number): boolean {
    return this.stmt.claimStep.run(step, now, name, secret, step).changes === 1;
  }

  /** Marks a key issued in an ack as delivered, unless another key was issued since. */
  confirmKey(name: string, secret: string, now: number): boolean {
    const res = this.db
      .update(nodes)
      .set({ enrollment: 'enrolled', updatedAt: now })
      .where(and(eq(nodes.name, name), eq(nodes.totpSecret, secret), eq(nodes.enrollment, 'approved')))
      .run();
    return res.changes === 1;
  }

  markRegistered(name: string, info: RegisteredInfo, now: number): void {
    this.update(
      name,
      {
        nodeId: info.nodeId,
        nodeType: info.nodeType,
        address: info.address,
        port: info.port,
        remoteAddress: info.remoteAddress,
        transport: info.transport,
        status: 'Connected',
        connectedAt: now,
        lastSeenAt: now,
        disconnectedAt: null,
        disconnectReason: null,
      },
      now,
    );
  }

  markOffline(name: string, reason: string, lastSeen: number, now: number): void {
    this.update(name, { status: 'Offline', disconnectReason: reason, disconnectedAt: now, lastSeenAt: lastSeen }, now);
  }

  /** No session survives a restart: every node starts Offline. Returns how many were not. */
  markAllOffline(reason: string, now: number): number {
    const res = this.db
      .update(nodes)
      .set({ status: 'Offline', disconnectReason: reason, disconnectedAt: now, updatedAt: now })
      .where(ne(nodes.status, 'Offline'))
      .run();
    return res.changes;
  }

  /** Writes many last_seen values in one transaction (one fsync-free commit instead of N). */
  touchAll(entries: [name: string, lastSeen: number][]): void {
    if (entries.length > 0) this.touchMany(entries);
  }

  setStatus(name: string, status: string, lastSeen: number): void {
    this.stmt.status.run(status, lastSeen, name);
  }

  upsertPot(name: string, potId: string, potType: string, status: string, message: string | null, at: number): void {
    this.stmt.potUpsert.run(name, potId, potType, status, message, at);
  }

  /**
   * Marks every pot of the node not in `reported` and not updated since `since` as missing (kept,
   * with its type and last message). Returns the ids newly marked.
   */
  markPotsMissing(name: string, reported: ReadonlySet<string>, since: number, at: number): string[] {
    const gone = this.pots(name).filter((p) => p.status !== POT_MISSING && !reported.has(p.potId) && p.updatedAt < since);
    if (gone.length === 0) return [];
    this.db.transaction((tx) => {
      for (const p of gone) {
        tx.update(pots).set({ status: POT_MISSING, updatedAt: at }).where(and(eq(pots.nodeName, name), eq(pots.potId, p.potId))).run();
      }
    });
    return gone.map((p) => p.potId);
  }

  /** The node's cowrie pot: a Running one first, then the most recently updated; missing ones last. */
  cowriePot(name: string): string | undefined {
    return this.stmt.cowriePot.get(name)?.pot_id;
  }

  pots(name: string): PotRow[] {
    return this.db.select().from(pots).where(eq(pots.nodeName, name)).orderBy(pots.potId).all();
  }

  log(name: string, kind: string, message: string | null, at: number): void {
    this.stmt.log.run(name, kind, message, at);
  }

  logEntries(name: string, opts: { limit: number; before?: number }): NodeLogRow[] {
    const where = opts.before !== undefined
      ? and(eq(nodeLog.nodeName, name), lt(nodeLog.at, opts.before))
      : eq(nodeLog.nodeName, name);
    return this.db.select().from(nodeLog).where(where).orderBy(desc(nodeLog.at), desc(nodeLog.id)).limit(opts.limit).all();
  }
}
