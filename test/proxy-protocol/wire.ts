// PROXY protocol headers written the way HAProxy writes them (send-proxy / send-proxy-v2), for the
// tests. Built from the specification's layout here, not with the code under test.
import { isIP } from 'node:net';

export const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** `PROXY TCP4|TCP6 src dst sport dport\r\n` (the family follows the source address). */
export function v1(src: string, sport: number, dst: string, dport: number): Buffer {
  return Buffer.from(`PROXY ${isIP(src) === 6 ? 'TCP6' : 'TCP4'} ${src} ${dst} ${sport} ${dport}\r\n`, 'latin1');
}

/** 16 bytes of an IPv6 address (text with at most one '::'; no dotted tail). */
export function ipv6Bytes(text: string): Buffer {
  const [left, right] = text.includes('::') ? text.split('::') : [text, undefined];
  const l = left ? left.split(':') : [];
  const r = right ? right.split(':') : [];
  const groups = right === undefined ? l : [...l, ...Array(8 - l.length - r.length).fill('0'), ...r];
  return Buffer.from(groups.map((g) => g.padStart(4, '0')).join(''), 'hex');
}

function ipv4Bytes(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

export interface V2Options {
  command?: 'proxy' | 'local';
  /** Default: follows the source address; 'unspec' and 'unix' carry no IP. */
  family?: 'inet' | 'inet6' | 'unspec' | 'unix';
  /** 'stream' (default), 'dgram' or 'unspec'. */
  transport?: 'stream' | 'dgram' | 'unspec';
  src?: string;
  sport?: number;
  dst?: string;
  dport?: number;
  /** Bytes after the addresses (TLVs). */
  tlvs?: Buffer;
  /** Overrides the length field (to lie about it). */
  length?: number;
  /** Overrides the version/command byte. */
  verCmd?: number;
}

export function v2(o: V2Options = {}): Buffer {
  const command = o.command ?? 'proxy';
  const family = o.family ?? (o.src === undefined ? 'unspec' : isIP(o.src) === 6 ? 'inet6' : 'inet');
  const fam = { unspec: 0, inet: 1, inet6: 2, unix: 3 }[family];
  const transport = { unspec: 0, stream: 1, dgram: 2 }[o.transport ?? (family === 'unspec' ? 'unspec' : 'stream')];
  let addresses = Buffer.alloc(0);
  if (family === 'inet' || family === 'inet6') {
    const enc = family === 'inet' ? ipv4Bytes : ipv6Bytes;
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(o.sport ?? 0, 0);
    ports.writeUInt16BE(o.dport ?? 0, 2);
    addresses = Buffer.concat([enc(o.src!), enc(o.dst ?? (family === 'inet' ? '10.0.0.1' : '::1')), ports]);
  } else if (family === 'unix') {
    addresses = Buffer.alloc(216);
  }
  const body = Buffer.concat([addresses, o.tlvs ?? Buffer.alloc(0)]);
  const head = Buffer.alloc(4);
  head[0] = o.verCmd ?? (0x20 | (command === 'proxy' ? 1 : 0));
  head[1] = (fam << 4) | transport;
  head.writeUInt16BE(o.length ?? body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}
