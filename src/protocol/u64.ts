// HoneyBee node ids are random u64 values sent as bare JSON integers. JavaScript numbers lose
// precision above 2^53, so ids live as exact decimal strings inside the core and are only ever
// written back as bare integers.
import { randomBytes } from 'node:crypto';

/** u64 as decimal digits, exact (no sign, no leading zeros). */
export type NodeId = string;

export const U64_MAX = '18446744073709551615';

const CANONICAL_DIGITS = /^(?:0|[1-9][0-9]*)$/;
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** Why `text` is not a u64 in canonical decimal form, or undefined when it is one. */
export function u64Problem(text: string): string | undefined {
  if (CANONICAL_DIGITS.test(text)) {
    if (text.length < 20 || (text.length === 20 && text <= U64_MAX)) return undefined;
    return `out of u64 range 0..${U64_MAX}`;
  }
  if (JSON_NUMBER.test(text)) {
    if (text.startsWith('-')) return 'negative; a u64 is 0..' + U64_MAX;
    return 'not an integer (fraction or exponent); a u64 is written as plain digits';
  }
  return 'not a decimal integer';
}

export function isNodeId(value: unknown): value is NodeId {
  return typeof value === 'string' && u64Problem(value) === undefined;
}

const TWO_POW_53 = 2n ** 53n;

/**
 * A random u64 like a HoneyBee node picks at process start. Always above 2^53 so every use
 * exercises the precision path (a real node lands there with probability 1 - 2^-11 anyway).
 */
export function randomNodeId(): NodeId {
  for (;;) {
    const value = randomBytes(8).readBigUInt64BE(0);
    if (value > TWO_POW_53) return value.toString();
  }
}

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const MINUS = 45;

function isJsonWhitespace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

function isNumberChar(c: number): boolean {
  // digits, '-', '+', '.', 'e', 'E': the alphabet of JSON number tokens
  return (c >= 48 && c <= 57) || c === MINUS || c === 43 || c === 46 || c === 101 || c === 69;
}

/** Returned by quoteNodeIdIntegers when a node_id at the envelope depth is a JSON string. */
export const NODE_ID_IS_STRING = Symbol('node_id is a string');

export interface ScannedJson {
  /** The input with node_id integers at the envelope depth quoted (or the input itself). */
  text: string;
  /** A node_id at the envelope depth was a JSON string rather than a bare integer. */
  nodeIdIsString: boolean;
  /** Nesting went beyond the limit; scanning stopped there. */
  tooDeep: boolean;
}

/**
 * One pass over a JSON text before JSON.parse:
 * - rewrites `"node_id": <number>` into `"node_id": "<number>"` for keys at object/array nesting
 *   `nodeIdDepth` (3 = envelope.message.<Variant>.node_id), leaving everything else, including
 *   strings that merely contain "node_id" and node_id keys nested inside event data, untouched.
 *   The number token is quoted verbatim, so JSON.parse keeps every digit and the u64 check sees
 *   exactly what the node sent;
 * - quotes every other number token JSON.parse would not return exactly (integers beyond 2^53,
 *   overflow such as `1e999`, underflow of a non-zero value): such values reach the core as the
 *   digits the peer sent, as a string, instead of silently rounded, Infinity (stored as null) or 0.
 *   A field whose schema wants a number then refuses it with a clear error;
 * - refuses nesting deeper than `maxDepth`: JSON.parse copes, but every later JSON.stringify of
 *   such data (storage, republishing) would overflow the stack.
 * Malformed input is returned unchanged for JSON.parse to reject. Strings are skipped with
 * indexOf, so the cost is mostly that of the structural characters.
 */
