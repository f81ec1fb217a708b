// Operator actions on nodes. TOTP secrets leave this class only from createNode and rotateSecret
// (shown once); every read returns a view without them.
import net from 'node:net';
import { generateNodeSecret, isValidNodeSecret } from '../protocol/index.js';
import type { GatewayCore, NodeGatewayEvents } from './gateway.js';
import { addressKey } from './limits.js';
import { nodeNameProblem, NODE_NAME_RULE } from './names.js';
import type { Enrollment, NodeListFilter, NodeRow, NodeStore, PotRow } from './store.js';

export class NodeServiceError extends Error {
  constructor(
    readonly statusCode: 400 | 404 | 409,
    readonly code: 'bad_request' | 'not_found' | 'conflict',
    message: string,
  ) {
    super(message);
    this.name = 'NodeServiceError';
  }
}

export interface NodeInfo {
  name: string;
  nodeId: string | null;
  nodeType: string | null;
  /** Address the node advertises in its registration. */
  address: string | null;
  port: number | null;
  status: string;
  enrollment: Enrollment;
  /** A TOTP secret is on record (the secret itself is never returned here). */
  hasSecret: boolean;
  online: boolean;
  remoteAddress: string | null;
  transport: string | null;
  connectedAt: number | null;
  lastSeenAt: number | null;
  disconnectedAt: number | null;
  disconnectReason: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface PotInfo {
  potId: string;
  potType: string;
  status: string;
  lastMessage: string | null;
  updatedAt: number;
}

export interface NodeDetail extends NodeInfo {
  pots: PotInfo[];
}

export interface UnknownRegistrationInfo {
  /** IPv4 address, or IPv6 /64 prefix. */
  addressKey: string;
  lastAddress: string;
  attempts: number;
  firstSeenAt: number;
  lastSeenAt: number;
  /** The latest distinct names tried, newest last. */
  lastNames: string[];
  lastResult: string;
}

export interface PendingRejection {
  rejected: number;
  /** Up to 100 of the names removed. */
  names: string[];
}

export interface NodeLogEntry {
  id: number;
  kind: string;
  message: string | null;
  at: number;
}

export class NodeService {
  constructor(
    private readonly store: NodeStore,
    private readonly core: GatewayCore,
  ) {}

  /**
   * Provisions a node: it must then be configured with the returned secret (its
   * `.honeybee_totp_secret` file). `opts.secret` imports the secret a node already generated itself.
   */
  async createNode(name: string, opts: { secret?: string } = {}): Promise<{ name: string; secret: string }> {
    requireName(name);
    if (opts.secret !== undefined && !isValidNodeSecret(opts.secret)) {
      throw new NodeServiceError(400, 'bad_request', 'secret must be exactly 32 characters of upper-case base32 (A-Z, 2-7), no padding');
    }
    const secret = opts.secret ?? generateNodeSecret();
    const now = Date.now();
    if (!(await this.store.insert({ name, enrollment: 'enrolled', totpSecret: secret, now }))) {
      throw new NodeServiceError(409, 'conflict', `node ${name} already exists`);
    }
    await this.store.log(name, 'created', opts.secret ? 'provisioned by an operator (imported secret)' : 'provisioned by an operator', now);
    this.core.logger.info({ nodeName: name }, 'node provisioned');
    this.emitEnrolled(name, 'provisioned');
    return { name, secret };
  }

  /** pending or revoked -> approved: the node's next registration is accepted and sent a new key. */
  async approveNode(name: string): Promise<NodeInfo> {
    const row = await this.mustGet(name);
    if (row.enrollment === 'enrolled') {
      throw new NodeServiceError(409, 'conflict', `node ${name} is already enrolled`);
    }
    if (row.enrollment !== 'approved') {
      const now = Date.now();
      await this.store.update(name, { enrollment: 'approved', totpSecret: null, lastTotpStep: null }, now);
      await this.store.log(name, 'approved', `approved by an operator (was ${row.enrollment})`, now);
      this.core.logger.info({ nodeName: name }, 'node approved');
    }
    return this.view(await this.mustGet(name));
  }

