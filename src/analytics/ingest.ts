// The analytics ingest: a pure synchronous function of (connection, batch of stored events), run
// inside the events writer's transaction (today on the main thread, later in the writer worker).
// Everything it needs is built from serialisable settings, so a worker can build its own.
import { readFileSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { aggregateBatch, type AggregateContext } from './aggregate.js';
import { GeoEnricher, type GeoOptions } from './geo.js';
import { CidrList } from './ip.js';
import type { StoredEvent } from './record.js';
import { SqliteAttackStore } from './sqlite-store.js';
import type { AttackStore } from './store.js';

export interface AnalyticsSettings {
  /** Sources never counted as attacks (the events are still stored): CIDRs or addresses. */
  ignoreCidrs?: readonly string[];
  /** Known scanner ranges, `CIDR [label]` per entry. */
  scannerCidrs?: readonly string[];
  /** File with one `CIDR [label]` a line ('#' comments), read once at start, added to scannerCidrs. */
  scannerCidrsFile?: string;
  /** Enrichment settings; false = no enrichment at all (country 'unknown', no ASN). */
  geo?: GeoOptions | false;
  /** Failed logins that make an address a `bruteforce` attacker. */
  bruteforceMinFailures?: number;
}

export type AttackIngest = (sqlite: Database.Database, batch: readonly StoredEvent[]) => void;

/** Reads the operator's scanner list file: one `CIDR [label]` a line. */
export function readCidrFile(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n');
}

/** Builds the parts of ingest that are costly to make once (geo databases, CIDR lists). */
export function createAggregateContext(settings: AnalyticsSettings = {}): AggregateContext {
  const scanners = [...(settings.scannerCidrs ?? []), ...(settings.scannerCidrsFile ? readCidrFile(settings.scannerCidrsFile) : [])];
  return {
    geo: settings.geo === false ? null : new GeoEnricher(settings.geo ?? {}),
    ignore: new CidrList(settings.ignoreCidrs ?? []),
    scanners: new CidrList(scanners),
  };
}

/**
 * The ingest function for the events writer. Runs its writes in a nested transaction (a
 * savepoint), so a failure here rolls back the analytics of the batch only: the caller catches and
 * logs it, and the events themselves still commit.
 */
export function createAttackIngest(settings: AnalyticsSettings = {}, ctx = createAggregateContext(settings)): AttackIngest {
  const stores = new WeakMap<Database.Database, { store: AttackStore; apply: (batch: readonly StoredEvent[]) => void }>();
  return (sqlite, batch) => {
    if (batch.length === 0) return;
    let entry = stores.get(sqlite);
    if (entry === undefined) {
      const store = new SqliteAttackStore(sqlite, { bruteforceMinFailures: settings.bruteforceMinFailures });
      entry = { store, apply: sqlite.transaction((b: readonly StoredEvent[]) => store.write(aggregateBatch(b, ctx))) };
      stores.set(sqlite, entry);
    }
    entry.apply(batch);
  };
}
