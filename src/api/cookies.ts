// The few cookie and origin rules the console session needs (RFC 6265 cookies, RFC 6454 origins),
// small enough not to warrant a dependency.
import { timingSafeEqual } from 'node:crypto';

/** The value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    return value || undefined;
  }
  return undefined;
}

export interface CookieAttributes {
  /** Seconds; 0 deletes the cookie. */
  maxAgeSeconds: number;
  secure: boolean;
}

/** A Set-Cookie value for a session cookie: httpOnly, SameSite=Strict, Path=/, Secure over TLS. */
export function sessionCookie(name: string, value: string, attrs: CookieAttributes): string {
  return [`${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${Math.max(0, Math.floor(attrs.maxAgeSeconds))}`, ...(attrs.secure ? ['Secure'] : [])].join('; ');
}

/**
 * Whether an Origin header names the host the request was sent to (scheme aside: TLS may end at a
 * proxy). A missing or opaque ("null") origin is not the same origin.
 */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || !host) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const defaultPort = url.protocol === 'https:' ? ':443' : ':80';
  const normalisedHost = host.toLowerCase().endsWith(defaultPort) ? host.toLowerCase().slice(0, -defaultPort.length) : host.toLowerCase();
  return url.host.toLowerCase() === normalisedHost;
}

/** Constant-time comparison of two secrets of any length. */
export function secretsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
