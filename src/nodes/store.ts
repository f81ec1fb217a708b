// What the node domain stores: nodes (enrollment, TOTP one-time use, session state), their pots,
// the node lifecycle log and the unknown-name registration aggregates. The SQL lives behind this
// interface, in sqlite-store.ts and pg-store.ts. Every method returns a Promise: PostgreSQL answers
// over a socket, and the SQLite store (better-sqlite3 is synchronous) does its work when called
// and resolves with the same results.
import type { nodeLog, nodes, pots, unknownRegistrations } from '../db/schema.js';

export type NodeRow = typeof nodes.$inferSelect;
export type PotRow = typeof pots.$inferSelect;
export type NodeLogRow = typeof nodeLog.$inferSelect;
export type UnknownRegistrationRow = typeof unknownRegistrations.$inferSelect;

export type Enrollment = 'pending' | 'approved' | 'enrolled' | 'revoked';

/** Status of a pot the node no longer reports (its GetInstalledPots answer left it out). */
export const POT_MISSING = 'missing';

export interface NodeListFilter {
  enrollment?: Enrollment;
  status?: string;
}

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

export interface NewNode {
  name: string;
  enrollment: Enrollment;
  totpSecret?: string | null;
  address?: string | null;
  remoteAddress?: string | null;
  pendingSource?: string | null;
  now: number;
}

export type NodeChanges = Partial<Omit<NodeRow, 'name' | 'createdAt'>>;

export interface NodeStore {
  get(name: string): Promise<NodeRow | undefined>;
  /** By name (byte order). */
  list(filter?: NodeListFilter): Promise<NodeRow[]>;
  countByEnrollment(enrollment: Enrollment): Promise<number>;
  /** Inserts a node (status Offline); false when the name is taken. */
  insert(row: NewNode): Promise<boolean>;
  /** Sets the given columns and updated_at = now; false when there is no such node. */
  update(name: string, values: NodeChanges, now: number): Promise<boolean>;
  /** Deletes the node and (cascade) its pots; its node_log stays. */
  delete(name: string): Promise<boolean>;

  /**
   * Spends a TOTP time step for `secret`: an atomic compare-and-set, so two registrations (on any
   * number of cores) cannot both spend the same code, and a secret rotated meanwhile is not
   * credited with a code of the old one. False when this step (or a later one) was already used,
   * the secret changed, or the node is not enrolled.
   */
  claimTotpStep(name: string, secret: string, step: number, now: number): Promise<boolean>;
  /** Marks a key issued in an ack as delivered (approved -> enrolled), unless another key was issued since. */
  confirmKey(name: string, secret: string, now: number): Promise<boolean>;

  markRegistered(name: string, info: RegisteredInfo, now: number): Promise<void>;
  markOffline(name: string, reason: string, lastSeen: number, now: number): Promise<void>;
  /**
   * No session survives a restart: every node starts Offline, except those in `except` (online on
   * another instance sharing the database, session routing). Resolves with how many were not.
   */
  markAllOffline(reason: string, now: number, except?: ReadonlySet<string>): Promise<number>;
  setStatus(name: string, status: string, lastSeen: number): Promise<void>;
  /** Writes many last_seen values in one transaction (one commit instead of N). */
  touchAll(entries: [name: string, lastSeen: number][]): Promise<void>;
  /**
   * touchAll without waiting for another writer's lock: false, with nothing written, when the
   * database is busy. (SQLite: the events writer thread holds the write lock through each batch
   * commit. PostgreSQL has row locks only, so it writes and answers true.)
   */
  tryTouchAll(entries: [name: string, lastSeen: number][]): Promise<boolean>;

  /** Stores a pot's status; false (and onPotCapped) when it is a new pot of a node at its pot cap. */
  upsertPot(name: string, potId: string, potType: string, status: string, message: string | null, at: number): Promise<boolean>;
  /**
   * Marks every pot of the node not in `reported` and not updated since `since` as missing (kept,
   * with its type and last message). Resolves with the ids newly marked.
   */
  markPotsMissing(name: string, reported: ReadonlySet<string>, since: number, at: number): Promise<string[]>;
  /** The node's cowrie pot: a Running one first, then the most recently updated; missing ones last. */
  cowriePot(name: string): Promise<string | undefined>;
  /** By pot id. */
  pots(name: string): Promise<PotRow[]>;

  /**
   * Appends to a node's log. The message is capped, and a name that keeps writing is trimmed to
   * its newest maxLogRowsPerNode rows every tenth of that many writes.
   */
  log(name: string, kind: string, message: string | null, at: number): Promise<void>;
  /** Newest first (at, then id). */
  logEntries(name: string, opts: { limit: number; before?: number }): Promise<NodeLogRow[]>;
  /** Retention of node_log: rows older than `before`, then every name beyond its row cap. */
  pruneLog(before: number): Promise<number>;

  countPendingFrom(source: string): Promise<number>;
  /**
   * Deletes pending nodes matching every given condition: first seen from `source`, created
   * before `createdBefore`, or not heard from since `updatedBefore`. Resolves with their names.
   */
  deletePending(where: { source?: string; createdBefore?: number; updatedBefore?: number }): Promise<string[]>;

  /** Adds attempts to the per-address aggregates, in one transaction. */
  recordUnknown(deltas: UnknownRegistrationDelta[]): Promise<void>;
  /** Latest seen first. */
  listUnknown(limit: number): Promise<UnknownRegistrationRow[]>;
  /** Retention: aggregates not seen since `before`, then the oldest beyond `maxRows`. */
  pruneUnknown(before: number, maxRows: number): Promise<number>;
}
