// Shapes shared by the command service, its store, its answer tracker and its routes.
import type { NodeCommandBody } from '../protocol/index.js';

/** Statuses one broadcast `{"status": [...]}` selector may list (each is one bound SQL parameter). */
export const MAX_SELECTOR_STATUSES = 32;

export const COMMAND_KINDS = [
  'InstallPot',
  'DeployPot',
  'StopPot',
  'RestartPot',
  'GetPotStatus',
  'GetPotInfo',
  'GetPotLogs',
  'GetPotMetrics',
  'GetInstalledPots',
  'Restart',
  'UpdateConfig',
] as const;
export type CommandKind = (typeof COMMAND_KINDS)[number];

export const COMMAND_STATUSES = ['queued', 'sent', 'succeeded', 'failed', 'expired', 'cancelled'] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];
export type TerminalStatus = 'succeeded' | 'failed' | 'expired' | 'cancelled';

export function isTerminal(status: string): status is TerminalStatus {
  return status === 'succeeded' || status === 'failed' || status === 'expired' || status === 'cancelled';
}

/**
 * What the command queue needs from the node gateway. `NodeGateway` from src/nodes satisfies it;
 * keeping it this small is what lets the delivery logic ignore sessions, transports and TOTP.
 */
export interface CommandTransport {
  isOnline(nodeName: string): boolean;
  onlineNodes(): string[];
  /** false when the node has no live session (nothing was written). */
  sendCommand(nodeName: string, command: NodeCommandBody): boolean;
  on(ev: 'online', fn: (n: { nodeName: string; nodeId: string; address: string }) => void): unknown;
  on(ev: 'offline', fn: (n: { nodeName: string; reason: string }) => void): unknown;
  on(
    ev: 'potStatus',
    fn: (u: { nodeName: string; potId: string; potType: string; status: string; message?: string; at: number }) => void,
  ): unknown;
  on(
    ev: 'nodeEvent',
    fn: (e: { nodeName: string; event: string; message?: string; description?: string; at: number }) => void,
  ): unknown;
  off(ev: 'online', fn: (n: { nodeName: string; nodeId: string; address: string }) => void): unknown;
  off(ev: 'offline', fn: (n: { nodeName: string; reason: string }) => void): unknown;
  off(
    ev: 'potStatus',
    fn: (u: { nodeName: string; potId: string; potType: string; status: string; message?: string; at: number }) => void,
  ): unknown;
  off(
    ev: 'nodeEvent',
    fn: (e: { nodeName: string; event: string; message?: string; description?: string; at: number }) => void,
  ): unknown;
}

/**
 * Session routing: several instances share the database and Redis, and a node's session lives on
 * one of them (src/cluster-routing implements this). Without it one instance holds every session.
 */
export interface CommandRouting {
  /** This instance's id; its worker serves its own queue, `<queueName>@<instanceId>`. */
  readonly instanceId: string;
  /** The instance holding the node's session now (this one included), or undefined when offline. */
  ownerOf(node: string): string | undefined;
  /** Nodes online on any instance (broadcast selector 'online'). */
  onlineNodes(): string[];
  /** Exact check in Redis, right before a command is written: this instance's session is the newest. */
  isCurrentLocal(node: string): Promise<boolean>;
  /** Asks the node's holder, when another instance, to look at the node's lane. */
  notifyOwner(node: string): void;
  /** A node whose lane should be looked at here (its session was just claimed, or another instance asked). */
  onWake(listener: (node: string) => void): void;
}

/** A pot as reported in answer to a command. */
export interface ReportedPot {
  potId: string;
  potType: string;
  status: string;
  message?: string;
}

/**
 * Outcome (or progress, while sent) of a command, stored as JSON in commands.result.
 * `reason` says why a command did not succeed.
 */
export interface CommandResult {
  message?: string;
  /** Last pot status seen for the command's pot. */
  potStatus?: string;
  /** GetInstalledPots: every pot the node reported. */
  pots?: ReportedPot[];
  reason?:
    | 'pot_failed'
    | 'node_error'
    | 'timeout'
    | 'node_restarted'
    | 'ttl'
    | 'cancelled';
}

/** One command as the API and callers see it. Timestamps are ISO 8601 strings. */
export interface CommandView {
  id: string;
  seq: number;
  node: string;
  kind: CommandKind;
  potId: string | null;
  command: NodeCommandBody;
  status: CommandStatus;
  result: CommandResult | null;
  batchId: string | null;
  requestedBy: string | null;
  createdAt: string;
  sentAt: string | null;
  finishedAt: string | null;
  expiresAt: string;
}

/**
 * Which nodes a broadcast goes to.
 * - string[]: exactly these node names (every one must be known).
 * - 'all': every node allowed to connect (enrollment approved or enrolled), online or not; offline
 *   ones get the command when they come back within the TTL.
 * - 'online': nodes with a live session right now.
 * - { status }: nodes whose last reported status (nodes.status, 'Offline' without a session) is one
 *   of these, e.g. { status: ['Running'] } or { status: 'Failed' }.
 */
export type NodeSelector = string[] | 'all' | 'online' | { status: string | string[] };

/** Expected failures of service calls; the routes turn them into `{error: code, message}`. */
export class CommandError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}
