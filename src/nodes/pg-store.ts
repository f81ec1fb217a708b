// The node domain's tables in PostgreSQL (drizzle/pg/): the same behaviour as sqlite-store.ts,
// checked by the same contract tests (test/nodes/store-contract.test.ts). Operator-facing reads and
// writes go through drizzle's pg dialect; per-message paths are one hand-written statement each
// (a pot status with its cap check, a batch of last_seen values, a TOTP claim), so no message costs
// more than one round trip. Text is ordered with COLLATE "C" (byte order), as SQLite orders it.
import { and, count, desc, eq, lt, sql, type SQL } from 'drizzle-orm';
import type pg from 'pg';
import { inPgTransaction, type PgDatabaseHandle } from '../db/index.js';
import { nodeLog, nodes, pots, unknownRegistrations } from '../db/pg-schema.js';
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

// Keeps the newest $2 + 1 rows of one name.
const TRIM_LOG = `DELETE FROM node_log WHERE node_name = $1 AND id < (
  SELECT id FROM node_log WHERE node_name = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)`;

export class PgNodeStore implements NodeStore {
  private readonly db: PgDatabaseHandle['db'];
  private readonly pool: pg.Pool;
  private readonly limits: ResolvedNodeStoreLimits;
  private readonly trims: LogTrimSchedule;

  constructor(handle: PgDatabaseHandle, limits: NodeStoreLimits = {}) {
    this.db = handle.db;
    this.pool = handle.pool;
    this.limits = resolveLimits(limits);
    this.trims = new LogTrimSchedule(this.limits.maxLogRowsPerNode);
  }

  async get(name: string): Promise<NodeRow | undefined> {
    return (await this.db.select().from(nodes).where(eq(nodes.name, name)).limit(1))[0];
  }

  async list(filter: NodeListFilter = {}): Promise<NodeRow[]> {
    const conds: SQL[] = [];
    if (filter.enrollment) conds.push(eq(nodes.enrollment, filter.enrollment));
    if (filter.status) conds.push(eq(nodes.status, filter.status));
    return this.db
      .select()
      .from(nodes)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(sql`${nodes.name} COLLATE "C"`);
  }

  async countByEnrollment(enrollment: Enrollment): Promise<number> {
    return (await this.db.select({ n: count() }).from(nodes).where(eq(nodes.enrollment, enrollment)))[0]?.n ?? 0;
  }

  async insert(row: NewNode): Promise<boolean> {
    const res = await this.db
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
      .onConflictDoNothing();
    return res.rowCount === 1;
  }

  async update(name: string, values: NodeChanges, now: number): Promise<boolean> {
    const res = await this.db
      .update(nodes)
      .set({ ...values, updatedAt: now })
      .where(eq(nodes.name, name));
    return res.rowCount === 1;
  }

  async delete(name: string): Promise<boolean> {
    return (await this.db.delete(nodes).where(eq(nodes.name, name))).rowCount === 1;
  }

  async claimTotpStep(name: string, secret: string, step: number, now: number): Promise<boolean> {
    // One UPDATE: of two concurrent claims of one step, the second waits for the first's row lock
    // and, re-checking its WHERE on the updated row (READ COMMITTED), matches nothing.
    const res = await this.pool.query(
      `UPDATE nodes SET last_totp_step = $1, updated_at = $2
       WHERE name = $3 AND totp_secret = $4 AND enrollment = 'enrolled'
         AND (last_totp_step IS NULL OR last_totp_step < $1)`,
      [step, now, name, secret],
    );
    return res.rowCount === 1;
  }

  async confirmKey(name: string, secret: string, now: number): Promise<boolean> {
    const res = await this.pool.query(
      "UPDATE nodes SET enrollment = 'enrolled', updated_at = $1 WHERE name = $2 AND totp_secret = $3 AND enrollment = 'approved'",
      [now, name, secret],
    );
    return res.rowCount === 1;
  }

  async markRegistered(name: string, info: RegisteredInfo, now: number): Promise<void> {
    await this.update(name, registeredValues(info, now), now);
  }

  async markOffline(name: string, reason: string, lastSeen: number, now: number): Promise<void> {
    await this.pool.query(
      "UPDATE nodes SET status = 'Offline', disconnect_reason = $1, disconnected_at = $2, last_seen_at = $3, updated_at = $2 WHERE name = $4",
      [reason, now, lastSeen, name],
    );
  }

  async markAllOffline(reason: string, now: number, except?: ReadonlySet<string>): Promise<number> {
    const res = await this.pool.query(
      `UPDATE nodes SET status = 'Offline', disconnect_reason = $1, disconnected_at = $2, updated_at = $2
        WHERE status <> 'Offline' AND NOT (name = ANY($3::text[]))`,
      [reason, now, [...(except ?? [])]],
    );
    return res.rowCount ?? 0;
  }

