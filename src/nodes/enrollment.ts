// Who may register: the enrollment mode for unknown names, the state machine of known ones
// (pending -> approved -> enrolled, revoked), TOTP checking with one-time use of each time step,
// and the brute-force limiter. Decisions are returned to the session, which answers the node.
import type { FastifyBaseLogger } from 'fastify';
import { generateNodeSecret, verifyTotp } from '../protocol/index.js';
import type { NodeMetrics } from './metrics.js';
import { isValidNodeName } from './names.js';
import { FailureLimiter } from './rate-limit.js';
import type { NodeRow, NodeStore } from './store.js';

export type EnrollmentMode = 'provisioned' | 'approve' | 'open';

export interface RateLimitOptions {
  /** Sliding window over which failures are counted. Default 60 000 ms. */
  windowMs?: number;
  /** Failures per node_name inside the window before attempts are refused. Default 5. */
  maxFailuresPerName?: number;
  /** Failures per remote address inside the window (several nodes may share a NAT). Default 20. */
  maxFailuresPerAddress?: number;
}

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
  /** In approve mode, unknown names are refused without being recorded beyond this many pending rows. */
  maxPendingNodes?: number;
  /** Identical node_log rejections per node are written at most once per this interval. */
  rejectLogIntervalMs?: number;
}

export class Enrollment {
  readonly mode: EnrollmentMode;
  private readonly store: NodeStore;
  private readonly metrics: NodeMetrics;
  private readonly logger: FastifyBaseLogger;
  private readonly byName: FailureLimiter;
  private readonly byAddress: FailureLimiter;
  private readonly maxPending: number;
  private readonly rejectLogIntervalMs: number;
  /** name + result -> when that rejection was last written to node_log. */
  private readonly rejectLogged = new Map<string, number>();

  constructor(opts: EnrollmentOptions) {
    this.mode = opts.mode;
    this.store = opts.store;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    const windowMs = opts.rateLimit?.windowMs ?? 60_000;
    this.byName = new FailureLimiter(opts.rateLimit?.maxFailuresPerName ?? 5, windowMs);
    this.byAddress = new FailureLimiter(opts.rateLimit?.maxFailuresPerAddress ?? 20, windowMs);
    this.maxPending = opts.maxPendingNodes ?? 1000;
    this.rejectLogIntervalMs = opts.rejectLogIntervalMs ?? 60_000;
  }

