// Fast path of the node -> core parser for the three envelopes that make up nearly all traffic
// (PotEvent, PotStatusUpdate, NodeStatusUpdate), in the exact compact form Go nodes write:
//
//   {"version":2,"message":{"PotEvent":{"node_id":<u64>,"pot_id":"..","pot_type":"..","event_type":"..","timestamp":"..","data":<object>}}}
//   {"version":2,"message":{"PotStatusUpdate":{"node_id":<u64>,"pot_id":"..","pot_type":"..","status":"..","message":<string|null>}}}
//   {"version":2,"message":{"NodeStatusUpdate":{"node_id":<u64>,"status":".."}}}
//
// The fixed envelope is matched by hand (node_id digits read exactly, so no u64 rewriting pass is
// needed), short string fields are taken as-is when they hold no escape, and only the free-form
// tail (data, message) goes through JSON.parse. Every check zod would make for these shapes is made
// here; anything else (other field order, whitespace, escapes in the short fields, a rule broken)
// returns undefined and the general parser (codec.ts) handles the line, including its precise error.
// A test compares both parsers on fuzzed lines.
import { u64Problem } from './u64.js';

const PREFIX = '{"version":2,"message":{"';
const NODE_ID = '":{"node_id":';
const END = '}}}';
/** The codec's limit (64) minus the three levels of the envelope around the data. */
const MAX_DATA_NESTING = 64 - 3;
/** Control characters and backslashes: a short field with any of these takes the general path. */
const NOT_PLAIN = /[\u0000-\u001f\u007f\\]/;

const NODE_STATUSES = new Set(['Connected', 'Deploying', 'Running', 'Stopped', 'Failed', 'Unknown']);
const POT_STATUSES = new Set(['Installing', 'Running', 'Stopped', 'Failed', '']);

export type HotMessage =
  | { type: 'NodeStatusUpdate'; node_id: string; status: string }
  | { type: 'PotStatusUpdate'; node_id: string; pot_id: string; pot_type: string; status: string; message?: string }
  | {
      type: 'PotEvent';
      node_id: string;
      pot_id: string;
      pot_type: string;
      event_type: string;
      timestamp: string;
      data: Record<string, unknown>;
      /** data exactly as the node wrote it (valid JSON: it was just parsed). */
      dataJson: string;
    };

/** Reads `,"key":"value"` at `pos`; the value is returned only when it needs no unescaping. */
class Cursor {
  pos: number;
  value = '';
  constructor(
    readonly text: string,
    pos: number,
  ) {
    this.pos = pos;
  }
  /** Expects `literal` at the cursor and moves past it. */
  lit(literal: string): boolean {
    if (!this.text.startsWith(literal, this.pos)) return false;
    this.pos += literal.length;
    return true;
  }
  /** A plain JSON string token at the cursor (no escapes, no control characters) into `value`. */
  str(): boolean {
    const t = this.text;
    if (t.charCodeAt(this.pos) !== 34) return false;
    const end = t.indexOf('"', this.pos + 1);
    if (end < 0) return false;
    const v = t.slice(this.pos + 1, end);
    if (NOT_PLAIN.test(v)) return false;
    this.value = v;
    this.pos = end + 1;
    return true;
  }
}

/** At most MAX_DATA_NESTING opening brackets in all: then nesting cannot exceed it (strings may overcount; fine). */
/**
 * True when the text may hold a number JSON.parse would alter (a run of 16+ digits: beyond 2^53 or
 * an underflowing fraction; a 3-digit exponent: overflow or underflow). Such data goes to the
 * general parser, which keeps those numbers as the exact text the node sent. Only what can start a
 * number token is looked at: a value after ':', ',' or '[' (JSON whitespace allowed). Text inside a
 * string that happens to look like that (a ':' then digits) only costs the slow path; a hex id like
 * cowrie's session "46e101c8383b" no longer does (its "e101" read as an exponent sent one cowrie
 * event in eight down the general parser). Nor does one after ": " in text, as in cowrie's
 * "[session: 9e1652397d47]" (0.6% of the simulator's events): an exponent counts only when its
 * digits end the token, and a JSON number is never followed by a letter or another digit.
 */
