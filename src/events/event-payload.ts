// The JSON of a committed event as republished (hpfeeds apiary.events and the pot type's channels,
// the live streams), written as UTF-8 straight into shared chunks. Building it as a string and then
// encoding that string (a concatenation, its flattening, a Buffer per event) was, at 40k events/s,
// about a third of the core's garbage; here an event costs one small view object.
import type { StoredRow } from './store.js';

/** About fifty events per chunk; under glibc's mapping size with MALLOC_MMAP_THRESHOLD_=65536. */
const CHUNK_BYTES = 32 * 1024;
/** Larger events get a buffer of their own rather than most of a chunk. */
const LARGEST_CARVED = CHUNK_BYTES / 4;
/** Bytes of the fixed parts and two ISO timestamps, with room to spare. */
const FIXED_BYTES = 128;

const OPEN_ID = Buffer.from('{"id":');
const DIGITS_MAX = 20;

interface PotPrefix {
  potId: string;
  potType: string;
  /** `,"node":..,"pot_id":..,"pot_type":..,"event_type":` */
  bytes: Buffer;
}

/**
 * Writes `{"id":..,"node":..,"pot_id":..,"pot_type":..,"event_type":..,"timestamp":..,"data":..,
 * "received_at":..}` for one event, data being the stored JSON text as it is. The returned view
 * stays valid: a chunk is never written over (the broker may hold a view until its turn ends), a
 * full one is left to the collector.
 */
export class EventPayloadWriter {
  private chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  private used = 0;
  /** Last pot seen per node (a node's events mostly come from one pot): the prefix is built once. */
  private readonly prefixes = new Map<string, PotPrefix>();
  private readonly eventTypes = new Map<string, Buffer>();
  private lastTs = NaN;
  private tsBytes = Buffer.alloc(0);
  private lastRecv = NaN;
  private recvBytes = Buffer.alloc(0);

  write(e: StoredRow): Buffer {
    const prefix = this.prefixFor(e.node, e.potId, e.potType);
    const eventType = this.eventTypeFor(e.eventType);
    if (e.timestamp !== this.lastTs) {
      this.lastTs = e.timestamp;
      this.tsBytes = Buffer.from(`,"timestamp":"${new Date(e.timestamp).toISOString()}","data":`, 'latin1');
    }
    if (e.receivedAt !== this.lastRecv) {
      this.lastRecv = e.receivedAt;
      this.recvBytes = Buffer.from(`,"received_at":"${new Date(e.receivedAt).toISOString()}"}`, 'latin1');
    }
    const data = e.dataJson;
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    const worst = FIXED_BYTES + DIGITS_MAX + prefix.length + eventType.length + data.length * 3;
    let buf: Buffer;
    let at: number;
    if (worst > LARGEST_CARVED) {
      buf = Buffer.allocUnsafeSlow(worst);
      at = 0;
    } else {
      if (this.used + worst > this.chunk.length) {
        this.chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
        this.used = 0;
      }
      buf = this.chunk;
      at = this.used;
    }
    const start = at;
    buf.set(OPEN_ID, at);
    at = writeDecimal(buf, at + OPEN_ID.length, e.id);
    buf.set(prefix, at);
    at += prefix.length;
    buf.set(eventType, at);
    at += eventType.length;
    buf.set(this.tsBytes, at);
    at += this.tsBytes.length;
    at += buf.write(data, at, 'utf8');
    buf.set(this.recvBytes, at);
    at += this.recvBytes.length;
    if (buf === this.chunk) this.used = at;
    return buf.subarray(start, at);
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