  async setStatus(name: string, status: string, lastSeen: number): Promise<void> {
    await this.pool.query('UPDATE nodes SET status = $1, last_seen_at = $2 WHERE name = $3', [status, lastSeen, name]);
  }

  async touchAll(entries: [name: string, lastSeen: number][]): Promise<void> {
    if (entries.length === 0) return;
    // One statement for the whole batch (a statement is its own transaction). In name order, so
    // two cores touching overlapping names (a node moving over) lock them in the same order.
    entries = [...entries].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    await this.pool.query(
      `UPDATE nodes AS n SET last_seen_at = v.last_seen
       FROM unnest($1::text[], $2::bigint[]) AS v(name, last_seen) WHERE n.name = v.name`,
      [entries.map((e) => e[0]), entries.map((e) => e[1])],
    );
  }

  async tryTouchAll(entries: [name: string, lastSeen: number][]): Promise<boolean> {
    // No database-wide write lock to wait for here: rows are locked one by one, briefly.
    await this.touchAll(entries);
    return true;
  }

  async upsertPot(name: string, potId: string, potType: string, status: string, message: string | null, at: number): Promise<boolean> {
    // The cap check and the write in one statement: a known pot is always updated, a new one only
    // while the node has fewer than maxPotsPerNode. A pot keeps its last known pot_type and last
    // message when a status line arrives without one.
    const res = await this.pool.query(
      `INSERT INTO pots (node_name, pot_id, pot_type, status, last_message, updated_at)
       SELECT $1, $2, $3, $4, $5, $6
       WHERE EXISTS (SELECT 1 FROM pots WHERE node_name = $1 AND pot_id = $2)
          OR (SELECT count(*) FROM pots WHERE node_name = $1) < $7
       ON CONFLICT (node_name, pot_id) DO UPDATE SET
         pot_type = CASE WHEN excluded.pot_type <> '' THEN excluded.pot_type ELSE pots.pot_type END,
         status = excluded.status, last_message = coalesce(excluded.last_message, pots.last_message),
         updated_at = excluded.updated_at`,
      [name, potId, potType, status, cappedText(this.limits, message, 'pots.last_message'), at, this.limits.maxPotsPerNode],
    );
    if (res.rowCount === 1) return true;
    this.limits.onPotCapped?.(name);
    return false;
  }

