// STIX 2.1 bundle of the fleet's observations: one identity (the fleet), and per indicator value
// (attacker address, download URL, file hash) a cyber-observable, an indicator with a STIX pattern,
// an observed-data with the count and first/last observation, and a sighting tying them together.
// Ids are UUIDv5: SCOs per the spec's deterministic-id rule, SDOs from the value in Apiary's own
// namespace, so a re-fetched bundle updates (new `modified`) instead of duplicating objects.
import { createHash } from 'node:crypto';
import type { IndicatorRow, IntelIpRow } from './store.js';

/** Namespace of STIX 2.1 cyber-observable ids (STIX 2.1 section 2.9). */
const SCO_NAMESPACE = '00abedb4-aa42-466c-9c01-fed23315a9b7';
/** Apiary's namespace for its SDO ids (a fixed random UUID). */
const APIARY_NAMESPACE = '6b1f3c1e-7a0b-4f55-9d8e-3c2a1f0e4b7d';

export function uuidv5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** A STIX pattern string literal: backslash and quote escaped. */
export function stixString(value: string): string {
  return "'" + value.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}

const iso = (ms: number) => new Date(ms).toISOString();
const clampCount = (n: number) => Math.max(1, Math.min(999_999_999, Math.floor(n)));

export interface StixInput {
  /** Name of the identity that produced the observations. */
  identityName: string;
  now: number;
  ips: IntelIpRow[];
  urls: IndicatorRow[];
  hashes: IndicatorRow[];
}

type StixObject = Record<string, unknown> & { type: string; id: string };

function hashKey(h: string): 'SHA-256' | 'MD5' | 'SHA-1' | null {
  if (/^[0-9a-f]{64}$/.test(h)) return 'SHA-256';
  if (/^[0-9a-f]{32}$/.test(h)) return 'MD5';
  if (/^[0-9a-f]{40}$/.test(h)) return 'SHA-1';
  return null;
}

export function buildStixBundle(input: StixInput): { type: 'bundle'; id: string; objects: StixObject[] } {
  const now = iso(input.now);
  const identityId = `identity--${uuidv5(APIARY_NAMESPACE, 'identity:' + input.identityName)}`;
  const objects: StixObject[] = [
    {
      type: 'identity',
      spec_version: '2.1',
      id: identityId,
      created: iso(0),
      modified: iso(0),
      name: input.identityName,
      identity_class: 'system',
      description: 'Apiary honeypot fleet core',
    },
  ];
  const add = (
    label: string,
    sco: StixObject,
    pattern: string,
    seen: { count: number; first_seen: number; last_seen: number },
    indicatorTypes: string[],
    extra: Record<string, unknown> = {},
  ) => {
    const first = iso(seen.first_seen);
    const last = iso(Math.max(seen.first_seen, seen.last_seen));
    const key = sco.id;
    const common = { spec_version: '2.1', created: first, modified: now, created_by_ref: identityId };
    const indicatorId = `indicator--${uuidv5(APIARY_NAMESPACE, 'indicator:' + key)}`;
    const observedId = `observed-data--${uuidv5(APIARY_NAMESPACE, 'observed-data:' + key)}`;
    objects.push(
      sco,
      {
        type: 'indicator',
        id: indicatorId,
        ...common,
        name: label,
        indicator_types: indicatorTypes,
        pattern,
        pattern_type: 'stix',
        pattern_version: '2.1',
        valid_from: first,
        ...extra,
      },
      {
        type: 'observed-data',
        id: observedId,
        ...common,
        first_observed: first,
        last_observed: last,
        number_observed: clampCount(seen.count),
        object_refs: [sco.id],
      },
      {
        type: 'sighting',
        id: `sighting--${uuidv5(APIARY_NAMESPACE, 'sighting:' + key)}`,
        ...common,
        sighting_of_ref: indicatorId,
        observed_data_refs: [observedId],
        where_sighted_refs: [identityId],
        count: clampCount(seen.count),
        first_seen: first,
        last_seen: last,
      },
    );
  };
  for (const ip of input.ips) {
    const type = ip.ip.includes(':') ? 'ipv6-addr' : 'ipv4-addr';
    const sco = { type, spec_version: '2.1', id: `${type}--${uuidv5(SCO_NAMESPACE, JSON.stringify({ value: ip.ip }))}`, value: ip.ip };
    const labels = ip.tags.length > 0 ? { labels: ip.tags } : {};
    add(`Honeypot attacker ${ip.ip}`, sco, `[${type}:value = ${stixString(ip.ip)}]`,
      { count: ip.events, first_seen: ip.first_seen, last_seen: ip.last_seen }, ['malicious-activity'], labels);
  }
  for (const u of input.urls) {
    const sco = { type: 'url', spec_version: '2.1', id: `url--${uuidv5(SCO_NAMESPACE, JSON.stringify({ value: u.value }))}`, value: u.value };
    add(`URL downloaded by honeypot attackers`, sco, `[url:value = ${stixString(u.value)}]`, u, ['malicious-activity']);
  }
  for (const h of input.hashes) {
    const algo = hashKey(h.value);
    if (algo === null) continue;
    const hashes = { [algo]: h.value };
    const sco = { type: 'file', spec_version: '2.1', id: `file--${uuidv5(SCO_NAMESPACE, JSON.stringify({ hashes }))}`, hashes };
    add(`File dropped on honeypots`, sco, `[file:hashes.${stixString(algo)} = ${stixString(h.value)}]`, h, ['malicious-activity']);
  }
  return { type: 'bundle', id: `bundle--${uuidv5(APIARY_NAMESPACE, 'bundle:' + now + ':' + objects.length)}`, objects };
}
