// Persistence of nodes, pots and the node lifecycle log. Operator-facing reads and writes go
// through drizzle; per-message paths (last_seen, pot status, node status) use prepared statements.
import { and, count, desc, eq, inArray, lt, ne, notInArray, type SQL } from 'drizzle-orm';
import type { DatabaseHandle } from '../db/index.js';
import { nodeLog, nodes, pots, unknownRegistrations } from '../db/schema.js';
import { truncateUtf8 } from './limits.js';

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

export type UnknownRegistrationRow = typeof unknownRegistrations.$inferSelect;

/** One address's unknown-name attempts since the last flush. */
export interface UnknownRegistrationDelta {
  addressKey: string;
  lastAddress: string;
  attempts: number;
  firstSeenAt: number;
  lastSeenAt: number;
  names: string[];
  lastResult: string;
}

export interface NodeStoreLimits {
  /** node_log.message cap, UTF-8 bytes. Default 4096. */
  logMessageMaxBytes?: number;
  /** pots.last_message cap, UTF-8 bytes. Default 4096. */
  potMessageMaxBytes?: number;
  /** node_log rows kept per node name (the newest). Default 10 000. */
  maxLogRowsPerNode?: number;
  /** Names kept in unknown_registrations.last_names. Default 10. */
  unknownNamesSample?: number;
  /** Pots stored per node; status lines for further new pot ids are not stored. Default 256. */
  maxPotsPerNode?: number;
  /** Called when a new pot of a node was not stored because the node is at maxPotsPerNode. */
  onPotCapped?: (nodeName: string) => void;
  /** Called when a peer-supplied string was cut to its cap. */
  onTruncated?: (field: 'node_log.message' | 'pots.last_message') => void;
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
  private readonly sqlite: DatabaseHandle['sqlite'];
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

  private readonly limits: Required<Omit<NodeStoreLimits, 'onTruncated' | 'onPotCapped'>> & Pick<NodeStoreLimits, 'onTruncated' | 'onPotCapped'>;
  private readonly potExists: { get(name: string, potId: string): unknown };
  private readonly potCount: { get(name: string): { n: number } | undefined };
  /** node_log rows written per name since that name was last trimmed to its cap. */
  private readonly logWrites = new Map<string, number>();
  private readonly trimLog: { run(name: string, name2: string, keep: number): { changes: number } };
  private readonly mergeUnknown: (deltas: UnknownRegistrationDelta[]) => void;

