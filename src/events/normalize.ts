import { cowrieTextPot, type CowrieTextContext } from './cowrie-pots.js';
import type { CowrieTextOutcome } from './cowrie-text-sessions.js';
import type { AttackEvent, PotTypeLookup } from './types.js';

export { createCowrieTextContext, type CowrieTextContext } from './cowrie-pots.js';

/** event_type given to event-shaped PotStatusUpdate lines (free text in `message`). */
export const STATUS_MESSAGE_EVENT_TYPE = 'status_message';
/** pot_type when neither the message nor the lookup knows it. */
export const UNKNOWN_POT_TYPE = 'unknown';

/** Identifier-like fields are capped: they become SQLite index keys and hpfeeds channel names. */
const MAX_NAME_LENGTH = 200;

/** An event between receipt and commit. `id` is set once its transaction committed. */
export interface PendingEvent {
  id: number;
  node: string;
  potId: string;
  potType: string;
  eventType: string;
  /** Epoch ms. */
  timestamp: number;
  receivedAt: number;
  data: Record<string, unknown>;
  /** `data` serialised once, reused by the INSERT, the hpfeeds payload and the stream. */
  dataJson: string;
  /** True for PotStatusUpdate-derived events (free text, no structured data). */
  fromStatus: boolean;
  /** True when the node's timestamp was unusable and the receive time was substituted. */
  timestampInvalid: boolean;
  /** Set for cowrie text lines from the real node: how the text was read. */
  cowrieText?: CowrieTextOutcome;
}

export type NormaliseOutcome = PendingEvent | { error: string };

const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?$/;
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Parses an ISO 8601 date-time to epoch ms, or NaN. Stricter than Date.parse (which also accepts
 * free-form dates) and keeps sub-ms digits from cowrie's microsecond timestamps from mattering.
 * A date-time without offset is taken as UTC: nodes log in UTC, and local time of the core would be
 * a guess either way.
 */
export function parseIsoTimestamp(text: string): number {
  const fast = parseCompactUtc(text);
  return fast !== undefined ? fast : parseIsoTimestampGeneral(text);
}

/** Value of the ASCII digit at `i` of `t`, or -1. */
function digit(t: string, i: number): number {
  const c = t.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -1;
}

/** Two digits at `i`, or -1. */
function two(t: string, i: number): number {
  const a = digit(t, i);
  const b = digit(t, i + 1);
  return a < 0 || b < 0 ? -1 : a * 10 + b;
}

/**
 * The form nodes send nearly always, "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z", read digit by digit: the
 * regex path allocated its match array and a dozen substrings per event (more garbage than the
 * event's data). Same rules and result as parseIsoTimestampGeneral; undefined for any other form.
 */
function parseCompactUtc(t: string): number | undefined {
  const n = t.length;
  if (n < 20 || n > 30 || t.charCodeAt(n - 1) !== 90 /* Z */) return undefined;
  if (t.charCodeAt(4) !== 45 || t.charCodeAt(7) !== 45 || t.charCodeAt(10) !== 84 || t.charCodeAt(13) !== 58 || t.charCodeAt(16) !== 58) return undefined;
  const y1 = two(t, 0);
  const y2 = two(t, 2);
  const month = two(t, 5);
  const day = two(t, 8);
  const hour = two(t, 11);
  const minute = two(t, 14);
  const second = two(t, 17);
  if (y1 < 0 || y2 < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return undefined;
  const year = y1 * 100 + y2;
  if (year < 100) return undefined; // Date.UTC's two-digit years: the general path handles them
  let ms = 0;
  if (n > 20) {
    // '.' then 1..9 digits then 'Z'; only the first three count (sub-ms digits are dropped)
    const digits = n - 21;
    if (t.charCodeAt(19) !== 46 || digits < 1 || digits > 9) return undefined;
    for (let i = 0; i < digits; i++) {
      const d = digit(t, 20 + i);
      if (d < 0) return undefined;
      if (i < 3) ms = ms * 10 + d;
    }
    for (let i = digits; i < 3; i++) ms *= 10;
  } else if (t.charCodeAt(19) !== 90) {
    return undefined;
  }
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]!) return NaN;
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return NaN;
  if (hour > 23 || minute > 59 || second > 60) return NaN;
  return Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), ms);
}

/** @internal parseIsoTimestamp for every accepted form (exported for the test that compares both paths). */
export function parseIsoTimestampGeneral(text: string): number {
  const m = ISO_8601.exec(text);
  if (m === null) return NaN;
  const year = +m[1]!;
  const month = +m[2]!;
  const day = +m[3]!;
  const hour = +m[4]!;
  const minute = +m[5]!;
  const second = m[6] === undefined ? 0 : +m[6];
  if (month < 1 || month > 12 || day < 1 || day > DAYS_IN_MONTH[month - 1]!) return NaN;
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return NaN;
  if (hour > 23 || minute > 59 || second > 60) return NaN;
  const ms = m[7] === undefined ? 0 : Math.floor(+(m[7] + '000').slice(0, 3));
  let t = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), ms);
  // Date.UTC reads years 0..99 as 1900..1999; the year the peer wrote is the year it meant.
  if (year < 100) t = new Date(t).setUTCFullYear(year);
  if (m[9] !== undefined) {
    const offsetMin = +m[10]! * 60 + (m[11] === undefined ? 0 : +m[11]);
    if (offsetMin > 18 * 60) return NaN;
    t -= (m[9] === '-' ? -1 : 1) * offsetMin * 60_000;
  }
  return t;
}