export function scanJson(text: string, nodeIdDepth = 3, maxDepth = 64): ScannedJson {
  const n = text.length;
  let level = 0;
  let out = '';
  let copiedUpTo = 0;
  let i = 0;
  const result = (extra: Partial<ScannedJson> = {}): ScannedJson => ({
    text: copiedUpTo === 0 ? text : out + text.slice(copiedUpTo),
    nodeIdIsString: false,
    tooDeep: false,
    ...extra,
  });
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = -1;
      let from = i + 1;
      while (end < 0) {
        const q = text.indexOf('"', from);
        if (q < 0) return result();
        let backslashes = 0;
        for (let b = q - 1; b > i && text.charCodeAt(b) === BACKSLASH; b--) backslashes++;
        if ((backslashes & 1) === 0) end = q;
        else from = q + 1;
      }
      const open = i;
      i = end + 1;
      if (level !== nodeIdDepth || end - open !== 8 || !text.startsWith('node_id', open + 1)) continue;
      let k = i;
      while (k < n && isJsonWhitespace(text.charCodeAt(k))) k++;
      if (text.charCodeAt(k) !== COLON) continue;
      k++;
      while (k < n && isJsonWhitespace(text.charCodeAt(k))) k++;
      const v = text.charCodeAt(k);
      if (v === QUOTE) return result({ nodeIdIsString: true });
      if (v !== MINUS && !(v >= 48 && v <= 57)) continue;
      let tokenEnd = k + 1;
      while (tokenEnd < n && isNumberChar(text.charCodeAt(tokenEnd))) tokenEnd++;
      if (!JSON_NUMBER.test(text.slice(k, tokenEnd))) continue;
      out += text.slice(copiedUpTo, k) + '"' + text.slice(k, tokenEnd) + '"';
      copiedUpTo = tokenEnd;
      i = tokenEnd;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++level > maxDepth) return result({ tooDeep: true });
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) level--;
    else if (c === MINUS || (c >= 48 && c <= 57)) {
      let tokenEnd = i + 1;
      while (tokenEnd < n && isNumberChar(text.charCodeAt(tokenEnd))) tokenEnd++;
      if (tokenEnd - i >= 16 || hasExponent(text, i, tokenEnd)) {
        const token = text.slice(i, tokenEnd);
        if (!representable(token)) {
          out += text.slice(copiedUpTo, i) + '"' + token + '"';
          copiedUpTo = tokenEnd;
        }
      }
      i = tokenEnd;
      continue;
    }
    i++;
  }
  return result();
}

function hasExponent(text: string, from: number, to: number): boolean {
  for (let k = from; k < to; k++) {
    const c = text.charCodeAt(k);
    if (c === 101 || c === 69) return true;
  }
  return false;
}

/**
 * Whether JSON.parse returns exactly the number `token` denotes, as far as a double can: integers
 * beyond 2^53 (rounded), overflow (`1e999` becomes Infinity, then null) and underflow of a non-zero
 * value (`1e-999` becomes 0) are not. Malformed tokens are left to JSON.parse to reject.
 */
function representable(token: string): boolean {
  if (!JSON_NUMBER.test(token)) return true;
  const value = Number(token);
  if (!Number.isFinite(value)) return false;
  if (value === 0) return !/[1-9]/.test(token.replace(/[eE].*$/, ''));
  if (/^-?\d+$/.test(token)) return Number.isSafeInteger(value);
  return true;
}

/**
 * JSON text with every number JSON.parse would not return exactly (integers beyond 2^53, `1e999`,
 * `1e-999`) turned into a string of its digits, for reading stored JSON without altering it.
 */
export function quoteInexactNumbers(text: string): string {
  return scanJson(text, -1, Number.POSITIVE_INFINITY).text;
}

/** scanJson's node_id quoting alone (no depth limit): the quoted text, or NODE_ID_IS_STRING. */
export function quoteNodeIdIntegers(text: string, depth = 3): string | typeof NODE_ID_IS_STRING {
  const scanned = scanJson(text, depth, Number.POSITIVE_INFINITY);
  return scanned.nodeIdIsString ? NODE_ID_IS_STRING : scanned.text;
}
