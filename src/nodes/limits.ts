// Small helpers the per-peer limits share: which peers count as "one address", and how a
// peer-supplied string is cut to a storage cap.
import net from 'node:net';

/**
 * The key per-address limits count on. IPv4: the address itself. IPv6: its /64 prefix, since
 * anyone holding one IPv6 address usually holds the whole /64 and could otherwise step around
 * every per-address cap by changing the interface identifier.
 */
export function addressKey(address: string): string {
  if (!net.isIPv6(address)) return address;
  const zone = address.indexOf('%');
  const bare = zone >= 0 ? address.slice(0, zone) : address;
  const [head, tail = ''] = bare.split('::') as [string, string?];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = bare.includes('::') && tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4 style) only matters beyond the first 64 bits.
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = bare.includes('::') ? [...headGroups, ...Array(Math.max(missing, 0)).fill('0'), ...tailGroups] : headGroups;
  return `${groups
    .slice(0, 4)
    .map((g) => (g === '' ? '0' : g.toLowerCase().replace(/^0+(?=.)/, '')))
    .join(':')}::/64`;
}

export const TRUNCATION_MARKER = '…[truncated]';

/**
 * `text` cut to at most `maxBytes` UTF-8 bytes (never inside a character), with a marker that
 * says so and how long it was. Returns the text itself when it fits.
 */
export function truncateUtf8(text: string, maxBytes: number): { text: string; truncated: boolean } {
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) return { text, truncated: false };
  const marker = `${TRUNCATION_MARKER} (${bytes} bytes)`;
  const buf = Buffer.from(text);
  let end = Math.max(0, maxBytes - Buffer.byteLength(marker));
  // Back up to the start of a character: continuation bytes are 10xxxxxx.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return { text: buf.toString('utf8', 0, end) + marker, truncated: true };
}

/** `defaults` overridden by the options that are set (an explicit undefined keeps the default). */
export function withDefaults<T extends object>(defaults: T, opts: Partial<T>): T {
  const out = { ...defaults };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
