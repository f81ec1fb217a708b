// The node domain's tables in SQLite. Operator-facing reads and writes go through drizzle;
// per-message paths (last_seen, pot status, node status, TOTP claims) use prepared statements.
// Every method does its work when called (better-sqlite3 is synchronous), so calls made one after
// the other reach the database in that order even when nobody awaits them.
import { and, count, desc, eq, inArray, lt, ne, notInArray, type SQL } from 'drizzle-orm';
import type { DatabaseHandle } from '../db/index.js';
import { nodeLog, nodes, pots, unknownRegistrations } from '../db/schema.js';
import { cappedText, LogTrimSchedule, mergeNameSample, registeredValues, resolveLimits, type ResolvedNodeStoreLimits } from './store-rules.js';
import {
  POT_MISSING,
  type Enrollment,
  type NewNode,
  type NodeChanges,
  type NodeListFilter,
  type NodeLogRow,
  type NodeRow,
  type NodeStore,
  type NodeStoreLimits,
  type PotRow,
  type RegisteredInfo,
  type UnknownRegistrationDelta,
  type UnknownRegistrationRow,
} from './store.js';

export class SqliteNodeStore implements NodeStore {
  private readonly db: DatabaseHandle['db'];
  private readonly sqlite: DatabaseHandle['sqlite'];
  private readonly limits: ResolvedNodeStoreLimits;
  private readonly trims: LogTrimSchedule;
  private readonly touchMany: (entries: [name: string, lastSeen: number][]) => void;
  private readonly mergeUnknown: (deltas: UnknownRegistrationDelta[]) => void;
  private readonly stmt;

