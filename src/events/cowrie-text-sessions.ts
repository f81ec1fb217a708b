// Turns the real node's cowrie text lines into the `data` of a cowrie JSON event.
//
// cowrie names the session only on its "New connection: ... [session: X]" line; every later line
// of that session carries no id. Lines are therefore attributed per (node, sensor) to the session
// that cowrie most recently opened and has not yet closed:
// - One attacker at a time (the usual case on a small honeypot) is attributed exactly.
// - With concurrent sessions on one sensor, a line goes to the newest open session and is marked
//   `session_ambiguous: true`, because the text cannot say which one it belongs to. "Connection
//   lost after N seconds" closes the open session whose age is closest to N (cowrie measures N
//   from the same connect), so overlapping sessions still close in the right order, and later
//   lines fall back to the newest session still open.
// - Sessions whose close never arrived are forgotten after `idleMs`, and at most
//   `maxOpenPerSensor` are kept per sensor (oldest dropped first).
// Like cowrie's own JSON output, every event of a session carries its `session` and `src_ip`; the
// `protocol` of the connect event is read from the listening port (…22 ssh, …23 telnet) because
// the text does not say; cowrie.sessions corrects it to ssh when SSH-only lines follow.
import { parseCowrieText, type CowrieTextFields } from './cowrie-text.js';

/** event_type of lines that match no cowrie format, or carry no message at all. */
export const COWRIE_UNPARSED_EVENT_TYPE = 'cowrie.unparsed';

export type CowrieTextOutcome = 'parsed' | 'unparsed' | 'no_message';

export interface CowrieTextEvent {
  eventType: string;
  data: Record<string, unknown>;
  outcome: CowrieTextOutcome;
}

export interface CowrieTextSessionOptions {
  /** Open sessions remembered per (node, sensor). Default 64. */
  maxOpenPerSensor?: number;
  /** An open session with no line for this long is forgotten. Default 1 h. */
  idleMs?: number;
  /** (node, sensor) pairs with open sessions remembered; the oldest is dropped beyond it. Default 10 000. */
  maxSensors?: number;
  /**
   * Called when the open sessions of a (node, sensor) changed (a connect, a close, one forgotten):
   * several cores keep them in a shared state so a node that reconnects elsewhere goes on being
   * attributed there (see cowrie-text-shared.ts). Not called for the time of each line.
   */
  onChange?: (node: string, sensor: string) => void;
}

/** An open session as another core needs it to go on attributing lines. */
export interface OpenTextSession {
  id: string;
  srcIp: string;
  startedAt: number;
}

interface TextSession {
  id: string;
  srcIp: string;
  startedAt: number;
  lastSeen: number;
}

function protocolOfPort(port: unknown): string | undefined {
  if (typeof port !== 'number') return undefined;
  const tail = port % 100;
  return tail === 22 ? 'ssh' : tail === 23 ? 'telnet' : undefined;
}

export class CowrieTextSessions {
  private readonly sensors = new Map<string, TextSession[]>();
  private readonly maxOpen: number;
  private readonly idleMs: number;
  private readonly maxSensors: number;
  private readonly onChange: ((node: string, sensor: string) => void) | undefined;
  private lastIsoAt = NaN;
  private lastIso = '';

  constructor(opts: CowrieTextSessionOptions = {}) {
    this.maxOpen = Math.max(1, opts.maxOpenPerSensor ?? 64);
    this.idleMs = opts.idleMs ?? 3_600_000;
    this.maxSensors = Math.max(1, opts.maxSensors ?? 10_000);
    this.onChange = opts.onChange;
  }

  /** The open sessions of one (node, sensor), oldest first. */
  openOf(node: string, sensor: string): OpenTextSession[] {
    return (this.sensors.get(node + '\u0000' + sensor) ?? []).map((s) => ({ id: s.id, srcIp: s.srcIp, startedAt: s.startedAt }));
  }

  /**
   * Replaces what is open for (node, sensor) by what another core left (the node reconnected
   * here). An empty list forgets the sensor's sessions.
   */
  adopt(node: string, sensor: string, open: readonly OpenTextSession[], now: number): void {
    const key = node + '\u0000' + sensor;
    if (open.length === 0) {
      this.sensors.delete(key);
      return;
    }
    const list = this.sensors.get(key) ?? this.addSensor(key);
    list.length = 0;
    for (const s of open.slice(-this.maxOpen)) list.push({ id: s.id, srcIp: s.srcIp, startedAt: s.startedAt, lastSeen: now });
  }

