// Who may register: the enrollment mode for unknown names, the state machine of known ones
// (pending -> approved -> enrolled, revoked), TOTP checking with one-time use of each time step,
// and the brute-force limiter. Decisions are returned to the session, which answers the node.
// Attempts on names without a node row are aggregated per address (UnknownRegistrationLog);
// pending rows are capped per source address and in total, and expire (see sweep). TOTP guess
// limits are in guess-limiter.ts.
import type { FastifyBaseLogger } from 'fastify';
import { generateNodeSecret, verifyTotp } from '../protocol/index.js';
import { TotpGuessLimiter, type FailureCounterFactory, type RateLimitOptions } from './guess-limiter.js';
import { addressKey } from './limits.js';
import { KeyedLogThrottle } from './log-throttle.js';
import type { NodeMetrics } from './metrics.js';
import { isValidNodeName, nodeNameProblem } from './names.js';
import type { NodeRow, NodeStore } from './store.js';
import { UnknownRegistrationLog } from './unknown-registrations.js';

export type EnrollmentMode = 'provisioned' | 'approve' | 'open';
export type { RateLimitOptions } from './guess-limiter.js';

export interface RegistrationRequest {
  nodeName: string;
  nodeId: string;
  nodeType: string;
  totpCode?: string;
  /** Address the node advertises in its registration. */
  address: string;
  port: number;
  /** Socket peer address; what rate limiting keys on. */
  remoteAddress: string;
  transport: string;
}

export type RejectResult =
  | 'bad_name'
  | 'rate_limited'
  | 'unknown_node'
  | 'pending'
  | 'too_many_pending'
  | 'revoked'
  | 'missing_code'
  | 'invalid_code'
  | 'code_reused'
  | 'internal_error';

export type RegistrationDecision =
  | { accepted: true; result: 'accepted' | 'key_issued'; issuedKey?: string }
  | { accepted: false; result: RejectResult; message: string };

const rejectMessages: Record<RejectResult, string> = {
  bad_name: 'Invalid node name',
  rate_limited: 'Too many failed attempts',
  unknown_node: 'Unknown node',
  pending: 'Node pending approval',
  too_many_pending: 'Too many nodes pending approval',
  revoked: 'Node revoked',
  missing_code: 'TOTP code required',
  invalid_code: 'TOTP code invalid',
  code_reused: 'TOTP code already used',
  internal_error: 'Internal error',
};

export interface EnrollmentOptions {
  store: NodeStore;
  metrics: NodeMetrics;
  logger: FastifyBaseLogger;
  mode: EnrollmentMode;
  rateLimit?: RateLimitOptions;
  /** Where the TOTP guess budgets are counted. Default: in memory (one instance). */
  guessCounters?: FailureCounterFactory;
  /** In approve mode, unknown names are refused without being recorded beyond this many pending rows. */
  maxPendingNodes?: number;
  /** In approve mode, pending rows first seen from one address (IPv6: one /64). Default 20. */
  maxPendingPerAddress?: number;
  /** A pending row not retried for this long is deleted. Default 1 h. */
  pendingTtlMs?: number;
  /** Names kept per address in the unknown-registration aggregate. Default 10. */
  unknownNamesSample?: number;
  /** Identical node_log rejections per node are written at most once per this interval. */
  rejectLogIntervalMs?: number;
}

export class Enrollment {
  readonly mode: EnrollmentMode;
  private readonly store: NodeStore;
  private readonly metrics: NodeMetrics;
  private readonly logger: FastifyBaseLogger;
  private readonly guesses: TotpGuessLimiter;
  private readonly unknown: UnknownRegistrationLog;
  private readonly maxPending: number;
  private readonly maxPendingPerAddress: number;
  private readonly pendingTtlMs: number;
  private readonly rejectLogIntervalMs: number;
  /** name + result -> when that rejection was last written to node_log. */
  private readonly rejectLogged = new Map<string, number>();
  private readonly unknownLogThrottle = new KeyedLogThrottle(60_000);
  /** The pending-row expiry in flight (see sweep). */
  private expiring: Promise<void> | undefined;

  constructor(opts: EnrollmentOptions) {
    this.mode = opts.mode;
    this.store = opts.store;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.guesses = new TotpGuessLimiter(opts.rateLimit, opts.guessCounters);
    this.unknown = new UnknownRegistrationLog(opts.store, opts.unknownNamesSample ?? 10, (err) =>
      this.logger.error({ err }, 'could not record unknown-name registrations'),
    );
    this.maxPending = opts.maxPendingNodes ?? 1000;
    this.maxPendingPerAddress = opts.maxPendingPerAddress ?? 20;
    this.pendingTtlMs = opts.pendingTtlMs ?? 3600_000;
    this.rejectLogIntervalMs = opts.rejectLogIntervalMs ?? 60_000;
  }

