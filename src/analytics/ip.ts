// Address helpers for attack analytics: canonical text form (IPv4-mapped IPv6 folded to IPv4),
// scope labels for private/loopback/reserved space, and CIDR lists (IGNORE_CIDRS, scanner ranges).
import { isIP } from 'node:net';

export type IpScope = 'public' | 'private' | 'loopback' | 'reserved';

const MAPPED_V4 = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/**
 * Canonical form of an address from a honeypot log, or null when it is not an IP address.
 * `::ffff:a.b.c.d` (dual-stack listeners report IPv4 peers this way) becomes `a.b.c.d`, so one
 * attacker is one key whichever socket family the pot used. IPv6 is lower-cased and zone ids
 * (`%eth0`) dropped.
 */
export function canonicalIp(value: unknown): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) return null;
  let s = value.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const kind = isIP(s);
  if (kind === 4) return s;
  if (kind !== 6) return null;
  const m = MAPPED_V4.exec(s);
  if (m !== null && isIP(m[1]!) === 4) return m[1]!;
  return s.toLowerCase();
}

export function ipv4ToInt(ip: string): number {
  let n = 0;
  let part = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + part;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  return n * 256 + part;
}

/** 128-bit value of a valid IPv6 address (no IPv4-mapped tail handling beyond the dotted quad). */
export function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) >= 0) {
    const v4 = ipv4ToInt(text.slice(lastColon + 1));
    tail = [(v4 >>> 16) & 0xffff, v4 & 0xffff];
    text = text.slice(0, lastColon + 1) + '0';
  }
  const halves = text.split('::');
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const head = parse(halves[0]!);
  let groups: number[];
  if (halves.length === 2) {
    const rest = parse(halves[1]!);
    if (tail.length > 0) rest.pop();
    const fill = 8 - head.length - rest.length - tail.length;
    groups = [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...rest, ...tail];
  } else {
    if (tail.length > 0) head.pop();
    groups = [...head, ...tail];
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g & 0xffff);
  return v;
}

interface V4Range {
  start: number;
  end: number;
}
interface V6Range {
  start: bigint;
  end: bigint;
}

function v4Cidr(base: string, bits: number): V4Range {
  const size = 2 ** (32 - bits);
  const start = Math.floor(ipv4ToInt(base) / size) * size;
  return { start, end: start + size - 1 };
}

function v6Cidr(base: string, bits: number): V6Range {
  const hostBits = BigInt(128 - bits);
  const start = (ipv6ToBigInt(base) >> hostBits) << hostBits;
  return { start, end: start + (1n << hostBits) - 1n };
}

const V4_SCOPES: [V4Range, IpScope][] = [
  [v4Cidr('127.0.0.0', 8), 'loopback'],
  [v4Cidr('10.0.0.0', 8), 'private'],
  [v4Cidr('172.16.0.0', 12), 'private'],
  [v4Cidr('192.168.0.0', 16), 'private'],
  [v4Cidr('100.64.0.0', 10), 'private'], // carrier-grade NAT (RFC 6598)
  [v4Cidr('0.0.0.0', 8), 'reserved'],
  [v4Cidr('169.254.0.0', 16), 'reserved'], // link-local
  [v4Cidr('192.0.0.0', 24), 'reserved'],
  [v4Cidr('192.0.2.0', 24), 'reserved'], // documentation (RFC 5737)
  [v4Cidr('198.18.0.0', 15), 'reserved'], // benchmarking
  [v4Cidr('198.51.100.0', 24), 'reserved'],
  [v4Cidr('203.0.113.0', 24), 'reserved'],
  [v4Cidr('224.0.0.0', 4), 'reserved'], // multicast
  [v4Cidr('240.0.0.0', 4), 'reserved'], // future use + broadcast
];

const V6_SCOPES: [V6Range, IpScope][] = [
  [v6Cidr('::1', 128), 'loopback'],
  [v6Cidr('::', 128), 'reserved'],
  [v6Cidr('fc00::', 7), 'private'], // unique local
  [v6Cidr('fe80::', 10), 'reserved'], // link-local
  [v6Cidr('2001:db8::', 32), 'reserved'], // documentation
  [v6Cidr('ff00::', 8), 'reserved'], // multicast
  [v6Cidr('64:ff9b:1::', 48), 'reserved'],
  [v6Cidr('100::', 64), 'reserved'], // discard-only
];

/** Scope of a canonical address (canonicalIp output). */
export function ipScope(ip: string): IpScope {
  if (ip.includes(':')) {
    const v = ipv6ToBigInt(ip);
    for (const [r, scope] of V6_SCOPES) if (v >= r.start && v <= r.end) return scope;
    return 'public';
  }
  const v = ipv4ToInt(ip);
  for (const [r, scope] of V4_SCOPES) if (v >= r.start && v <= r.end) return scope;
  return 'public';
}

export class CidrError extends Error {
  override name = 'CidrError';
}

/** A set of CIDR ranges (IPv4 and IPv6), each with an optional label, matched by address. */
export class CidrList {
  private readonly v4: (V4Range & { label: string })[] = [];
  private readonly v6: (V6Range & { label: string })[] = [];

  /**
   * `entries`: `CIDR` or `CIDR label` (a bare address is a /32 or /128). Lines starting with '#'
   * and blank ones are skipped. Throws CidrError naming the bad entry.
   */
  constructor(entries: readonly string[], defaultLabel = '') {
    for (const raw of entries) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const [cidr, ...rest] = line.split(/\s+/);
      const label = rest.join(' ') || defaultLabel;
      const [addr, bitsText] = cidr!.split('/');
      const ip = canonicalIp(addr);
      if (ip === null) throw new CidrError(`not an IP address or CIDR: ${JSON.stringify(cidr)}`);
      const v6 = ip.includes(':');
      const max = v6 ? 128 : 32;
      const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
      if (!(bits >= 0 && bits <= max)) throw new CidrError(`bad prefix length in ${JSON.stringify(cidr)}`);
      if (v6) this.v6.push({ ...v6Cidr(ip, bits), label });
      else this.v4.push({ ...v4Cidr(ip, bits), label });
    }
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  /** Label of the first range holding `ip` (canonical form), '' for an unlabelled hit, undefined if none. */
  match(ip: string): string | undefined {
    if (ip.includes(':')) {
      if (this.v6.length === 0) return undefined;
      const v = ipv6ToBigInt(ip);
      for (const r of this.v6) if (v >= r.start && v <= r.end) return r.label;
      return undefined;
    }
    if (this.v4.length === 0) return undefined;
    const v = ipv4ToInt(ip);
    for (const r of this.v4) if (v >= r.start && v <= r.end) return r.label;
    return undefined;
  }
}