  /** Sensors of a node with open sessions. */
  sensorsOf(node: string): string[] {
    const prefix = node + '\u0000';
    const out: string[] = [];
    for (const key of this.sensors.keys()) if (key.startsWith(prefix)) out.push(key.slice(prefix.length));
    return out;
  }

  /** Open sessions across all sensors (diagnostics, tests). */
  get openSessions(): number {
    let n = 0;
    for (const list of this.sensors.values()) n += list.length;
    return n;
  }

  /**
   * The cowrie event for one forwarded line. `sensor` is the PotStatusUpdate's pot_id (cowrie's
   * sensor name); `text` its message, undefined when the node sent none. Never throws.
   */
  event(node: string, sensor: string, text: string | undefined, now: number): CowrieTextEvent {
    const fields: CowrieTextFields | undefined = text === undefined ? undefined : parseCowrieText(text);
    const outcome: CowrieTextOutcome = fields !== undefined ? 'parsed' : text === undefined ? 'no_message' : 'unparsed';
    const eventid = fields?.eventid ?? COWRIE_UNPARSED_EVENT_TYPE;
    const key = node + '\u0000' + sensor;
    let list = this.sensors.get(key);

    if (eventid === 'cowrie.session.connect' && fields !== undefined) {
      if (list === undefined) list = this.addSensor(key);
      const id = fields.session as string;
      const existing = list.findIndex((s) => s.id === id);
      if (existing >= 0) list.splice(existing, 1);
      if (list.length >= this.maxOpen) list.shift();
      list.push({ id, srcIp: fields.src_ip as string, startedAt: now, lastSeen: now });
      this.onChange?.(node, sensor);
      // The parser's object is fresh per line: extended in place (spreading it into a new object
      // and then adding keys costs ~15x more in V8, and this is the ingest hot path).
      const data: Record<string, unknown> = fields;
      const protocol = protocolOfPort(fields.dst_port);
      if (protocol !== undefined) data.protocol = protocol;
      data.message = text;
      data.sensor = sensor;
      data.timestamp = this.iso(now);
      return { eventType: eventid, outcome, data };
    }

    const data: Record<string, unknown> = fields ?? { eventid };
    if (text !== undefined) data.message = text;
    data.sensor = sensor;
    data.timestamp = this.iso(now);
    if (list !== undefined) {
      const before = list.length;
      this.dropIdle(list, now);
      let changed = list.length !== before;
      if (list.length > 0) {
        const index = eventid === 'cowrie.session.closed' ? this.closing(list, data.duration, now) : list.length - 1;
        const s = list[index]!;
        s.lastSeen = now;
        data.src_ip = s.srcIp;
        data.session = s.id;
        if (list.length > 1) data.session_ambiguous = true;
        if (eventid === 'cowrie.session.closed') {
          list.splice(index, 1);
          changed = true;
        }
      }
      if (list.length === 0) this.sensors.delete(key);
      if (changed) this.onChange?.(node, sensor);
    }
    return { eventType: eventid, data, outcome };
  }

  /** Index of the session a "Connection lost after N seconds" closes: the one aged closest to N. */
  private closing(list: TextSession[], duration: unknown, now: number): number {
    if (list.length === 1 || typeof duration !== 'number') return list.length - 1;
    let best = list.length - 1;
    let bestDiff = Infinity;
    for (let i = list.length - 1; i >= 0; i--) {
      const diff = Math.abs((now - list[i]!.startedAt) / 1000 - duration);
      if (diff < bestDiff) {
        best = i;
        bestDiff = diff;
      }
    }
    return best;
  }

  private dropIdle(list: TextSession[], now: number): void {
    for (let i = list.length - 1; i >= 0; i--) if (now - list[i]!.lastSeen > this.idleMs) list.splice(i, 1);
  }

  private addSensor(key: string): TextSession[] {
    if (this.sensors.size >= this.maxSensors) {
      const oldest = this.sensors.keys().next();
      if (!oldest.done) this.sensors.delete(oldest.value);
    }
    const list: TextSession[] = [];
    this.sensors.set(key, list);
    return list;
  }

  private iso(now: number): string {
    if (now !== this.lastIsoAt) {
      this.lastIsoAt = now;
      this.lastIso = new Date(now).toISOString();
    }
    return this.lastIso;
  }
}
