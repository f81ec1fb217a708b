// Intel feed formats. JSON follows the MHN/CHN intel_feed item shape (source_ip, count,
// destination_port, honeypot, protocol, meta) so existing feed consumers read it; CSV has the same
// columns; TXT is one address a line, the format of firewall external dynamic lists.
import type { IntelIpRow } from './store.js';

export interface IntelIpJson {
  source_ip: string;
  count: number;
  destination_port: number | null;
  honeypot: string | null;
  protocol: string | null;
  meta: {
    first_seen: string;
    last_seen: string;
    country: string | null;
    asn: number | null;
    as_org: string | null;
    tags: string[];
  };
}

export function intelIpJson(rows: readonly IntelIpRow[]): IntelIpJson[] {
  return rows.map((r) => ({
    source_ip: r.ip,
    count: r.events,
    destination_port: r.port,
    honeypot: r.pot_type,
    protocol: r.protocol,
    meta: {
      first_seen: new Date(r.first_seen).toISOString(),
      last_seen: new Date(r.last_seen).toISOString(),
      country: r.country,
      asn: r.asn,
      as_org: r.as_org,
      tags: r.tags,
    },
  }));
}

/** RFC 4180 field: quoted when it holds a comma, quote or line break; leading =+-@ defused for spreadsheets. */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s) && typeof v === 'string') s = "'" + s;
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

export function csv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  let out = header.join(',') + '\r\n';
  for (const r of rows) out += r.map(csvField).join(',') + '\r\n';
  return out;
}

export function intelIpCsv(rows: readonly IntelIpRow[]): string {
  return csv(
    ['source_ip', 'count', 'destination_port', 'honeypot', 'protocol', 'first_seen', 'last_seen', 'country', 'asn', 'as_org', 'tags'],
    rows.map((r) => [
      r.ip, r.events, r.port, r.pot_type, r.protocol, new Date(r.first_seen).toISOString(), new Date(r.last_seen).toISOString(),
      r.country, r.asn, r.as_org, r.tags.join(' '),
    ]),
  );
}

export function intelIpTxt(rows: readonly IntelIpRow[]): string {
  return rows.map((r) => r.ip + '\n').join('');
}