  constructor(handle: DatabaseHandle, limits: NodeStoreLimits = {}) {
    this.db = handle.db;
    this.sqlite = handle.sqlite;
    const s = handle.sqlite;
    this.limits = {
      logMessageMaxBytes: limits.logMessageMaxBytes ?? 4096,
      potMessageMaxBytes: limits.potMessageMaxBytes ?? 4096,
      maxLogRowsPerNode: limits.maxLogRowsPerNode ?? 10_000,
      unknownNamesSample: limits.unknownNamesSample ?? 10,
      maxPotsPerNode: limits.maxPotsPerNode ?? 256,
      onTruncated: limits.onTruncated,
      onPotCapped: limits.onPotCapped,
    };
    this.potExists = s.prepare('SELECT 1 FROM pots WHERE node_name = ? AND pot_id = ?');
    this.potCount = s.prepare<[string], { n: number }>('SELECT count(*) AS n FROM pots WHERE node_name = ?');
    // Keeps the newest `keep` rows of one name (the (node_name, at) index serves both lookups).
    this.trimLog = s.prepare(
      `DELETE FROM node_log WHERE node_name = ? AND id < (
         SELECT id FROM node_log WHERE node_name = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    );
    const getUnknown = s.prepare<[string], { attempts: number; first_seen_at: number; last_names: string }>(
      'SELECT attempts, first_seen_at, last_names FROM unknown_registrations WHERE address_key = ?',
    );
    const putUnknown = s.prepare(
      `INSERT INTO unknown_registrations (address_key, last_address, attempts, first_seen_at, last_seen_at, last_names, last_result)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (address_key) DO UPDATE SET last_address = excluded.last_address, attempts = excluded.attempts,
         first_seen_at = excluded.first_seen_at, last_seen_at = excluded.last_seen_at,
         last_names = excluded.last_names, last_result = excluded.last_result`,
    );
    this.mergeUnknown = s.transaction((deltas: UnknownRegistrationDelta[]) => {
      for (const d of deltas) {
        const old = getUnknown.get(d.addressKey);
        let names: string[] = [];
        try {
          const parsed: unknown = old ? JSON.parse(old.last_names) : [];
          if (Array.isArray(parsed)) names = parsed.filter((n): n is string => typeof n === 'string');
        } catch {
          names = [];
        }
        for (const n of d.names) {
          const at = names.indexOf(n);
          if (at >= 0) names.splice(at, 1);
          names.push(n);
        }
        names = names.slice(-this.limits.unknownNamesSample);
        putUnknown.run(
          d.addressKey,
          d.lastAddress,
          (old?.attempts ?? 0) + d.attempts,
          Math.min(old?.first_seen_at ?? d.firstSeenAt, d.firstSeenAt),
          d.lastSeenAt,
          JSON.stringify(names),
          d.lastResult,
        );
      }
    });
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
  insert(row: { name: string; enrollment: Enrollment; totpSecret?: string | null; address?: string | null; remoteAddress?: string | null; pendingSource?: string | null; now: number }): boolean {
    const res = this.db
      .insert(nodes)
      .values({
        name: row.name,
        enrollment: row.enrollment,
        totpSecret: row.totpSecret ?? null,
        address: row.address ?? null,
        remoteAddress: row.remoteAddress ?? null,
        pendingSource: row.pendingSource ?? null,
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

  /**
   * No session survives a restart: every node starts Offline, except `except` (online on another
   * instance sharing the database). Returns how many were not.
   */
  markAllOffline(reason: string, now: number, except?: ReadonlySet<string>): number {
    const keep = except && except.size > 0 ? notInArray(nodes.name, [...except]) : undefined;
    const res = this.db
      .update(nodes)
      .set({ status: 'Offline', disconnectReason: reason, disconnectedAt: now, updatedAt: now })
      .where(keep ? and(ne(nodes.status, 'Offline'), keep) : ne(nodes.status, 'Offline'))
      .run();
    return res.changes;
  }

  /** Writes many last_seen values in one transaction (one fsync-free commit instead of N). */
  touchAll(entries: [name: string, lastSeen: number][]): void {
    if (entries.length > 0) this.touchMany(entries);
  }

  /**
   * touchAll without waiting for another connection's write lock (the events writer thread holds it
   * through each batch commit, tens of ms under load): false, with nothing written, when the
   * database is busy. The periodic last_seen flush runs on the event loop and must not block it.
   */
  tryTouchAll(entries: [name: string, lastSeen: number][]): boolean {
    if (entries.length === 0) return true;
    const wait = this.sqlite.pragma('busy_timeout', { simple: true }) as number;
    this.sqlite.pragma('busy_timeout = 0');
    try {
      this.touchMany(entries);
      return true;
    } catch (err) {
      if (typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('SQLITE_BUSY')) return false;
      throw err;
    } finally {
      this.sqlite.pragma(`busy_timeout = ${Math.floor(wait)}`);
    }
  }

  setStatus(name: string, status: string, lastSeen: number): void {
    this.stmt.status.run(status, lastSeen, name);
  }

  /** Stores a pot's status; false (and onPotCapped) when it is a new pot of a node at its pot cap. */
  upsertPot(name: string, potId: string, potType: string, status: string, message: string | null, at: number): boolean {
    if (!this.potExists.get(name, potId) && (this.potCount.get(name)?.n ?? 0) >= this.limits.maxPotsPerNode) {
      this.limits.onPotCapped?.(name);
      return false;
    }
    this.stmt.potUpsert.run(name, potId, potType, status, this.capped(message, this.limits.potMessageMaxBytes, 'pots.last_message'), at);
    return true;
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

  /**
   * Appends to a node's log. The message is capped, and a name that keeps writing is trimmed to
   * its newest maxLogRowsPerNode rows every tenth of that many writes, so no peer grows the table
   * by more than ~10 % beyond its cap between trims.
   */
  log(name: string, kind: string, message: string | null, at: number): void {
    this.stmt.log.run(name, kind, this.capped(message, this.limits.logMessageMaxBytes, 'node_log.message'), at);
    const writes = (this.logWrites.get(name) ?? 0) + 1;
    if (writes >= Math.max(1, Math.floor(this.limits.maxLogRowsPerNode / 10))) {
      this.logWrites.delete(name);
      this.trimLog.run(name, name, this.limits.maxLogRowsPerNode - 1);
    } else {
      if (this.logWrites.size >= 100_000) this.logWrites.clear();
      this.logWrites.set(name, writes);
    }
  }

  /**
   * Retention of node_log: rows older than `before`, then every name beyond its row cap (for
   * names whose writes happened before this process started).
   */
  pruneLog(before: number): number {
    const sqlite = this.sqlite;
    let deleted = sqlite.prepare('DELETE FROM node_log WHERE at < ?').run(before).changes;
    const over = sqlite
      .prepare<[number], { node_name: string }>('SELECT node_name FROM node_log GROUP BY node_name HAVING count(*) > ?')
      .all(this.limits.maxLogRowsPerNode);
    for (const { node_name } of over) deleted += this.trimLog.run(node_name, node_name, this.limits.maxLogRowsPerNode - 1).changes;
    return deleted;
  }

  // ------------------------------------------------------------ pending nodes

  countPendingFrom(source: string): number {
    return this.db
      .select({ n: count() })
      .from(nodes)
      .where(and(eq(nodes.enrollment, 'pending'), eq(nodes.pendingSource, source)))
      .get()?.n ?? 0;
  }

  /**
   * Deletes pending nodes matching every given condition: first seen from `source`, created
   * before `createdBefore`, or not heard from since `updatedBefore`. Returns their names.
   */
  deletePending(where: { source?: string; createdBefore?: number; updatedBefore?: number }): string[] {
    const conds: SQL[] = [eq(nodes.enrollment, 'pending')];
    if (where.source !== undefined) conds.push(eq(nodes.pendingSource, where.source));
    if (where.createdBefore !== undefined) conds.push(lt(nodes.createdAt, where.createdBefore));
    if (where.updatedBefore !== undefined) conds.push(lt(nodes.updatedAt, where.updatedBefore));
    const names = this.db.select({ name: nodes.name }).from(nodes).where(and(...conds)).all().map((r) => r.name);
    for (let i = 0; i < names.length; i += 500) {
      this.db.delete(nodes).where(and(eq(nodes.enrollment, 'pending'), inArray(nodes.name, names.slice(i, i + 500)))).run();
    }
    return names;
  }

  // ------------------------------------------------------------ unknown-name registrations

  /** Adds attempts to the per-address aggregates, in one transaction. */
  recordUnknown(deltas: UnknownRegistrationDelta[]): void {
    if (deltas.length > 0) this.mergeUnknown(deltas);
  }

  listUnknown(limit: number): UnknownRegistrationRow[] {
    return this.db.select().from(unknownRegistrations).orderBy(desc(unknownRegistrations.lastSeenAt)).limit(limit).all();
  }

  /** Retention: aggregates not seen since `before`, then the oldest beyond `maxRows`. */
  pruneUnknown(before: number, maxRows: number): number {
    const sqlite = this.sqlite;
    let deleted = sqlite.prepare('DELETE FROM unknown_registrations WHERE last_seen_at < ?').run(before).changes;
    deleted += sqlite
      .prepare(
        `DELETE FROM unknown_registrations WHERE address_key IN (
           SELECT address_key FROM unknown_registrations ORDER BY last_seen_at DESC LIMIT -1 OFFSET ?)`,
      )
      .run(maxRows).changes;
    return deleted;
  }

  private capped(text: string | null, maxBytes: number, field: 'node_log.message' | 'pots.last_message'): string | null {
    if (text === null) return null;
    const cut = truncateUtf8(text, maxBytes);
    if (cut.truncated) this.limits.onTruncated?.(field);
    return cut.text;
  }

  logEntries(name: string, opts: { limit: number; before?: number }): NodeLogRow[] {
    const where = opts.before !== undefined
      ? and(eq(nodeLog.nodeName, name), lt(nodeLog.at, opts.before))
      : eq(nodeLog.nodeName, name);
    return this.db.select().from(nodeLog).where(where).orderBy(desc(nodeLog.at), desc(nodeLog.id)).limit(opts.limit).all();
  }
}
