// The PROXY protocol header (HAProxy's `send-proxy` / `send-proxy-v2`): the first bytes a load
// balancer writes on a connection it opens to a backend, naming the client it accepted. Version 1
// is one text line (at most 107 bytes with its CRLF); version 2 is binary: a 12-byte signature,
// version and command, address family and transport, a length, then the addresses and optional
// TLVs (ignored here).
//
// parseProxyHeader() looks at the bytes read so far and says: incomplete (read more), invalid
// (close), or a header and how many bytes it took. It never reads past `maxBytes` and decides as
// soon as the bytes cannot start a header, so a peer that speaks the wrong protocol is refused at
// its first byte instead of at the timeout.

/** The client a header names; absent for LOCAL (health checks), UNKNOWN and address families without an IP. */
export interface ProxiedAddress {
  address: string;
  port: number;
}

export interface ProxyHeader {
  version: 1 | 2;
  /**
   * proxy: a relayed connection and its source; local: the proxy speaking for itself (v2 LOCAL,
   * health checks); unknown: relayed, but the source is not an IP (v1 UNKNOWN, v2 UNSPEC/UNIX).
   * For local and unknown the connection's own address stands.
   */
  command: 'proxy' | 'local' | 'unknown';
  source?: ProxiedAddress;
  destination?: ProxiedAddress;
}

export type RejectReason = 'missing' | 'malformed' | 'oversized' | 'unsupported';

export type ProxyParse =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: RejectReason; detail: string }
  | { status: 'ok'; header: ProxyHeader; length: number };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The spec's bound: "PROXY UNKNOWN" + the longest TCP6 line, CRLF included. */
export const V1_MAX_BYTES = 107;
const V2_FIXED = 16;
/** Default bound of a v2 header: the addresses (216 bytes for AF_UNIX) and room for a few TLVs. */
export const DEFAULT_MAX_HEADER_BYTES = 1024;

const INCOMPLETE: ProxyParse = { status: 'incomplete' };

function invalid(reason: RejectReason, detail: string): ProxyParse {
  return { status: 'invalid', reason, detail };
}

/** True if the first `n` bytes of buf equal the first `n` of `sig`. */
function startsLike(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return false;
  return true;
}

/**
 * Parses the header at the start of `buf`. `maxBytes` bounds a v2 header (v1 is bounded by the
 * spec's 107 bytes).
 */
export function parseProxyHeader(buf: Buffer, maxBytes = DEFAULT_MAX_HEADER_BYTES): ProxyParse {
  if (buf.length === 0) return INCOMPLETE;
  if (buf[0] === V2_SIGNATURE[0]) {
    if (!startsLike(buf, V2_SIGNATURE)) return invalid('missing', 'the connection does not start with a PROXY protocol header');
    return buf.length < V2_FIXED ? INCOMPLETE : parseV2(buf, maxBytes);
  }
  if (!startsLike(buf, V1_PREFIX)) return invalid('missing', 'the connection does not start with a PROXY protocol header');
  if (buf.length < V1_PREFIX.length) return INCOMPLETE;
  return parseV1(buf);
}

// ------------------------------------------------------------------ version 1

const V1_PORT = /^(?:0|[1-9][0-9]{0,4})$/;

