// The core's storage, chosen once: the embedded SQLite file (the default) or PostgreSQL
// (DATABASE_URL). Every domain receives its store through its own interface from here, so no
// domain and no other line of the composition asks which database it runs on. What differs in how
// the two run is kept here too: SQLite writes events in a writer thread (with the analytics ingest
// as a batch hook inside each batch's transaction) and reads in a pool of read workers; PostgreSQL
// is a server, so its stores talk to it from this event loop through one connection pool, and the
// analytics ingest is fed each committed batch.
import type { FastifyBaseLogger } from 'fastify';
import { PgTokenStore, SqliteTokenStore, type TokenStore } from '../access/index.js';
import { PgAlertStore, SqliteAlertStore, type AlertStore } from '../alerts/index.js';
import {
  analyticsQueryModules,
  analyticsWriterHook,
  ANALYTICS_BACKLOG,
  BatchClaimLost,
  PgAnalyticsIngest,
  PgAttackStore,
  pooledAttackReader,
  SqliteAttackStore,
  type AnalyticsSettings,
  type AttackReader,
  type AttackStore,
  type AttackWriteStore,
  type StoredEvent as AttackEvent,
} from '../analytics/index.js';
import { PgAuditStore, SqliteAuditStore, type AuditStore } from '../audit/index.js';
import { PgAuthkeyStore, SqliteAuthkeyStore, type AuthkeyStore } from '../authkeys/index.js';
import { PgCommandStore, SqliteCommandStore, type CommandStore } from '../commands/index.js';
import { openDatabase, openPgDatabase, ReadPool, WalCheckpointer, type DatabaseHandle, type PgDatabaseHandle } from '../db/index.js';
import { eventQueryModules, PgEventStore, SqliteEventStore, type BatchNotes, type EventStore } from '../events/index.js';
import { PgUserStore, SqliteUserStore, type UserStore } from '../users/index.js';

export interface StoreSettings {
  /** PostgreSQL URL; unset = the SQLite file. */
  databaseUrl?: string;
  /** The SQLite file. */
  dbPath: string;
  /** Read workers of the SQLite read pool, and how long a read may take. */
  queryWorkers: number;
  queryTimeoutMs: number;
  /** Attack analytics settings, or undefined when analytics are off. */
  analytics?: AnalyticsSettings;
  /** Tells the analytics watermark of this core apart from the others' (several cores on one database). */
  instanceId?: string;
}

export interface CoreStores {
  readonly kind: 'sqlite' | 'postgresql';
  /** The SQLite handle (tests, the node gateway's SQLite store), or undefined on PostgreSQL. */
  readonly sqlite: DatabaseHandle | undefined;
  /** What the node gateway builds its NodeStore on. */
  readonly nodesDatabase: DatabaseHandle | PgDatabaseHandle;
  readonly tokens: TokenStore;
  readonly users: UserStore;
  readonly audit: AuditStore;
  readonly authkeys: AuthkeyStore;
  readonly commands: CommandStore;
  readonly alerts: AlertStore;
  readonly events: EventStore;
  /** Reads, ingest and retention of attack analytics; undefined when analytics are off. */
  readonly analytics:
    | {
        reader: AttackReader;
        retention: Pick<AttackStore | AttackWriteStore, 'deleteOlderThan'>;
        /** Hand each committed event batch here, whole (PostgreSQL: the ingest is fed after commit); undefined on SQLite. */
        committed: ((batch: readonly AttackEvent[]) => void) | undefined;
        /**
         * PostgreSQL: folds again, while `leading`, the batches a killed core (or this one, before a
         * restart) committed but never wrote into the rollups (src/analytics/pg-ingest.ts).
         */
        sweepBacklog?: (leading: () => boolean) => void;
      }
    | undefined;
  /**
   * Several cores: notes every committed event batch in the fan-out outbox under `origin` (this
   * core's fan-out origin), for src/cluster/outbox-relay.ts. Undefined on SQLite: a file only one
   * core can reach has nobody to hand on what its core left.
   */
  fanoutOutbox(origin: string): BatchNotes | undefined;
  /** Resolves when the database answers a trivial query, rejects otherwise (readiness). */
  ping(): Promise<void>;
  /** The SQLite WAL checkpointer (its totals become metrics), or undefined on PostgreSQL. */
  readonly walCheckpointer: WalCheckpointer | undefined;
  /** Stops the writers (after the event service flushed), then closes the connections. */
  close(): Promise<void>;
}

export async function openStores(settings: StoreSettings, log: FastifyBaseLogger): Promise<CoreStores> {
  return settings.databaseUrl === undefined ? openSqliteStores(settings, log) : openPgStores(settings.databaseUrl, settings, log);
}

