import type { EventRow } from '../../api/types';

const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);

/** The attacker address of an event, from the usual field names. */
export function eventSource(e: EventRow): string | undefined {
  const d = e.data ?? {};
  return str(d.src_ip) ?? str(d.source_ip) ?? str(d.remote_host) ?? str(d.peerIP);
}

/** One line saying what happened: credentials, the command typed, the URL, else the message. */
export function eventSummary(e: EventRow): string {
  const d = e.data ?? {};
  if (d.username !== undefined || d.password !== undefined) return `${str(d.username) ?? ''} / ${str(d.password) ?? ''}`;
  return str(d.input) ?? str(d.url) ?? str(d.message) ?? str(d.msg) ?? '';
}

/** The same query as a curl command (with a placeholder for the token), for scripts. */
export function curlFor(origin: string, path: string): string {
  return `curl -H "Authorization: Bearer $TOKEN" '${origin}/api/v1${path}'`;
}