  /** Refuses the node from now on and closes its live session at once. */
  async revokeNode(name: string): Promise<NodeInfo> {
    const row = await this.mustGet(name);
    if (row.enrollment !== 'revoked') {
      const now = Date.now();
      await this.store.update(name, { enrollment: 'revoked', totpSecret: null, lastTotpStep: null }, now);
      await this.store.log(name, 'revoked', 'revoked by an operator', now);
      this.core.logger.info({ nodeName: name }, 'node revoked');
    }
    this.core.disconnect(name, 'revoked');
    this.emit('revoked', { nodeName: name, via: 'revoked' });
    return this.view(await this.mustGet(name));
  }

  /**
   * New secret for an enrolled (or approved) node. The live session is closed; the node must be
   * configured with the returned secret before it can authenticate again (the key is not sent
   * over the wire: a compromised old secret must not be able to fetch the new one).
   */
  async rotateSecret(name: string): Promise<{ name: string; secret: string }> {
    const row = await this.mustGet(name);
    if (row.enrollment === 'pending' || row.enrollment === 'revoked') {
      throw new NodeServiceError(409, 'conflict', `node ${name} is ${row.enrollment}; approve it first`);
    }
    const secret = generateNodeSecret();
    const now = Date.now();
    await this.store.update(name, { enrollment: 'enrolled', totpSecret: secret, lastTotpStep: null }, now);
    await this.store.log(name, 'rotated', 'TOTP secret rotated by an operator', now);
    this.core.logger.info({ nodeName: name }, 'node TOTP secret rotated');
    this.core.disconnect(name, 'secret_rotated');
    if (row.enrollment !== 'enrolled') this.emitEnrolled(name, 'rotated');
    return { name, secret };
  }

  /** Removes the node and its pots; its node_log stays as an audit trail. */
  async deleteNode(name: string): Promise<void> {
    await this.mustGet(name);
    this.core.disconnect(name, 'deleted');
    // The session's Offline and 'disconnected' rows first (on PostgreSQL they are written on
    // another pooled connection): then the delete, and the log reads disconnected, deleted.
    await this.core.nodeWritesDone(name);
    const now = Date.now();
    await this.store.delete(name);
    await this.store.log(name, 'deleted', 'deleted by an operator', now);
    this.core.logger.info({ nodeName: name }, 'node deleted');
    this.emit('revoked', { nodeName: name, via: 'deleted' });
  }

  async getNode(name: string): Promise<NodeDetail | undefined> {
    const row = await this.store.get(name);
    if (!row) return undefined;
    return { ...this.view(row), pots: (await this.store.pots(name)).map(potView) };
  }

  async listNodes(filter: NodeListFilter & { online?: boolean } = {}): Promise<NodeInfo[]> {
    const views = (await this.store.list(filter)).map((row) => this.view(row));
    return filter.online === undefined ? views : views.filter((v) => v.online === filter.online);
  }

  async listPots(name: string): Promise<PotInfo[]> {
    await this.mustGet(name);
    return (await this.store.pots(name)).map(potView);
  }

  /**
   * The node answered a GetInstalledPots requested at `requestedAt` with `reported` (pot ids):
   * every other pot on record that has not reported a status since the request is marked
   * `missing` (kept with its type and last message, not deleted). A pot the node reports again
   * gets its real status back from that report. Returns the ids newly marked missing.
   */
  async reconcileInstalledPots(name: string, reported: Iterable<string>, requestedAt: number, at = Date.now()): Promise<string[]> {
    if (!(await this.store.get(name))) return [];
    const gone = await this.store.markPotsMissing(name, new Set(reported), requestedAt, at);
    if (gone.length > 0) {
      await this.store.log(name, 'pots_missing', `not in the node's installed pots: ${gone.join(', ')}`.slice(0, 1000), at);
      this.core.logger.info({ nodeName: name, pots: gone }, 'pots the node no longer reports marked missing');
    }
    return gone;
  }

  /** The node's cowrie pot (Running first, then the most recently updated), if it has one. */
  cowriePot(name: string): Promise<string | undefined> {
    return this.store.cowriePot(name);
  }