  async markPotsMissing(name: string, reported: ReadonlySet<string>, since: number, at: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ potId: string }>(
      `WITH gone AS (
         UPDATE pots SET status = '${POT_MISSING}', updated_at = $4
         WHERE node_name = $1 AND status <> '${POT_MISSING}' AND updated_at < $3 AND NOT (pot_id = ANY($2::text[]))
         RETURNING pot_id)
       SELECT pot_id AS "potId" FROM gone ORDER BY pot_id COLLATE "C"`,
      [name, [...reported], since, at],
    );
    return rows.map((r) => r.potId);
  }

  async cowriePot(name: string): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ potId: string }>(
      `SELECT pot_id AS "potId" FROM pots WHERE node_name = $1 AND pot_type = 'cowrie'
       ORDER BY status = '${POT_MISSING}', status = 'Running' DESC, updated_at DESC, pot_id COLLATE "C" LIMIT 1`,
      [name],
    );
    return rows[0]?.potId;
  }

  async pots(name: string): Promise<PotRow[]> {
    return this.db
      .select()
      .from(pots)
      .where(eq(pots.nodeName, name))
      .orderBy(sql`${pots.potId} COLLATE "C"`);
  }

  async log(name: string, kind: string, message: string | null, at: number): Promise<void> {
    await this.pool.query('INSERT INTO node_log (node_name, kind, message, at) VALUES ($1, $2, $3, $4)', [
      name,
      kind,
      cappedText(this.limits, message, 'node_log.message'),
      at,
    ]);
    if (this.trims.wrote(name)) await this.pool.query(TRIM_LOG, [name, this.limits.maxLogRowsPerNode - 1]);
  }

  async logEntries(name: string, opts: { limit: number; before?: number }): Promise<NodeLogRow[]> {
    const where = opts.before !== undefined ? and(eq(nodeLog.nodeName, name), lt(nodeLog.at, opts.before)) : eq(nodeLog.nodeName, name);
    return this.db.select().from(nodeLog).where(where).orderBy(desc(nodeLog.at), desc(nodeLog.id)).limit(opts.limit);
  }

  async pruneLog(before: number): Promise<number> {
    let deleted = (await this.pool.query('DELETE FROM node_log WHERE at < $1', [before])).rowCount ?? 0;
    const { rows: over } = await this.pool.query<{ name: string }>('SELECT node_name AS name FROM node_log GROUP BY node_name HAVING count(*) > $1', [
      this.limits.maxLogRowsPerNode,
    ]);
    for (const { name } of over) deleted += (await this.pool.query(TRIM_LOG, [name, this.limits.maxLogRowsPerNode - 1])).rowCount ?? 0;
    return deleted;
  }

  async countPendingFrom(source: string): Promise<number> {
    return (await this.db.select({ n: count() }).from(nodes).where(and(eq(nodes.enrollment, 'pending'), eq(nodes.pendingSource, source))))[0]?.n ?? 0;
  }

  async deletePending(where: { source?: string; createdBefore?: number; updatedBefore?: number }): Promise<string[]> {
    const conds = ["enrollment = 'pending'"];
    const params: (string | number)[] = [];
    if (where.source !== undefined) conds.push(`pending_source = $${params.push(where.source)}`);
    if (where.createdBefore !== undefined) conds.push(`created_at < $${params.push(where.createdBefore)}`);
    if (where.updatedBefore !== undefined) conds.push(`updated_at < $${params.push(where.updatedBefore)}`);
    const { rows } = await this.pool.query<{ name: string }>(
      `WITH gone AS (DELETE FROM nodes WHERE ${conds.join(' AND ')} RETURNING name) SELECT name FROM gone ORDER BY name COLLATE "C"`,
      params,
    );
    return rows.map((r) => r.name);
  }

  async recordUnknown(deltas: UnknownRegistrationDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    // Several cores may flush the same address at once: its row is created if missing, then locked
    // (FOR UPDATE, in key order so two flushes cannot deadlock) while the name sample is merged.
    const sorted = [...deltas].sort((a, b) => (a.addressKey < b.addressKey ? -1 : a.addressKey > b.addressKey ? 1 : 0));
    const keys = sorted.map((d) => d.addressKey);
    await inPgTransaction(this.pool, async (client) => {
      // Placeholder rows for new addresses, filled in by the UPDATE below; RETURNING names them.
      const created = await client.query<{ key: string }>(
        `INSERT INTO unknown_registrations (address_key, last_address, attempts, first_seen_at, last_seen_at, last_names, last_result)
         SELECT k, '', 0, 0, 0, '[]', '' FROM unnest($1::text[]) AS k ON CONFLICT (address_key) DO NOTHING RETURNING address_key AS key`,
        [keys],
      );
      const fresh = new Set(created.rows.map((r) => r.key));
      const { rows } = await client.query<{ key: string; attempts: number; firstSeenAt: number; lastNames: string }>(
        `SELECT address_key AS key, attempts, first_seen_at AS "firstSeenAt", last_names AS "lastNames" FROM unknown_registrations
         WHERE address_key = ANY($1::text[]) ORDER BY address_key COLLATE "C" FOR UPDATE`,
        [keys],
      );
      const old = new Map(rows.filter((r) => !fresh.has(r.key)).map((r) => [r.key, r]));
      const merged = sorted.map((d) => {
        const o = old.get(d.addressKey);
        return {
          key: d.addressKey,
          lastAddress: d.lastAddress,
          attempts: (o?.attempts ?? 0) + d.attempts,
          firstSeenAt: Math.min(o?.firstSeenAt ?? d.firstSeenAt, d.firstSeenAt),
          lastSeenAt: d.lastSeenAt,
          lastNames: JSON.stringify(mergeNameSample(o?.lastNames, d.names, this.limits.unknownNamesSample)),
          lastResult: d.lastResult,
        };
      });
      await client.query(
        `UPDATE unknown_registrations AS u SET last_address = v.last_address, attempts = v.attempts, first_seen_at = v.first_seen_at,
           last_seen_at = v.last_seen_at, last_names = v.last_names, last_result = v.last_result
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])
           AS v(address_key, last_address, attempts, first_seen_at, last_seen_at, last_names, last_result)
         WHERE u.address_key = v.address_key`,
        [
          merged.map((m) => m.key),
          merged.map((m) => m.lastAddress),
          merged.map((m) => m.attempts),
          merged.map((m) => m.firstSeenAt),
          merged.map((m) => m.lastSeenAt),
          merged.map((m) => m.lastNames),
          merged.map((m) => m.lastResult),
        ],
      );
    });
  }

  async listUnknown(limit: number): Promise<UnknownRegistrationRow[]> {
    return this.db.select().from(unknownRegistrations).orderBy(desc(unknownRegistrations.lastSeenAt)).limit(limit);
  }

  async pruneUnknown(before: number, maxRows: number): Promise<number> {
    let deleted = (await this.pool.query('DELETE FROM unknown_registrations WHERE last_seen_at < $1', [before])).rowCount ?? 0;
    deleted +=
      (
        await this.pool.query(
          `DELETE FROM unknown_registrations WHERE address_key IN (
             SELECT address_key FROM unknown_registrations ORDER BY last_seen_at DESC OFFSET $1)`,
          [maxRows],
        )
      ).rowCount ?? 0;
    return deleted;
  }
}