function parseV1(buf: Buffer): ProxyParse {
  const scan = Math.min(buf.length, V1_MAX_BYTES);
  let cr = -1;
  for (let i = V1_PREFIX.length; i < scan; i++) {
    const c = buf[i]!;
    if (c === 0x0d) {
      cr = i;
      break;
    }
    // Printable ASCII only: the line is made of keywords, addresses and ports.
    if (c < 0x20 || c > 0x7e) return invalid('malformed', `PROXY v1 line holds byte 0x${c.toString(16).padStart(2, '0')}`);
  }
  if (cr < 0) {
    return buf.length >= V1_MAX_BYTES ? invalid('oversized', `PROXY v1 line longer than ${V1_MAX_BYTES} bytes`) : INCOMPLETE;
  }
  if (cr + 2 > V1_MAX_BYTES) return invalid('oversized', `PROXY v1 line longer than ${V1_MAX_BYTES} bytes`);
  if (cr + 1 >= buf.length) return INCOMPLETE;
  if (buf[cr + 1] !== 0x0a) return invalid('malformed', 'PROXY v1 line: CR not followed by LF');
  const length = cr + 2;
  const line = buf.toString('latin1', V1_PREFIX.length, cr);
  const parts = line.split(' ');
  const proto = parts[0];
  if (proto === 'UNKNOWN') return { status: 'ok', header: { version: 1, command: 'unknown' }, length };
  if (proto !== 'TCP4' && proto !== 'TCP6') return invalid('malformed', `PROXY v1 protocol ${JSON.stringify(proto)} is not TCP4, TCP6 or UNKNOWN`);
  if (parts.length !== 5) return invalid('malformed', `PROXY v1 ${proto} line needs 4 fields separated by single spaces`);
  const [, src, dst, sport, dport] = parts as [string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : 6;
  const source = v1Address(src, family);
  const destination = v1Address(dst, family);
  if (source === undefined || destination === undefined) return invalid('malformed', `PROXY v1 ${proto} line: not an IPv${family} address`);
  if (!V1_PORT.test(sport) || !V1_PORT.test(dport) || Number(sport) > 65535 || Number(dport) > 65535) {
    return invalid('malformed', 'PROXY v1 line: port not a number from 0 to 65535');
  }
  return {
    status: 'ok',
    header: { version: 1, command: 'proxy', source: { address: source, port: Number(sport) }, destination: { address: destination, port: Number(dport) } },
    length,
  };
}

/** The address in canonical text, or undefined if it is not one of `family`. */
function v1Address(text: string, family: 4 | 6): string | undefined {
  if (family === 4) {
    const bytes = parseIpv4(text);
    return bytes === undefined ? undefined : bytes.join('.');
  }
  const bytes = parseIpv6(text);
  return bytes === undefined ? undefined : formatIpv6(bytes);
}

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/** 16 bytes of an IPv6 address in text (with `::` and an optional dotted-quad tail). */
function parseIpv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  let head = text;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) >= 0) {
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    head = text.slice(0, lastColon + 1);
    // "::1.2.3.4" leaves "::", "a::1.2.3.4" leaves "a::", "a:b:c:d:e:f:1.2.3.4" leaves "a:...:f:".
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const group = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = group(halves[0]!);
  const right = halves.length === 2 ? group(halves[1]!) : [];
  if (left === undefined || right === undefined) return undefined;
  const given = left.length + right.length + tail.length;
  let groups: number[];
  if (halves.length === 2) {
    if (given > 7) return undefined;
    groups = [...left, ...new Array<number>(8 - given).fill(0), ...right, ...tail];
  } else {
    if (given !== 8) return undefined;
    groups = [...left, ...tail];
  }
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

// ------------------------------------------------------------------ version 2

const CMD_LOCAL = 0x0;
const CMD_PROXY = 0x1;
const AF_UNSPEC = 0x0;
const AF_INET = 0x1;
const AF_INET6 = 0x2;
const AF_UNIX = 0x3;
const TRANSPORT_STREAM = 0x1;

function parseV2(buf: Buffer, maxBytes: number): ProxyParse {
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return invalid('unsupported', `PROXY v2 signature with version ${verCmd >> 4}`);
  const command = verCmd & 0x0f;
  if (command !== CMD_LOCAL && command !== CMD_PROXY) return invalid('malformed', `PROXY v2 command 0x${command.toString(16)} is neither LOCAL nor PROXY`);
  const family = buf[13]! >> 4;
  const transport = buf[13]! & 0x0f;
  const length = V2_FIXED + buf.readUInt16BE(14);
  if (length > maxBytes) return invalid('oversized', `PROXY v2 header of ${length} bytes exceeds the ${maxBytes}-byte bound`);
  if (buf.length < length) return INCOMPLETE;
  // LOCAL: the proxy's own connection (health checks); whatever follows is skipped.
  if (command === CMD_LOCAL) return { status: 'ok', header: { version: 2, command: 'local' }, length };
  if (family === AF_UNSPEC || family === AF_UNIX) {
    if (family === AF_UNIX && length - V2_FIXED < 216) return invalid('malformed', 'PROXY v2 AF_UNIX header shorter than its addresses');
    return { status: 'ok', header: { version: 2, command: 'unknown' }, length };
  }
  if (family !== AF_INET && family !== AF_INET6) return invalid('malformed', `PROXY v2 address family 0x${family.toString(16)} is not defined`);
  if (transport !== TRANSPORT_STREAM) return invalid('unsupported', 'PROXY v2 header for a datagram or unspecified transport on a stream listener');
  const addrBytes = family === AF_INET ? 4 : 16;
  if (length - V2_FIXED < 2 * addrBytes + 4) return invalid('malformed', 'PROXY v2 header shorter than its addresses');
  const at = V2_FIXED;
  const format = (offset: number) => (family === AF_INET ? Array.from(buf.subarray(offset, offset + 4)).join('.') : formatIpv6(buf.subarray(offset, offset + 16)));
  return {
    status: 'ok',
    header: {
      version: 2,
      command: 'proxy',
      source: { address: format(at), port: buf.readUInt16BE(at + 2 * addrBytes) },
      destination: { address: format(at + addrBytes), port: buf.readUInt16BE(at + 2 * addrBytes + 2) },
    },
    length,
  };
}

/**
 * RFC 5952 text of 16 address bytes; an IPv4-mapped address (::ffff:a.b.c.d) is given as the
 * IPv4 address, as the core writes peers everywhere else.
 */
export function formatIpv6(bytes: Uint8Array): string {
  let mapped = true;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) mapped = false;
  if (mapped && bytes[10] === 0xff && bytes[11] === 0xff) return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // The longest run of two or more zero groups (the first of equal ones) becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
