// Public surface of attack analytics: the normalised attack record, offline enrichment, the ingest
// run in the events writer's transaction (SQLite) or after each committed batch (PostgreSQL), the
// stores (rollups, attackers, sessions) on SQLite and PostgreSQL, retention, intel feeds and the
// /api/v1 routes.
import { moduleBeside } from '../db/index.js';

export { normaliseEvent, MAX_FIELD_LENGTH } from './record.js';
export { sharedNormaliser } from './shared-normaliser.js';
export type { AttackRecord, StoredEvent } from './record.js';
export { GeoEnricher, geoSources } from './geo.js';
export type { GeoInfo, GeoOptions, GeoSources } from './geo.js';
export { canonicalIp, ipScope, CidrList, CidrError } from './ip.js';
export type { IpScope } from './ip.js';
export { BufferedAttackIngest, createAttackIngest, createAggregateContext, readCidrFile } from './ingest.js';
export { aggregateBatch } from './aggregate.js';
export type { BatchAggregate } from './aggregate.js';
export type { AnalyticsSettings, AttackIngest } from './ingest.js';
export { SqliteAttackStore, SqliteAttackWriteStore } from './sqlite-store.js';
export { ANALYTICS_BACKLOG, BatchClaimLost, PgAttackStore } from './pg-store.js';
export type { PgAttackStoreOptions } from './pg-store.js';
export { PgAnalyticsIngest } from './pg-ingest.js';
export type { AnalyticsBacklog, BacklogSweepOptions, PgAnalyticsIngestOptions } from './pg-ingest.js';
export { AnalyticsQueryError, MAX_TIMELINE_BUCKETS } from './query-results.js';
export { DIMENSIONS, TAGS, DEFAULT_BRUTEFORCE_MIN_FAILURES } from './dimensions.js';
export type { Dimension, Tag } from './dimensions.js';
export type * from './store.js';
export { analyticsRoutes } from './routes.js';
export { ANALYTICS_QUERY_MODULE, analyticsQueryModules, directAttackReader, pooledAttackReader } from './reader.js';
export type { AttackReader } from './reader.js';

/** The events writer's batch hook module of this domain (pass it, with AnalyticsSettings, to the event store). */
export const analyticsWriterHook = (): URL => moduleBeside(import.meta.url, 'writer-hook');
export type { AnalyticsRoutesOptions } from './routes.js';
export { buildStixBundle, uuidv5 } from './stix.js';
export { intelIpJson, intelIpCsv, intelIpTxt } from './feeds.js';
export { AnalyticsRetention } from './retention.js';
export type { AnalyticsRetentionOptions } from './retention.js';