function openSqliteStores(settings: StoreSettings, log: FastifyBaseLogger): CoreStores {
  const database = openDatabase(settings.dbPath, { autoCheckpoint: false });
  // The WAL is copied back by a thread of its own: no commit (events writer, this event loop) waits
  // for a checkpoint and its fsyncs.
  const checkpointer = new WalCheckpointer({
    dbPath: database.path,
    onError: (message) => log.error({ domain: 'db' }, `WAL checkpoint failed: ${message}`),
  });
  // Expensive reads run in worker processes with read-only connections, event writes in a writer
  // thread: the event loop serving nodes, hpfeeds and the API never waits on SQLite for them.
  // Other domains add their query modules here and their batch hooks to the store (see
  // src/db/read-pool.ts and src/events/store.ts).
  const analytics = settings.analytics;
  const readPool = new ReadPool({
    dbPath: database.path,
    modules: { ...eventQueryModules(), ...(analytics ? analyticsQueryModules({ bruteforceMinFailures: analytics.bruteforceMinFailures }) : {}) },
    size: settings.queryWorkers,
    timeoutMs: settings.queryTimeoutMs,
    onLog: (level, msg, detail) => log[level]({ domain: 'db', ...detail }, msg),
  });
  // Attack analytics run in the events writer's transaction (rollups, attackers, sessions), in the
  // writer thread (a batch hook), and their reads in the read pool: none of it on this event loop.
  const events = new SqliteEventStore({
    dbPath: database.path,
    readPool,
    batchHooks: analytics ? [{ url: analyticsWriterHook(), options: analytics }] : [],
    walCheckpointer: true,
  });
  return {
    kind: 'sqlite',
    sqlite: database,
    nodesDatabase: database,
    tokens: new SqliteTokenStore(database),
    users: new SqliteUserStore(database),
    audit: new SqliteAuditStore(database),
    authkeys: new SqliteAuthkeyStore(database),
    commands: new SqliteCommandStore(database),
    alerts: new SqliteAlertStore(database),
    events,
    analytics: analytics && {
      reader: pooledAttackReader(readPool),
      retention: new SqliteAttackStore(database.sqlite, { bruteforceMinFailures: analytics.bruteforceMinFailures }),
      committed: undefined,
    },
    fanoutOutbox: () => undefined,
    walCheckpointer: checkpointer,
    async ping() {
      database.sqlite.prepare('SELECT 1').get();
    },
    async close() {
      await events.close();
      await readPool.close();
      await checkpointer.close();
      database.close();
    },
  };
}

async function openPgStores(url: string, settings: StoreSettings, log: FastifyBaseLogger): Promise<CoreStores> {
  const database = await openPgDatabase(url, {
    onIdleError: (err) => log.error({ err, domain: 'db' }, 'an idle PostgreSQL connection failed; the pool replaces it'),
  });
  const analytics = settings.analytics;
  const events = new PgEventStore(database);
  let ingest: PgAnalyticsIngest | undefined;
  let attackStore: PgAttackStore | undefined;
  if (analytics) {
    // Each core folds the batches it commits and writes them under its own watermark.
    attackStore = new PgAttackStore(database, { bruteforceMinFailures: analytics.bruteforceMinFailures, watermarkName: settings.instanceId });
    ingest = new PgAnalyticsIngest(attackStore, analytics, {
      foldThread: true,
      // Every committed batch is noted until its rollups are written: none is lost to a crash.
      backlog: events.noteBatches(ANALYTICS_BACKLOG, settings.instanceId ?? 'core'),
      onError: (err) => {
        if (err instanceof BatchClaimLost) log.warn({ err: err.message, domain: 'analytics' }, 'analytics write skipped: part of it was folded by another core; the rest is folded again later');
        else log.error({ err, domain: 'analytics' }, 'analytics write to PostgreSQL failed; kept and retried at the next interval');
      },
    });
    ingest.start();
  }
  return {
    kind: 'postgresql',
    sqlite: undefined,
    nodesDatabase: database,
    tokens: new PgTokenStore(database),
    users: new PgUserStore(database),
    audit: new PgAuditStore(database),
    authkeys: new PgAuthkeyStore(database),
    commands: new PgCommandStore(database),
    alerts: new PgAlertStore(database),
    events,
    analytics: attackStore && {
      reader: attackStore,
      retention: attackStore,
      committed: (batch) => ingest!.onCommitted(batch),
      sweepBacklog: (leading) =>
        ingest!.startBacklogSweep({
          leading,
          onRecovered: (batches, events) => log.warn({ domain: 'analytics', batches, events }, 'analytics: folding again event batches committed but never written into the rollups (a core died, or restarted, before its write)'),
        }),
    },
    fanoutOutbox: (origin) => events.noteBatches('event_outbox', origin),
    walCheckpointer: undefined,
    async ping() {
      await database.pool.query('SELECT 1');
    },
    async close() {
      await events.close();
      await ingest?.close();
      await database.close();
    },
  };
}