  async decide(req: RegistrationRequest): Promise<RegistrationDecision> {
    const now = Date.now();
    if (!isValidNodeName(req.nodeName)) return this.reject(req, 'bad_name', now);
    if (this.byName.isBlocked(req.nodeName, now) || this.byAddress.isBlocked(req.remoteAddress, now)) {
      return this.reject(req, 'rate_limited', now);
    }

    let row = this.store.get(req.nodeName);
    if (!row) {
      switch (this.mode) {
        case 'provisioned':
          return this.reject(req, 'unknown_node', now);
        case 'approve':
          if (this.store.countByEnrollment('pending') >= this.maxPending) {
            return this.reject(req, 'too_many_pending', now);
          }
          if (this.store.insert({ name: req.nodeName, enrollment: 'pending', now })) {
            this.noteAttempt(req, now);
            this.store.log(req.nodeName, 'pending', `awaiting approval (from ${req.remoteAddress})`, now);
            this.logger.info({ nodeName: req.nodeName, remoteAddress: req.remoteAddress }, 'unknown node recorded as pending approval');
          }
          return this.reject(req, 'pending', now);
        case 'open':
          this.store.insert({ name: req.nodeName, enrollment: 'approved', now });
          this.store.log(req.nodeName, 'created', `first contact from ${req.remoteAddress} (open enrollment)`, now);
          row = this.store.get(req.nodeName);
          if (!row) return this.reject(req, 'internal_error', now);
          break;
      }
    }

    switch (row.enrollment as NodeRow['enrollment']) {
      case 'pending':
        this.noteAttempt(req, now);
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

  /** Housekeeping: forgets expired limiter entries and throttle marks. */
  sweep(now: number): void {
    this.byName.sweep(now);
    this.byAddress.sweep(now);
    for (const [key, at] of this.rejectLogged) {
      if (now - at >= this.rejectLogIntervalMs) this.rejectLogged.delete(key);
    }
  }

  private async checkCode(req: RegistrationRequest, row: NodeRow, now: number): Promise<RegistrationDecision> {
    const secret = row.totpSecret;
    if (!secret) {
      this.logger.error({ nodeName: req.nodeName }, 'enrolled node has no TOTP secret');
      return this.reject(req, 'internal_error', now);
    }
    if (!req.totpCode) return this.fail(req, 'missing_code', now);
    const check = await verifyTotp(secret, req.totpCode, now, 1);
    if (!check.valid || check.step === undefined) return this.fail(req, 'invalid_code', now);
    // A valid code of an already used step is what a real node sends when it reconnects inside
    // the same 30 s window: refuse it, but it is no guess, so it does not feed the limiter.
    if (row.lastTotpStep !== null && check.step <= row.lastTotpStep) return this.reject(req, 'code_reused', now);
    if (!this.store.claimTotpStep(req.nodeName, secret, check.step, Date.now())) {
      return this.reject(req, 'code_reused', now);
    }
    this.metrics.registrations.inc({ result: 'accepted' });
    return { accepted: true, result: 'accepted' };
  }

  private issueKey(req: RegistrationRequest, now: number): RegistrationDecision {
    // A fresh key at every registration until one is confirmed delivered: an ack lost on the way
    // must not lock the node out, and a key is never handed out twice.
    const key = generateNodeSecret();
    this.store.update(req.nodeName, { totpSecret: key, lastTotpStep: null }, now);
    this.store.log(req.nodeName, 'key_issued', `TOTP key sent in RegistrationAck (via ${req.transport} from ${req.remoteAddress})`, now);
    this.metrics.registrations.inc({ result: 'key_issued' });
    this.logger.info({ nodeName: req.nodeName, remoteAddress: req.remoteAddress }, 'approved node registered; TOTP key issued');
    return { accepted: true, result: 'key_issued', issuedKey: key };
  }

  private noteAttempt(req: RegistrationRequest, now: number): void {
    this.store.update(
      req.nodeName,
      { nodeId: req.nodeId, nodeType: req.nodeType, address: req.address, port: req.port, remoteAddress: req.remoteAddress, transport: req.transport },
      now,
    );
  }

  /** A rejection that may be a guess: counts toward the limiter. */
  private fail(req: RegistrationRequest, result: RejectResult, now: number): RegistrationDecision {
    this.byName.record(req.nodeName, now);
    this.byAddress.record(req.remoteAddress, now);
    return this.reject(req, result, now);
  }

  private reject(req: RegistrationRequest, result: RejectResult, now: number): RegistrationDecision {
    const message = rejectMessages[result];
    this.metrics.registrations.inc({ result });
    this.metrics.authFailures.inc({ reason: result });
    const fields = { nodeName: req.nodeName.slice(0, 253), remoteAddress: req.remoteAddress, transport: req.transport, result };
    if (result === 'pending' || result === 'code_reused') this.logger.info(fields, `node registration refused: ${message}`);
    else this.logger.warn(fields, `node registration refused: ${message}`);
    if (result !== 'bad_name' && result !== 'too_many_pending') {
      // Nodes retry every few seconds forever; one row per minute per reason tells the story.
      const key = `${req.nodeName}\0${result}`;
      const last = this.rejectLogged.get(key);
      if (last === undefined || now - last >= this.rejectLogIntervalMs) {
        if (this.rejectLogged.size >= 100_000) this.rejectLogged.clear();
        this.rejectLogged.set(key, now);
        this.store.log(req.nodeName, 'rejected', `${message} (from ${req.remoteAddress} via ${req.transport})`, now);
      }
    }
    return { accepted: false, result, message };
  }
}