const MAY_BE_INEXACT = /[:,[]\s*-?(?:\d{16}|\d+\.\d{16}|\d+(?:\.\d+)?[eE][+-]?\d{3,}(?![\dA-Za-z_]))/;

function shallow(json: string): boolean {
  let n = 0;
  for (let i = json.indexOf('{'); i >= 0; i = json.indexOf('{', i + 1)) if (++n > MAX_DATA_NESTING) return false;
  for (let i = json.indexOf('['); i >= 0; i = json.indexOf('[', i + 1)) if (++n > MAX_DATA_NESTING) return false;
  return true;
}

/** The hot shapes, parsed; undefined means "use the general parser". Never throws. */
export function parseHotEnvelope(text: string): HotMessage | undefined {
  if (!text.startsWith(PREFIX) || !text.endsWith(END)) return undefined;
  const vEnd = text.indexOf('"', PREFIX.length);
  if (vEnd < 0 || !text.startsWith(NODE_ID, vEnd)) return undefined;
  const variant = text.slice(PREFIX.length, vEnd);
  let i = vEnd + NODE_ID.length;
  const idStart = i;
  for (let c = text.charCodeAt(i); c >= 48 && c <= 57; c = text.charCodeAt(++i));
  if (i === idStart || i - idStart > 20) return undefined;
  const nodeId = text.slice(idStart, i);
  if (u64Problem(nodeId) !== undefined) return undefined;
  const c = new Cursor(text, i);
  const tailEnd = text.length - END.length;
  switch (variant) {
    case 'NodeStatusUpdate': {
      if (!c.lit(',"status":') || !c.str() || c.pos !== tailEnd || !NODE_STATUSES.has(c.value)) return undefined;
      return { type: 'NodeStatusUpdate', node_id: nodeId, status: c.value };
    }
    case 'PotStatusUpdate': {
      if (!c.lit(',"pot_id":') || !c.str()) return undefined;
      const potId = c.value;
      if (potId.length === 0 || potId.length > 255) return undefined;
      if (!c.lit(',"pot_type":') || !c.str() || c.value.length > 255) return undefined;
      const potType = c.value;
      if (!c.lit(',"status":') || !c.str() || !POT_STATUSES.has(c.value)) return undefined;
      const status = c.value;
      const m: HotMessage = { type: 'PotStatusUpdate', node_id: nodeId, pot_id: potId, pot_type: potType, status };
      if (c.pos === tailEnd) return m;
      if (!c.lit(',"message":')) return undefined;
      let message: unknown;
      try {
        message = JSON.parse(text.slice(c.pos, tailEnd));
      } catch {
        return undefined;
      }
      if (typeof message === 'string') m.message = message;
      else if (message !== null) return undefined;
      return m;
    }
    case 'PotEvent': {
      if (!c.lit(',"pot_id":') || !c.str()) return undefined;
      const potId = c.value;
      if (potId.length === 0 || potId.length > 255) return undefined;
      if (!c.lit(',"pot_type":') || !c.str() || c.value.length > 255) return undefined;
      const potType = c.value;
      if (!c.lit(',"event_type":') || !c.str() || c.value.length > 255) return undefined;
      const eventType = c.value;
      if (!c.lit(',"timestamp":') || !c.str() || c.value.length > 64) return undefined;
      const timestamp = c.value;
      if (!c.lit(',"data":')) return undefined;
      const dataJson = text.slice(c.pos, tailEnd);
      if (!shallow(dataJson) || MAY_BE_INEXACT.test(dataJson)) return undefined;
      let data: unknown;
      try {
        data = JSON.parse(dataJson);
      } catch {
        return undefined;
      }
      if (data === null) {
        return { type: 'PotEvent', node_id: nodeId, pot_id: potId, pot_type: potType, event_type: eventType, timestamp, data: {}, dataJson: '{}' };
      }
      if (typeof data !== 'object' || Array.isArray(data)) return undefined;
      return {
        type: 'PotEvent',
        node_id: nodeId,
        pot_id: potId,
        pot_type: potType,
        event_type: eventType,
        timestamp,
        data: data as Record<string, unknown>,
        dataJson,
      };
    }
    default:
      return undefined;
  }
}