  async decide(req: RegistrationRequest): Promise<RegistrationDecision> {
    const now = Date.now();
    if (!isValidNodeName(req.nodeName)) return this.reject(req, 'bad_name', now, false, nodeNameProblem(req.nodeName));

    let row = await this.store.get(req.nodeName);
    if (!row) {
      switch (this.mode) {
        case 'provisioned':
          return this.reject(req, 'unknown_node', now, false);
        case 'approve': {
          // Per source first, so one address filling its share leaves the rest to everyone else.
          const source = addressKey(req.remoteAddress);
          if ((await this.store.countPendingFrom(source)) >= this.maxPendingPerAddress) {
            return this.reject(req, 'too_many_pending', now, false, `from ${source}`);
          }
          if ((await this.store.countByEnrollment('pending')) >= this.maxPending) {
            return this.reject(req, 'too_many_pending', now, false);
          }
          if (await this.store.insert({ name: req.nodeName, enrollment: 'pending', pendingSource: source, now })) {
            await this.noteAttempt(req, now);
            await this.store.log(req.nodeName, 'pending', `awaiting approval (from ${req.remoteAddress})`, now);
            this.logger.info({ nodeName: req.nodeName, remoteAddress: req.remoteAddress }, 'unknown node recorded as pending approval');
          }
          return this.reject(req, 'pending', now);
        }
        case 'open':
          // Two first contacts of one name (on one core or two) both end here: one insert wins,
          // and both go on with the row as it is then.
          if (await this.store.insert({ name: req.nodeName, enrollment: 'approved', now })) {
            await this.store.log(req.nodeName, 'created', `first contact from ${req.remoteAddress} (open enrollment)`, now);
          }
          row = await this.store.get(req.nodeName);
          if (!row) return this.reject(req, 'internal_error', now);
          break;
      }
    }

    switch (row.enrollment as NodeRow['enrollment']) {
      case 'pending':
        await this.noteAttempt(req, now);
        return this.reject(req, 'pending', now);
      case 'revoked':
        return this.reject(req, 'revoked', now);
      case 'approved':
        return this.issueKey(req, now);
      case 'enrolled':
        return this.checkCode(req, row, now);
      default:
        this.logger.error({ nodeName: req.nodeName, enrollment: row.enrollment }, 'node row has an unknown enrollment state');
        return this.reject(req, 'internal_error', now);
    }
  }

  /** Housekeeping: forgets expired limiter entries and throttle marks, expires pending rows. */
  sweep(now: number): void {
    this.guesses.sweep(now);
    this.unknownLogThrottle.sweep(now);
    for (const [key, at] of this.rejectLogged) {
      if (now - at >= this.rejectLogIntervalMs) this.rejectLogged.delete(key);
    }
    // One expiry at a time: a slow database must not stack them.
    this.expiring ??= this.expirePending(now).finally(() => {
      this.expiring = undefined;
    });
  }

  /** Writes the aggregated unknown-name attempts (called on the gateway's flush timer). */
  flush(): void {
    this.unknown.flush();
  }

  /** Resolves once the writes of flush() and sweep() requested so far are done. */
  async settled(): Promise<void> {
    await Promise.all([this.unknown.settled(), this.expiring]);
  }

  private async expirePending(now: number): Promise<void> {
    try {
      const expired = await this.store.deletePending({ updatedBefore: now - this.pendingTtlMs });
      if (expired.length > 0) {
        this.metrics.pendingRemoved.inc({ reason: 'expired' }, expired.length);
        this.logger.info({ count: expired.length, sample: expired.slice(0, 10), ttlMs: this.pendingTtlMs }, 'pending nodes expired (no registration attempt within the pending TTL)');
      }
    } catch (err) {
      this.logger.error({ err }, 'could not expire pending nodes');
    }
  }

