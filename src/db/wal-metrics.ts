import { Counter, Gauge, type Registry } from 'prom-client';
import type { WalCheckpointer } from './wal-checkpointer.js';

/** The WAL checkpointer's totals as metrics, read at scrape time. */
export function registerWalMetrics(registry: Registry, checkpointer: WalCheckpointer): void {
  const t = checkpointer.totals;
  let frames = 0;
  let busy = 0;
  registry.registerMetric(
    new Counter({
      name: 'apiary_sqlite_wal_checkpointed_pages_total',
      help: 'Pages the WAL checkpointer thread copied from the SQLite WAL back into the database file.',
      registers: [],
      collect() {
        this.inc(t.frames - frames);
        frames = t.frames;
      },
    }),
  );
  registry.registerMetric(
    new Counter({
      name: 'apiary_sqlite_wal_restart_busy_total',
      help: 'Checkpoint runs that could not restart the WAL (the writer was in a transaction or a reader still used the WAL); the next run tries again.',
      registers: [],
      collect() {
        this.inc(t.busyRuns - busy);
        busy = t.busyRuns;
      },
    }),
  );
  registry.registerMetric(
    new Gauge({
      name: 'apiary_sqlite_wal_pages',
      help: 'Pages in the SQLite WAL after the last checkpoint (0 once the writer restarted it from the beginning).',
      registers: [],
      collect() {
        this.set(t.walFrames);
      },
    }),
  );
}
