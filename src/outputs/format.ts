// Record formatters. Lines follow what hpfeeds-logger users already parse (its json, raw_json,
// splunk and arcsight formatters over the same normalised field names), with two deliberate
// differences: times are the event's own (the classic logger stamped the time it wrote the line),
// and every format escapes what its parsers need escaped (the classic CEF formatter escaped nothing,
// so a `=` or `|` in a command or signature broke the line).
import type { AttackRecord } from './records.js';

export const FORMATS = ['json', 'raw_json', 'splunk', 'cef'] as const;
export type OutputFormat = (typeof FORMATS)[number];

/** Product identification in CEF headers. */
export interface CefProduct {
  vendor: string;
  product: string;
  version: string;
}

export const DEFAULT_CEF_PRODUCT: CefProduct = { vendor: 'Apiary', product: 'Apiary', version: '0.1.0' };

/** UTC ISO 8601 with milliseconds: `2026-12-01T02:03:04.567Z`. */
export function isoTime(ms: number): string {
  // Records of a batch often share their millisecond (a cowrie session's burst): reuse the last one.
  if (ms === lastIsoMs) return lastIso;
  lastIso = Number.isFinite(ms) ? new Date(ms).toISOString() : new Date(0).toISOString();
  lastIsoMs = ms;
  return lastIso;
}
let lastIsoMs = NaN;
let lastIso = '';

/** Characters JSON.stringify would escape (quotes, backslash, controls, lone surrogates). */
// eslint-disable-next-line no-control-regex
const JSON_SPECIAL = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON with `timestamp` (UTC ISO) first, then every record field in the record's own order (nulls kept, as the classic logger did). */
export function formatJson(r: AttackRecord): string {
  // Built by hand: the record is flat and its keys need no escaping, so only values go through
  // JSON.stringify (about twice as fast as copying the record into a new object and stringifying it).
  let out = `{"timestamp":"${isoTime(r.timestamp)}"`;
  for (const k in r) {
    if (k === 'timestamp') continue;
    const v = (r as unknown as Record<string, unknown>)[k];
    out += `,"${k}":${v === null || v === undefined ? 'null' : typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'null') : typeof v === 'string' && !JSON_SPECIAL.test(v) ? `"${v}"` : JSON.stringify(v)}`;
  }
  return `${out}}`;
}

const SPLUNK_SPECIAL = /[\\"\n\r]/;
const CEF_HEADER_SPECIAL = /[\\|\r\n]/;
const CEF_VALUE_SPECIAL = /[\\=\r\n]/;

function splunkValue(v: unknown): string {
  const s = String(v);
  if (!SPLUNK_SPECIAL.test(s)) return s;
  // Backslash first, so the escapes added after it are not doubled.
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

/** Splunk names for the classic fields: src_ip/dest_ip become src/dest (CIM names). */
const SPLUNK_NAMES: Record<string, string> = { src_ip: 'src', dest_ip: 'dest' };

/**
 * `key="value"` pairs separated by ", " as the classic splunk formatter wrote them; null and empty
 * values are left out; `"`, `\` and line breaks in values are escaped so a line stays one record.
 */
export function formatSplunk(r: AttackRecord): string {
  const parts = [`timestamp="${isoTime(r.timestamp)}"`];
  for (const k in r) {
    if (k === 'timestamp') continue;
    const v = (r as unknown as Record<string, unknown>)[k];
    if (v === null || v === undefined || v === '') continue;
    parts.push(`${SPLUNK_NAMES[k] ?? k}="${splunkValue(v)}"`);
  }
  return parts.join(', ');
}

/** CEF header field: `\` and `|` escaped; line breaks (not allowed in a header) become spaces. */
export function cefHeader(v: string): string {
  if (!CEF_HEADER_SPECIAL.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
}

/** CEF extension value: `\`, `=` escaped, line breaks written as `\n` / `\r`. */
export function cefValue(v: string): string {
  if (!CEF_VALUE_SPECIAL.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

/** The classic ArcSight severity mapping. */
export const CEF_SEVERITY: Record<string, number> = { high: 10, medium: 5, low: 3, informational: 1 };

/** CEF extension keys in output order: [key, record field, custom-string label]. */
const CEF_FIELDS: readonly (readonly [string, keyof AttackRecord, string?])[] = [
  ['rt', 'timestamp'],
  ['src', 'src_ip'],
  ['spt', 'src_port'],
  ['dst', 'dest_ip'],
  ['dpt', 'dest_port'],
  ['proto', 'transport'],
  ['app', 'protocol'],
  ['deviceDirection', 'direction'],
  ['dvchost', 'sensor'],
  ['externalId', 'event_id'],
  ['cs1', 'vendor_product', 'vendor_product'],
  ['cs2', 'ids_type', 'ids_type'],
  ['cs3', 'app', 'app'],
  ['cs4', 'ssh_username', 'ssh_username'],
  ['cs5', 'ssh_password', 'ssh_password'],
  ['cs6', 'command', 'command'],
  ['request', 'url'],
  ['fileHash', 'sha256'],
];

/**
 * `CEF:0|vendor|product|version|type|signature|severity|extension`. With `timestampPrefix` the line
 * starts with the event's UTC ISO time and a space, as the classic logger's file lines did.
 */
export function formatCef(r: AttackRecord, product: CefProduct = DEFAULT_CEF_PRODUCT, timestampPrefix = false): string {
  const severity = CEF_SEVERITY[r.severity] ?? 1;
  const head = `CEF:0|${cefHeader(product.vendor)}|${cefHeader(product.product)}|${cefHeader(product.version)}|${cefHeader(r.type)}|${cefHeader(r.signature)}|${severity}|`;
  const ext: string[] = [];
  for (const [key, field, label] of CEF_FIELDS) {
    let v: unknown = r[field];
    if (field === 'direction') v = v === 'inbound' ? 0 : 1;
    if (field === 'sha256' && v === null) v = r.md5;
    if (v === null || v === undefined || v === '') continue;
    ext.push(`${key}=${cefValue(String(v))}`);
    if (label !== undefined) ext.push(`${key}Label=${label}`);
  }
  const line = head + ext.join(' ');
  return timestampPrefix ? `${isoTime(r.timestamp)} ${line}` : line;
}

export interface FormatOptions {
  cef?: CefProduct;
  /** CEF lines start with the event time (file outputs, as the classic logger wrote them). */
  cefTimestampPrefix?: boolean;
}

/** One formatted line for a record (raw_json is per event: see formatEvent in records.ts). */
export function formatRecord(format: Exclude<OutputFormat, 'raw_json'>, r: AttackRecord, opts: FormatOptions = {}): string {
  switch (format) {
    case 'json':
      return formatJson(r);
    case 'splunk':
      return formatSplunk(r);
    case 'cef':
      return formatCef(r, opts.cef, opts.cefTimestampPrefix);
  }
}
