// What the command queue keeps in the database, and how it is read back. The commands table is the
// authority on a command's status: every transition is a compare-and-set on `status`, so the
// worker, the answer tracker, the expiry sweep and cancel can race freely (in one core or across
// cores sharing PostgreSQL) and exactly one of them wins each transition.
//
// The SQL lives behind this interface, in sqlite-store.ts and pg-store.ts; both pass the same
// contract tests (test/commands/store-contract.test.ts). Every method returns a Promise: PostgreSQL
// answers over a socket; the SQLite store (better-sqlite3 is synchronous) resolves at once.
import type { NodeCommandBody } from '../protocol/index.js';
import type { CommandKind, CommandResult, CommandStatus, CommandView, TerminalStatus } from './types.js';

/** One row of the commands table. */
export interface CommandRow {
  id: string;
  /** Delivery order: unique and increasing across the table (a node gets its commands by seq). */
  seq: number;
  nodeName: string;
  kind: string;
  potId: string | null;
  /** JSON of the command body as sent to the node. */
  command: string;
  status: string;
  /** JSON of the CommandResult, or null. */
  result: string | null;
  batchId: string | null;
  requestedBy: string | null;
  createdAt: number;
  sentAt: number | null;
  finishedAt: number | null;
  expiresAt: number;
}

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

export interface CommandStore {
  /**
   * Inserts commands, queued, in one transaction, with seq numbers that increase in the order of
   * `rows` and are above every seq committed before. A command committed after another of the
   * same node always has the higher seq (so delivery by seq is delivery in acceptance order).
   */
  insert(rows: NewCommand[]): Promise<CommandRow[]>;
  get(id: string): Promise<CommandRow | undefined>;
  /** The node's command awaiting an answer, if any (at most one: see markSent). */
  inFlight(node: string): Promise<CommandRow | undefined>;
  /** Whether a command of the node with a lower seq is still queued. */
  hasEarlierQueued(node: string, seq: number): Promise<boolean>;
  /** The node's queued command with the lowest seq. */
  nextQueued(node: string): Promise<CommandRow | undefined>;
  /**
   * Claims a queued command for sending (queued -> sent at `at`). Atomic with its checks: it
   * succeeds only when no other command of that node is sent and none with a lower seq is still
   * queued. That is the one-in-flight, in-order guarantee, held by the database whatever number
   * of workers (or cores) try at once. False when the command was not claimed.
   */
  markSent(id: string, at: number): Promise<boolean>;
  /** Undoes markSent when the write to the node did not happen. */
  unmarkSent(id: string): Promise<boolean>;
  /** `from` -> `to` (compare-and-set); false when the row was not in `from`. */
  finish(id: string, from: 'queued' | 'sent', to: TerminalStatus, result: CommandResult | null, at: number): Promise<boolean>;
  /** Records progress of a sent command (ignored once it is no longer sent). */
  progress(id: string, result: CommandResult): Promise<void>;
  /** Withdraws a command that was never accepted (Redis refused it); false if it already moved on. */
  withdraw(id: string): Promise<boolean>;
  /** Queued and sent commands, by seq. */
  pending(): Promise<CommandRow[]>;
  /** Queued commands whose expires_at <= now, by seq. */
  dueForExpiry(now: number): Promise<CommandRow[]>;
  nodesWithQueued(): Promise<string[]>;
  count(status: CommandStatus): Promise<number>;
  /** Newest (highest seq) first. */
  list(f: ListFilter): Promise<CommandRow[]>;
  /** Distinct honeypot_type of the InstallPot commands in the table (at most `limit`). */
  installedPotTypes(limit: number): Promise<string[]>;
  /** Enrollment of each of `names` that is a known node. */
  knownNodes(names: string[]): Promise<Map<string, string>>;
  /** Nodes allowed to connect, by name; with `statuses`, only those whose last reported status is one of them. */
  selectNodes(statuses?: string[]): Promise<string[]>;
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

/** The row `insert` reports for a new command. */
export function queuedRow(r: NewCommand, seq: number, json: string): CommandRow {
  return {
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
  };
}