  constructor(handle: DatabaseHandle, limits: NodeStoreLimits = {}) {
    this.db = handle.db;
    const s = (this.sqlite = handle.sqlite);
    this.limits = resolveLimits(limits);
    this.trims = new LogTrimSchedule(this.limits.maxLogRowsPerNode);
    this.stmt = {
      status: s.prepare<[string, number, string]>('UPDATE nodes SET status = ?, last_seen_at = ? WHERE name = ?'),
      potExists: s.prepare<[string, string]>('SELECT 1 FROM pots WHERE node_name = ? AND pot_id = ?'),
      potCount: s.prepare<[string], { n: number }>('SELECT count(*) AS n FROM pots WHERE node_name = ?'),
      potType: s.prepare<[string, string], { pot_type: string }>('SELECT pot_type FROM pots WHERE node_name = ? AND pot_id = ?'),
      // A pot keeps its last known pot_type and last message when a status line arrives without
      // one (GetInstalledPots and GetPotStatus answers carry no message).
      potUpsert: s.prepare<[string, string, string, string, string | null, number]>(
        `INSERT INTO pots (node_name, pot_id, pot_type, status, last_message, updated_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (node_name, pot_id) DO UPDATE SET
           pot_type = CASE WHEN excluded.pot_type <> '' THEN excluded.pot_type ELSE pots.pot_type END,
           status = excluded.status, last_message = coalesce(excluded.last_message, pots.last_message),
           updated_at = excluded.updated_at`,
      ),
      log: s.prepare<[string, string, string | null, number]>('INSERT INTO node_log (node_name, kind, message, at) VALUES (?, ?, ?, ?)'),
      // Keeps the newest `keep` rows of one name (the (node_name, at) index serves both lookups).
      trimLog: s.prepare<[string, string, number]>(
        `DELETE FROM node_log WHERE node_name = ? AND id < (
           SELECT id FROM node_log WHERE node_name = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      ),
      cowriePot: s.prepare<[string], { pot_id: string }>(
        `SELECT pot_id FROM pots WHERE node_name = ? AND pot_type = 'cowrie'
         ORDER BY status = '${POT_MISSING}', status = 'Running' DESC, updated_at DESC, pot_id LIMIT 1`,
      ),
      claimStep: s.prepare<[number, number, string, string, number]>(
        `UPDATE nodes SET last_totp_step = ?, updated_at = ?
         WHERE name = ? AND totp_secret = ? AND enrollment = 'enrolled'
           AND (last_totp_step IS NULL OR last_totp_step < ?)`,
      ),
    };
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
        putUnknown.run(
          d.addressKey,
          d.lastAddress,
          (old?.attempts ?? 0) + d.attempts,
          Math.min(old?.first_seen_at ?? d.firstSeenAt, d.firstSeenAt),
          d.lastSeenAt,
          JSON.stringify(mergeNameSample(old?.last_names, d.names, this.limits.unknownNamesSample)),
          d.lastResult,
        );
      }
    });
    const touchOne = s.prepare<[number, string]>('UPDATE nodes SET last_seen_at = ? WHERE name = ?');
    this.touchMany = s.transaction((entries: [string, number][]) => {
      for (const [name, lastSeen] of entries) touchOne.run(lastSeen, name);
    });
  }

  /**
   * The node's cowrie pot, answered synchronously: the events domain's CowriePotLookup is a
   * synchronous hook (cached there), which only SQLite can serve without a cache of its own.
   */
  /** The stored type of a pot, synchronously ('' and unknown pots: undefined). */
  potTypeNow(name: string, potId: string): string | undefined {
    return this.stmt.potType.get(name, potId)?.pot_type || undefined;
  }

  cowriePotNow(name: string): string | undefined {
    return this.stmt.cowriePot.get(name)?.pot_id;
  }

  async get(name: string): Promise<NodeRow | undefined> {
    return this.db.select().from(nodes).where(eq(nodes.name, name)).get();
  }

  async list(filter: NodeListFilter = {}): Promise<NodeRow[]> {
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

  async countByEnrollment(enrollment: Enrollment): Promise<number> {
    return this.db.select({ n: count() }).from(nodes).where(eq(nodes.enrollment, enrollment)).get()?.n ?? 0;
  }

  async insert(row: NewNode): Promise<boolean> {
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

  async update(name: string, values: NodeChanges, now: number): Promise<boolean> {
    return this.updateNow(name, values, now);
  }

  async delete(name: string): Promise<boolean> {
    return this.db.delete(nodes).where(eq(nodes.name, name)).run().changes === 1;
  }

  async claimTotpStep(name: string, secret: string, step: number, now: number): Promise<boolean> {
    return this.stmt.claimStep.run(step, now, name, secret, step).changes === 1;
  }

  async confirmKey(name: string, secret: string, now: number): Promise<boolean> {
    const res = this.db
      .update(nodes)
      .set({ enrollment: 'enrolled', updatedAt: now })
      .where(and(eq(nodes.name, name), eq(nodes.totpSecret, secret), eq(nodes.enrollment, 'approved')))
      .run();
    return res.changes === 1;
  }

  async markRegistered(name: string, info: RegisteredInfo, now: number): Promise<void> {
    this.updateNow(name, registeredValues(info, now), now);
  }

  async markOffline(name: string, reason: string, lastSeen: number, now: number): Promise<void> {
    this.updateNow(name, { status: 'Offline', disconnectReason: reason, disconnectedAt: now, lastSeenAt: lastSeen }, now);
  }

  async markAllOffline(reason: string, now: number, except?: ReadonlySet<string>): Promise<number> {
    const keep = except && except.size > 0 ? notInArray(nodes.name, [...except]) : undefined;
    const res = this.db
      .update(nodes)
      .set({ status: 'Offline', disconnectReason: reason, disconnectedAt: now, updatedAt: now })
      .where(keep ? and(ne(nodes.status, 'Offline'), keep) : ne(nodes.status, 'Offline'))
      .run();
    return res.changes;
  }

  async setStatus(name: string, status: string, lastSeen: number): Promise<void> {
    this.stmt.status.run(status, lastSeen, name);
  }

  async touchAll(entries: [name: string, lastSeen: number][]): Promise<void> {
    if (entries.length > 0) this.touchMany(entries);
  }

  /**
   * The periodic last_seen flush runs on the event loop and must not block it: with busy_timeout
   * 0 for this one transaction, a write lock held by the events writer thread (tens of ms per
   * batch commit under load) makes it answer false at once instead of waiting.
   */
  async tryTouchAll(entries: [name: string, lastSeen: number][]): Promise<boolean> {
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

  async upsertPot(name: string, potId: string, potType: string, status: string, message: string | null, at: number): Promise<boolean> {
    if (!this.stmt.potExists.get(name, potId) && (this.stmt.potCount.get(name)?.n ?? 0) >= this.limits.maxPotsPerNode) {
      this.limits.onPotCapped?.(name);
      return false;
    }
    this.stmt.potUpsert.run(name, potId, potType, status, cappedText(this.limits, message, 'pots.last_message'), at);
    return true;
  }

  async markPotsMissing(name: string, reported: ReadonlySet<string>, since: number, at: number): Promise<string[]> {
    const gone = this.potsNow(name).filter((p) => p.status !== POT_MISSING && !reported.has(p.potId) && p.updatedAt < since);
    if (gone.length === 0) return [];
    this.db.transaction((tx) => {
      for (const p of gone) {
        tx.update(pots).set({ status: POT_MISSING, updatedAt: at }).where(and(eq(pots.nodeName, name), eq(pots.potId, p.potId))).run();
      }
    });
    return gone.map((p) => p.potId);
  }

  async cowriePot(name: string): Promise<string | undefined> {
    return this.cowriePotNow(name);
  }

  async pots(name: string): Promise<PotRow[]> {
    return this.potsNow(name);
  }

  async log(name: string, kind: string, message: string | null, at: number): Promise<void> {
    this.stmt.log.run(name, kind, cappedText(this.limits, message, 'node_log.message'), at);
    if (this.trims.wrote(name)) this.stmt.trimLog.run(name, name, this.limits.maxLogRowsPerNode - 1);
  }

  async logEntries(name: string, opts: { limit: number; before?: number }): Promise<NodeLogRow[]> {
    const where = opts.before !== undefined ? and(eq(nodeLog.nodeName, name), lt(nodeLog.at, opts.before)) : eq(nodeLog.nodeName, name);
    return this.db.select().from(nodeLog).where(where).orderBy(desc(nodeLog.at), desc(nodeLog.id)).limit(opts.limit).all();
  }

  async pruneLog(before: number): Promise<number> {
    const sqlite = this.sqlite;
    let deleted = sqlite.prepare('DELETE FROM node_log WHERE at < ?').run(before).changes;
    const over = sqlite
      .prepare<[number], { node_name: string }>('SELECT node_name FROM node_log GROUP BY node_name HAVING count(*) > ?')
      .all(this.limits.maxLogRowsPerNode);
    for (const { node_name } of over) deleted += this.stmt.trimLog.run(node_name, node_name, this.limits.maxLogRowsPerNode - 1).changes;
    return deleted;
  }

  async countPendingFrom(source: string): Promise<number> {
    return (
      this.db
        .select({ n: count() })
        .from(nodes)
        .where(and(eq(nodes.enrollment, 'pending'), eq(nodes.pendingSource, source)))
        .get()?.n ?? 0
    );
  }

  async deletePending(where: { source?: string; createdBefore?: number; updatedBefore?: number }): Promise<string[]> {
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

  async recordUnknown(deltas: UnknownRegistrationDelta[]): Promise<void> {
    if (deltas.length > 0) this.mergeUnknown(deltas);
  }

  async listUnknown(limit: number): Promise<UnknownRegistrationRow[]> {
    return this.db.select().from(unknownRegistrations).orderBy(desc(unknownRegistrations.lastSeenAt)).limit(limit).all();
  }

  async pruneUnknown(before: number, maxRows: number): Promise<number> {
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

  private updateNow(name: string, values: NodeChanges, now: number): boolean {
    const res = this.db
      .update(nodes)
      .set({ ...values, updatedAt: now })
      .where(eq(nodes.name, name))
      .run();
    return res.changes === 1;
  }

  private potsNow(name: string): PotRow[] {
    return this.db.select().from(pots).where(eq(pots.nodeName, name)).orderBy(pots.potId).all();
  }
}