  async listLog(name: string, opts: { limit?: number; before?: number } = {}): Promise<NodeLogEntry[]> {
    // The log outlives a deleted node, so it is readable for any name that has entries.
    const entries = await this.store.logEntries(name, { limit: opts.limit ?? 100, before: opts.before });
    if (entries.length === 0 && !(await this.store.get(name))) {
      throw new NodeServiceError(404, 'not_found', `unknown node ${name}`);
    }
    return entries.map((e) => ({ id: e.id, kind: e.kind, message: e.message, at: e.at }));
  }

  /**
   * Bulk reject of pending nodes (approve mode under a flood): deletes every pending node that
   * matches all the given conditions. `address` matches where the node first came from (an IPv4
   * address exactly, an IPv6 address by its /64); `olderThanMs` matches nodes pending for longer.
   * A rejected name that retries comes back as a new pending entry, subject to the caps.
   */
  async rejectPending(filter: { address?: string; olderThanMs?: number }, now = Date.now()): Promise<PendingRejection> {
    if (filter.address === undefined && filter.olderThanMs === undefined) {
      throw new NodeServiceError(400, 'bad_request', 'give address and/or olderThanSeconds');
    }
    if (filter.address !== undefined && net.isIP(filter.address) === 0) {
      throw new NodeServiceError(400, 'bad_request', 'address must be an IPv4 or IPv6 address');
    }
    const names = await this.store.deletePending({
      ...(filter.address !== undefined ? { source: addressKey(filter.address) } : {}),
      ...(filter.olderThanMs !== undefined ? { createdBefore: now - filter.olderThanMs } : {}),
    });
    if (names.length > 0) {
      this.core.metrics.pendingRemoved.inc({ reason: 'bulk_reject' }, names.length);
      this.core.logger.info({ count: names.length, address: filter.address, olderThanMs: filter.olderThanMs, sample: names.slice(0, 10) }, 'pending nodes rejected in bulk by an operator');
    }
    return { rejected: names.length, names: names.slice(0, 100) };
  }

  /** Registrations of names without a node row, aggregated per source address, latest first. */
  async listUnknownRegistrations(limit = 100): Promise<UnknownRegistrationInfo[]> {
    return (await this.store.listUnknown(limit)).map((r) => ({
      addressKey: r.addressKey,
      lastAddress: r.lastAddress,
      attempts: r.attempts,
      firstSeenAt: r.firstSeenAt,
      lastSeenAt: r.lastSeenAt,
      lastNames: parseNames(r.lastNames),
      lastResult: r.lastResult,
    }));
  }

  private emitEnrolled(name: string, via: 'provisioned' | 'rotated'): void {
    this.emit('enrolled', { nodeName: name, via });
  }

  private emit<E extends 'enrolled' | 'revoked'>(ev: E, ...args: NodeGatewayEvents[E]): void {
    try {
      this.core.emit(ev, ...args);
    } catch (err) {
      this.core.logger.error({ err, event: ev }, 'node gateway event listener threw');
    }
  }

  private async mustGet(name: string): Promise<NodeRow> {
    requireName(name);
    const row = await this.store.get(name);
    if (!row) throw new NodeServiceError(404, 'not_found', `unknown node ${name}`);
    return row;
  }

  private view(row: NodeRow): NodeInfo {
    const live = this.core.liveSession(row.name);
    return {
      name: row.name,
      nodeId: row.nodeId,
      nodeType: row.nodeType,
      address: row.address,
      port: row.port,
      status: row.status,
      enrollment: row.enrollment as Enrollment,
      hasSecret: row.totpSecret !== null,
      online: live !== undefined,
      remoteAddress: row.remoteAddress,
      transport: row.transport,
      connectedAt: row.connectedAt,
      // The stored value trails the live one by up to the write throttle interval.
      lastSeenAt: live ? Math.max(live.lastSeen, row.lastSeenAt ?? 0) : row.lastSeenAt,
      disconnectedAt: row.disconnectedAt,
      disconnectReason: row.disconnectReason,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    };
  }
}

function parseNames(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}

function potView(p: PotRow): PotInfo {
  return { potId: p.potId, potType: p.potType, status: p.status, lastMessage: p.lastMessage, updatedAt: p.updatedAt };
}

function requireName(name: string): void {
  const problem = nodeNameProblem(name);
  if (problem) throw new NodeServiceError(400, 'bad_request', `invalid node name (${problem}): ${NODE_NAME_RULE}`);
}
