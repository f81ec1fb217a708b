// The JSON of a committed event as republished (hpfeeds apiary.events and the pot type's channels,
// the live streams), written as UTF-8 straight into one reused buffer. Building it as a string and
// then encoding that string (a concatenation, its flattening, a Buffer per event) was, at 40k
// events/s, about a third of the core's garbage; here an event costs one small view object.
import type { StoredRow } from './store.js';

/** The reused buffer's size; an event that needs more gets a buffer of its own. */
const SCRATCH_BYTES = 16 * 1024;
/** Bytes of the fixed parts and two ISO timestamps, with room to spare. */
const FIXED_BYTES = 128;

const OPEN_ID = Buffer.from('{"id":');
const TIMESTAMP = Buffer.from(',"timestamp":"');
const DATA = Buffer.from('","data":');
const RECEIVED_AT = Buffer.from(',"received_at":"');
const CLOSE = Buffer.from('"}');
const DIGITS_MAX = 20;

interface PotPrefix {
  potId: string;
  potType: string;
  /** `,"node":..,"pot_id":..,"pot_type":..,"event_type":` */
  bytes: Buffer;
}

/**
 * Writes `{"id":..,"node":..,"pot_id":..,"pot_type":..,"event_type":..,"timestamp":..,"data":..,
 * "received_at":..}` for one event, data being the stored JSON text as it is. The returned view is
 * valid until the next write(): publishers copy what they keep (see EventPublisher).
 */
export class EventPayloadWriter {
  private readonly scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  /** Last pot seen per node (a node's events mostly come from one pot): the prefix is built once. */
  private readonly prefixes = new Map<string, PotPrefix>();
  private readonly eventTypes = new Map<string, Buffer>();
  // One per field: an event's two times are mostly in different seconds than the other field's.
  private readonly timestamps = new IsoTimeWriter();
  private readonly receivedTimes = new IsoTimeWriter();

  write(e: StoredRow): Buffer {
    const prefix = this.prefixFor(e.node, e.potId, e.potType);
    const eventType = this.eventTypeFor(e.eventType);
    const data = e.dataJson;
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    const worst = FIXED_BYTES + DIGITS_MAX + prefix.length + eventType.length + data.length * 3;
    const buf = worst > SCRATCH_BYTES ? Buffer.allocUnsafeSlow(worst) : this.scratch;
    buf.set(OPEN_ID, 0);
    let at = writeDecimal(buf, OPEN_ID.length, e.id);
    buf.set(prefix, at);
    at += prefix.length;
    buf.set(eventType, at);
    at += eventType.length;
    buf.set(TIMESTAMP, at);
    at = this.timestamps.write(buf, at + TIMESTAMP.length, e.timestamp);
    buf.set(DATA, at);
    at += DATA.length;
    at += buf.write(data, at, 'utf8');
    buf.set(RECEIVED_AT, at);
    at = this.receivedTimes.write(buf, at + RECEIVED_AT.length, e.receivedAt);
    buf.set(CLOSE, at);
    at += CLOSE.length;
    return buf.subarray(0, at);
  }

  private prefixFor(node: string, potId: string, potType: string): Buffer {
    const last = this.prefixes.get(node);
    if (last !== undefined && last.potId === potId && last.potType === potType) return last.bytes;
    const bytes = Buffer.from(
      `,"node":${JSON.stringify(node)},"pot_id":${JSON.stringify(potId)},"pot_type":${JSON.stringify(potType)},"event_type":`,
      'utf8',
    );
    if (last !== undefined) {
      last.potId = potId;
      last.potType = potType;
      last.bytes = bytes;
    } else {
      if (this.prefixes.size >= 10_000) this.prefixes.clear();
      this.prefixes.set(node, { potId, potType, bytes });
    }
    return bytes;
  }

  private eventTypeFor(eventType: string): Buffer {
    let bytes = this.eventTypes.get(eventType);
    if (bytes === undefined) {
      bytes = Buffer.from(JSON.stringify(eventType), 'utf8');
      if (this.eventTypes.size >= 10_000) this.eventTypes.clear();
      this.eventTypes.set(eventType, bytes);
    }
    return bytes;
  }
}

/** 10000-01-01T00:00:00Z: from there toISOString writes a signed six-digit year. */
const YEAR_10000_MS = 253_402_300_800_000;

/**
 * Writes a time as toISOString does (`2026-12-02T07:14:05.123Z`). The text up to the seconds is
 * built once per second and the milliseconds written as digits: building the whole string (a Date,
 * its ISO text, a Buffer) for every event whose time differed from the previous one's was most of
 * what a payload cost beyond copying its data.
 */
class IsoTimeWriter {
  private second = NaN;
  /** `YYYY-MM-DDTHH:MM:SS.` of `second`. */
  private head = Buffer.alloc(0);

  write(buf: Buffer, at: number, ms: number): number {
    if (!(Number.isInteger(ms) && ms >= 0 && ms < YEAR_10000_MS)) return at + buf.write(new Date(ms).toISOString(), at, 'latin1');
    const second = Math.floor(ms / 1000);
    if (second !== this.second) {
      this.second = second;
      this.head = Buffer.from(new Date(second * 1000).toISOString().slice(0, 20), 'latin1');
    }
    buf.set(this.head, at);
    at += this.head.length;
    const milli = ms - second * 1000;
    buf[at] = 48 + Math.floor(milli / 100);
    buf[at + 1] = 48 + (Math.floor(milli / 10) % 10);
    buf[at + 2] = 48 + (milli % 10);
    buf[at + 3] = 90; // Z
    return at + 4;
  }
}

/** Writes a non-negative integer's decimal digits at `at`; returns the end. */
function writeDecimal(buf: Buffer, at: number, n: number): number {
  if (!(Number.isSafeInteger(n) && n >= 0)) return at + buf.write(String(n), at, 'latin1');
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  const end = at + digits;
  for (let i = end - 1; i >= at; i--) {
    // `%` is exact on safe integers; n - floor(n / 10) * 10 is not near 2^53.
    buf[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}
