// From committed events to the records outputs write. The normaliser (the analytics domain's
// normaliseEvent) is passed in by the composition root; this file only adds what the classic
// logger did on top of it: a cowrie session summary (the cowrie.sessions payload, when a node or
// sidecar sends one as an event) becomes one record for the session, then one per credential,
// command, unknown command, URL and file hash, each with the classic signature.
import type { AttackRecord, StoredEvent } from '../analytics/index.js';

export type { AttackRecord };

/** The committed event as outputs read it (a structural subset of the events domain's CommittedEvent). */
export interface OutputEvent extends StoredEvent {
  /** data as stored (the node's own JSON text): what raw_json writes. */
  readonly dataJson: string;
}

/** Event → its attack record; the record may be shared with other readers: never changed here. */
export type Normaliser = (e: StoredEvent) => Readonly<AttackRecord>;

const MAX_SESSION_ITEMS = 500;

function strings(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  const out: string[] = [];
  for (const x of v) if (typeof x === 'string' && x !== '' && out.length < MAX_SESSION_ITEMS) out.push(x);
  return out;
}

function isSessionSummary(e: StoredEvent): boolean {
  const d = e.data;
  return (e.eventType === 'cowrie.sessions' || e.eventType === 'kippo.sessions') && (Array.isArray(d.credentials) || Array.isArray(d.commands) || 'peerIP' in d);
}

function hexOf(v: string, length: number): string | null {
  return v.length === length && /^[0-9a-fA-F]+$/.test(v) ? v.toLowerCase() : null;
}

function expandSession(e: StoredEvent, normalise: Normaliser): AttackRecord[] {
  const d = e.data;
  const base = { ...normalise(e) };
  const pot = e.eventType.startsWith('kippo.') ? 'kippo' : 'cowrie';
  const shell = d.protocol === 'telnet' ? 'Telnet' : 'SSH';
  base.type = e.eventType;
  base.vendor_product = pot === 'kippo' ? 'Kippo' : 'Cowrie';
  base.signature = `${shell} session on ${pot} honeypot`;
  base.ssh_username = base.ssh_password = base.command = base.url = base.md5 = base.sha256 = null;
  base.login = null;
  const out: AttackRecord[] = [base];
  const loggedIn = Array.isArray(d.loggedin) ? (d.loggedin as unknown[]) : null;
  if (Array.isArray(d.credentials)) {
    for (const c of (d.credentials as unknown[]).slice(0, MAX_SESSION_ITEMS)) {
      if (!Array.isArray(c)) continue;
      const [u, p] = c as unknown[];
      const success = loggedIn !== null && loggedIn[0] === u && loggedIn[1] === p;
      out.push({ ...base, signature: `${shell} login attempted on ${pot} honeypot`, ssh_username: typeof u === 'string' ? u : null, ssh_password: typeof p === 'string' ? p : null, login: success ? 'success' : 'failed' });
    }
  }
  for (const url of strings(d.urls)) out.push({ ...base, signature: `URL download attempted on ${pot} honeypot`, url });
  for (const command of strings(d.commands)) out.push({ ...base, signature: `command attempted on ${pot} honeypot`, command });
  for (const command of strings(d.unknownCommands)) out.push({ ...base, signature: `unknown command attempted on ${pot} honeypot`, command });
  for (const h of strings(d.hashes)) {
    const sha256 = hexOf(h, 64);
    const md5 = sha256 === null ? hexOf(h, 32) : null;
    if (sha256 !== null || md5 !== null) out.push({ ...base, signature: `file download attempted on ${pot} honeypot`, sha256, md5 });
  }
  return out;
}

/** The records of one committed event: one for most events, several for a cowrie session summary. */
export function recordsOf(e: StoredEvent, normalise: Normaliser): AttackRecord[] {
  return isSessionSummary(e) ? expandSession(e, normalise) : [normalise(e)];
}

/** Per-record tags an output can filter on (attacker-level tags like bruteforce need history: not here). */
export const RECORD_TAGS = ['scanner', 'logged_in', 'login_failed', 'ran_commands', 'downloaded'] as const;
export type RecordTag = (typeof RECORD_TAGS)[number];

export function recordHasTag(r: AttackRecord, tag: RecordTag, isScanner?: (ip: string) => boolean): boolean {
  switch (tag) {
    case 'scanner':
      return r.src_ip !== null && isScanner !== undefined && isScanner(r.src_ip);
    case 'logged_in':
      return r.login === 'success';
    case 'login_failed':
      return r.login === 'failed';
    case 'ran_commands':
      return r.command !== null;
    case 'downloaded':
      return r.url !== null || r.md5 !== null || r.sha256 !== null;
  }
}