  private async checkCode(req: RegistrationRequest, row: NodeRow, now: number): Promise<RegistrationDecision> {
    const secret = row.totpSecret;
    if (!secret) {
      this.logger.error({ nodeName: req.nodeName }, 'enrolled node has no TOTP secret');
      return this.reject(req, 'internal_error', now);
    }
    // Trusted: the exact address this node last authenticated from (markRegistered writes
    // remote_address only for an accepted session while the node is approved or enrolled).
    const source = {
      name: req.nodeName,
      address: req.remoteAddress,
      addressKey: addressKey(req.remoteAddress),
      trusted: row.connectedAt !== null && row.remoteAddress === req.remoteAddress,
    };
    if (await this.guesses.blocked(source, now)) return this.reject(req, 'rate_limited', now);
    if (!req.totpCode) return this.fail(req, source, 'missing_code', now);
    const check = await verifyTotp(secret, req.totpCode, now, 1);
    if (!check.valid || check.step === undefined) return this.fail(req, source, 'invalid_code', now);
    // A valid code of an already used step is what a real node sends when it reconnects inside
    // the same 30 s window: refuse it, but it is no guess, so it does not feed the limiter.
    if (row.lastTotpStep !== null && check.step <= row.lastTotpStep) return this.reject(req, 'code_reused', now);
    if (!(await this.store.claimTotpStep(req.nodeName, secret, check.step, Date.now()))) {
      return this.reject(req, 'code_reused', now);
    }
    this.metrics.registrations.inc({ result: 'accepted' });
    return { accepted: true, result: 'accepted' };
  }

  private async issueKey(req: RegistrationRequest, now: number): Promise<RegistrationDecision> {
    // A fresh key at every registration until one is confirmed delivered: an ack lost on the way
    // must not lock the node out, and a key is never handed out twice.
    const key = generateNodeSecret();
    await this.store.update(req.nodeName, { totpSecret: key, lastTotpStep: null }, now);
    await this.store.log(req.nodeName, 'key_issued', `TOTP key sent in RegistrationAck (via ${req.transport} from ${req.remoteAddress})`, now);
    this.metrics.registrations.inc({ result: 'key_issued' });
    this.logger.info({ nodeName: req.nodeName, remoteAddress: req.remoteAddress }, 'approved node registered; TOTP key issued');
    return { accepted: true, result: 'key_issued', issuedKey: key };
  }

  private async noteAttempt(req: RegistrationRequest, now: number): Promise<void> {
    await this.store.update(
      req.nodeName,
      { nodeId: req.nodeId, nodeType: req.nodeType, address: req.address, port: req.port, remoteAddress: req.remoteAddress, transport: req.transport },
      now,
    );
  }

  /** A rejection that may be a guess: counts toward the limiter. */
  private async fail(req: RegistrationRequest, source: Parameters<TotpGuessLimiter['record']>[0], result: RejectResult, now: number): Promise<RegistrationDecision> {
    await this.guesses.record(source, now);
    return this.reject(req, result, now);
  }

  /**
   * `known`: the name has a node row. Rejections of known names go to that node's log (throttled);
   * the others are aggregated per source address, so made-up names cost no row each.
   */
  private async reject(req: RegistrationRequest, result: RejectResult, now: number, known = true, detail?: string): Promise<RegistrationDecision> {
    const message = detail ? `${rejectMessages[result]}: ${detail}` : rejectMessages[result];
    this.metrics.registrations.inc({ result });
    this.metrics.authFailures.inc({ reason: result });
    const fields = { nodeName: req.nodeName.slice(0, 253), remoteAddress: req.remoteAddress, transport: req.transport, result };
    if (result === 'pending' || result === 'code_reused') this.logger.info(fields, `node registration refused: ${message}`);
    else if (known) this.logger.warn(fields, `node registration refused: ${message}`);
    else {
      const t = this.unknownLogThrottle.take(addressKey(req.remoteAddress), now);
      if (t.log) this.logger.warn({ ...fields, suppressedSinceLastLine: t.suppressed }, `node registration of an unknown name refused: ${message} (one line per address per minute)`);
    }
    if (!known) {
      this.unknown.record(req.remoteAddress, req.nodeName, result, now);
    } else {
      // Nodes retry every few seconds forever; one row per minute per reason tells the story.
      const key = `${req.nodeName}\0${result}`;
      const last = this.rejectLogged.get(key);
      if (last === undefined || now - last >= this.rejectLogIntervalMs) {
        if (this.rejectLogged.size >= 100_000) this.rejectLogged.clear();
        this.rejectLogged.set(key, now);
        await this.store.log(req.nodeName, 'rejected', `${message} (from ${req.remoteAddress} via ${req.transport})`, now);
      }
    }
    return { accepted: false, result, message };
  }
}
