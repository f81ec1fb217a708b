// Which rules an observation fires, and what the alert says. Pure matching: de-duplication, the
// quiet period and delivery are the service's.
import type { AttackFact, CommandFact, NodeOfflineFact, NodeOnlineFact, OutputBacklogSignal, PotStatusFact } from './sources.js';
import type { AlertRule, RuleKind } from './types.js';

export interface Candidate {
  /** Dedup key within the rule. */
  subject: string;
  title: string;
  text: string;
  details: Record<string, unknown>;
}

type P = Record<string, any>;
const listed = (list: unknown, value: string) => !Array.isArray(list) || list.includes(value);

/** Offline reasons that are not the node's doing: the core stopping, or the node reconnecting. */
const BENIGN_OFFLINE = new Set(['shutdown', 'replaced']);

export function nodeOffline(rule: AlertRule, f: NodeOfflineFact): Candidate | undefined {
  const p = rule.params as P;
  if (BENIGN_OFFLINE.has(f.reason) || !listed(p.nodes, f.nodeName)) return undefined;
  return { subject: f.nodeName, title: `Node ${f.nodeName} is offline`, text: `reason: ${f.reason}`, details: { node: f.nodeName, reason: f.reason } };
}

export function nodeOnline(rule: AlertRule, f: NodeOnlineFact): Candidate | undefined {
  if (!listed((rule.params as P).nodes, f.nodeName)) return undefined;
  return {
    subject: f.nodeName,
    title: `Node ${f.nodeName} is online`,
    text: f.address ? `from ${f.address}${f.transport ? ` over ${f.transport}` : ''}` : '',
    details: { node: f.nodeName, address: f.address ?? null, transport: f.transport ?? null },
  };
}

export function potFailed(rule: AlertRule, f: PotStatusFact): Candidate | undefined {
  const p = rule.params as P;
  if (f.status !== 'Failed' || !listed(p.nodes, f.nodeName) || !listed(p.potTypes, f.potType)) return undefined;
  return {
    subject: `${f.nodeName}/${f.potId}`,
    title: `Pot ${f.potId} on ${f.nodeName} failed`,
    text: f.message ?? '',
    details: { node: f.nodeName, potId: f.potId, potType: f.potType, message: f.message ?? null },
  };
}

export function commandFailed(rule: AlertRule, f: CommandFact): Candidate | undefined {
  const p = rule.params as P;
  const statuses: string[] = Array.isArray(p.statuses) ? p.statuses : ['failed'];
  if (!statuses.includes(f.status) || !listed(p.nodes, f.node) || !listed(p.kinds, f.kind)) return undefined;
  const why = [f.result?.reason, f.result?.message].filter(Boolean).join(': ');
  return {
    subject: f.id,
    title: `Command ${f.kind} on ${f.node} ${f.status}`,
    text: why,
    details: { command: f.id, node: f.node, kind: f.kind, status: f.status, reason: f.result?.reason ?? null, message: f.result?.message ?? null, requestedBy: f.requestedBy },
  };
}

export function loginSuccess(rule: AlertRule, f: AttackFact): Candidate | undefined {
  const p = rule.params as P;
  if (f.login !== 'success' || !listed(p.nodes, f.node) || !listed(p.potTypes, f.potType)) return undefined;
  return {
    subject: `${f.node}/${f.srcIp ?? '?'}/${f.username ?? ''}`,
    title: `Successful login on honeypot ${f.node}/${f.potId}`,
    text: `${f.srcIp ?? 'unknown source'} logged in as ${JSON.stringify(f.username ?? '')} with password ${JSON.stringify(f.password ?? '')}`,
    details: { node: f.node, potId: f.potId, potType: f.potType, event: f.eventId, srcIp: f.srcIp, username: f.username, password: f.password },
  };
}

export function isDownload(f: AttackFact): boolean {
  if (f.type === 'cowrie.session.file_download') return true;
  return !f.type.startsWith('cowrie.') && f.url !== null && (f.md5 !== null || f.sha256 !== null);
}

export function fileDownload(rule: AlertRule, f: AttackFact): Candidate | undefined {
  const p = rule.params as P;
  if (!isDownload(f) || !listed(p.nodes, f.node) || !listed(p.potTypes, f.potType)) return undefined;
  const hash = f.sha256 ?? f.md5;
  return {
    subject: hash ?? f.url ?? `${f.node}/${f.eventId}`,
    title: `File downloaded on honeypot ${f.node}/${f.potId}`,
    text: `${f.srcIp ?? 'unknown source'} fetched ${f.url ?? '(no url)'}${hash ? ` (${f.sha256 ? 'sha256' : 'md5'} ${hash})` : ''}`,
    details: { node: f.node, potId: f.potId, potType: f.potType, event: f.eventId, srcIp: f.srcIp, url: f.url, md5: f.md5, sha256: f.sha256 },
  };
}

export function outputBacklog(rule: AlertRule, s: OutputBacklogSignal): Candidate | undefined {
  const p = rule.params as P;
  if (!(s.backlog > Number(p.bound)) || !listed(p.outputs, s.output)) return undefined;
  return {
    subject: s.output,
    title: `Output ${s.output} is backed up`,
    text: `${s.backlog} records waiting (bound ${p.bound})`,
    details: { output: s.output, backlog: s.backlog, bound: p.bound },
  };
}

/** Source addresses tracked per attacker_events rule; the least recently seen are forgotten beyond it. */
export const MAX_TRACKED_SOURCES = 50_000;

/**
 * "A new attacker above N events in M minutes": per rule, the receive times of each source's last
 * N events. When the oldest of N falls within M minutes, the rule fires for that source and its
 * count starts again.
 */
export class AttackerWindows {
  private readonly bySource = new Map<string, number[]>();

  constructor(private readonly maxSources = MAX_TRACKED_SOURCES) {}

  /** True when this event takes its source to N events within M minutes. */
  observe(srcIp: string, at: number, events: number, minutes: number): boolean {
    let times = this.bySource.get(srcIp);
    if (times) this.bySource.delete(srcIp); // re-inserted below: Map order is recency
    else times = [];
    times.push(at);
    if (times.length > events) times.splice(0, times.length - events);
    const crossed = times.length >= events && at - times[0]! <= minutes * 60_000;
    this.bySource.set(srcIp, crossed ? [] : times);
    if (this.bySource.size > this.maxSources) {
      const oldest = this.bySource.keys().next().value;
      if (oldest !== undefined) this.bySource.delete(oldest);
    }
    return crossed;
  }

  get size(): number {
    return this.bySource.size;
  }
}

export function attackerCandidate(f: AttackFact, events: number, minutes: number): Candidate {
  return {
    subject: f.srcIp!,
    title: `New attacker ${f.srcIp}: ${events} events within ${minutes} min`,
    text: `latest on ${f.node}/${f.potId} (${f.type})`,
    details: { srcIp: f.srcIp, events, minutes, node: f.node, potId: f.potId, lastEvent: f.eventId },
  };
}

/** Kinds fed by committed events: normalising events is skipped while none of them is enabled. */
export const EVENT_KINDS: ReadonlySet<RuleKind> = new Set(['login_success', 'file_download', 'attacker_events']);