/** JSON of data from nodes; a codec that keeps big integers exact may hand over BigInt values. */
function serialiseData(data: Record<string, unknown>): string {
  try {
    return JSON.stringify(data);
  } catch {
    return JSON.stringify(data, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
}

function cap(s: string): string {
  return s.length > MAX_NAME_LENGTH ? s.slice(0, MAX_NAME_LENGTH) : s;
}

/** Caches pot type lookups: they hit SQLite and every event without a pot_type needs one. */
export class PotTypeCache {
  private readonly entries = new Map<string, { type: string; expires: number }>();
  constructor(
    private readonly lookup: PotTypeLookup | undefined,
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  /** Pot types reported by live PotStatusUpdates: authoritative, no expiry, bounded. */
  private readonly reported = new Map<string, string>();

  learn(node: string, potId: string, potType: string): void {
    if (potType === '') return;
    if (this.reported.size >= 100_000) this.reported.clear();
    this.reported.set(node + '\u0000' + potId, cap(potType));
  }

  resolve(node: string, potId: string, now: number): string {
    return this.known(node, potId, now) ?? UNKNOWN_POT_TYPE;
  }

  /** The pot's type when a status report or the lookup knows it. */
  known(node: string, potId: string, now: number): string | undefined {
    const key = node + '\u0000' + potId;
    const reported = this.reported.get(key);
    if (reported !== undefined) return reported;
    if (this.lookup === undefined) return undefined;
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.expires > now) return hit.type === '' ? undefined : hit.type;
    let type: string | undefined;
    try {
      type = this.lookup(node, potId);
    } catch {
      type = undefined;
    }
    const resolved = type ? cap(type) : '';
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { type: resolved, expires: now + this.ttlMs });
    return resolved === '' ? undefined : resolved;
  }
}

/**
 * Turns a gateway `attackEvent` into one event record. With `cowrie`, event lines that are the
 * real node's cowrie text become cowrie events of the node's cowrie pot. Never throws: returns
 * `{error}` for input that cannot be stored at all (no node or pot, wrong message type).
 */
export function normaliseAttackEvent(e: AttackEvent, potTypes: PotTypeCache, cowrie?: CowrieTextContext): NormaliseOutcome {
  const msg = e.message as unknown as Record<string, unknown> | null;
  if (msg === null || typeof msg !== 'object') return { error: 'message is not an object' };
  if (typeof e.nodeName !== 'string' || e.nodeName === '') return { error: 'missing nodeName' };
  const receivedAt =
    typeof e.receivedAt === 'number' && Number.isFinite(e.receivedAt) ? Math.trunc(e.receivedAt) : Date.now();
  const potId = typeof msg.pot_id === 'string' ? cap(msg.pot_id) : '';
  const rawPotType = typeof msg.pot_type === 'string' ? msg.pot_type : '';

  if (cowrie !== undefined && msg.type === 'PotStatusUpdate' && (msg.status === '' || msg.status === undefined)) {
    const cowriePot = cowrieTextPot(potTypes, cowrie, e.nodeName, potId, rawPotType, msg.message, receivedAt);
    if (cowriePot !== undefined) {
      const text = typeof msg.message === 'string' ? msg.message : undefined;
      const ev = cowrie.sessions.event(e.nodeName, potId, text, receivedAt);
      return {
        id: 0,
        node: e.nodeName,
        potId: cowriePot,
        potType: 'cowrie',
        eventType: ev.eventType,
        timestamp: receivedAt,
        receivedAt,
        data: ev.data,
        dataJson: serialiseData(ev.data),
        fromStatus: false,
        timestampInvalid: false,
        cowrieText: ev.outcome,
      };
    }
  }
  const potType = rawPotType !== '' ? cap(rawPotType) : potTypes.resolve(e.nodeName, potId, receivedAt);

  if (msg.type === 'PotEvent') {
    const rawData = msg.data;
    const data: Record<string, unknown> =
      rawData !== null && typeof rawData === 'object' && !Array.isArray(rawData)
        ? (rawData as Record<string, unknown>)
        : { value: rawData ?? null };
    let timestamp = NaN;
    const ts = msg.timestamp;
    if (typeof ts === 'string') timestamp = parseIsoTimestamp(ts);
    else if (typeof ts === 'number' && Number.isFinite(ts)) timestamp = ts < 1e11 ? Math.trunc(ts * 1000) : Math.trunc(ts);
    const timestampInvalid = Number.isNaN(timestamp);
    const eventType = typeof msg.event_type === 'string' && msg.event_type !== '' ? cap(msg.event_type) : 'unknown';
    return {
      id: 0,
      node: e.nodeName,
      potId,
      potType,
      eventType,
      timestamp: timestampInvalid ? receivedAt : timestamp,
      receivedAt,
      data,
      dataJson: typeof msg.dataJson === 'string' && data === rawData ? msg.dataJson : serialiseData(data),
      fromStatus: false,
      timestampInvalid,
    };
  }
  if (msg.type === 'PotStatusUpdate') {
    if (msg.status !== '' && msg.status !== undefined) return { error: `PotStatusUpdate with status "${String(msg.status)}" is not an event` };
    const data: Record<string, unknown> = typeof msg.message === 'string' ? { message: msg.message } : {};
    return {
      id: 0,
      node: e.nodeName,
      potId,
      potType,
      eventType: STATUS_MESSAGE_EVENT_TYPE,
      timestamp: receivedAt,
      receivedAt,
      data,
      dataJson: JSON.stringify(data),
      fromStatus: true,
      timestampInvalid: false,
    };
  }
  return { error: `unexpected message type ${JSON.stringify(msg.type)}` };
}
