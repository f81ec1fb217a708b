import { Counter, Gauge, type Registry } from 'prom-client';
import type { WalCheckpointer } from './wal-checkpointer.js';

/** The WAL checkpointer's totals as metrics, read at scrape time. */
export function registerWalMetrics(registry: Registry, checkpointer: WalCheckpointer): void {
  const t = checkpointer.totals;
  registry.registerMetric(
    totalCounter(
      'apiary_sqlite_wal_checkpointed_pages_total',
      'Pages the WAL checkpointer thread copied from the SQLite WAL back into the database file.',
      () => t.frames,
    ),
  );
  registry.registerMetric(
    totalCounter(
      'apiary_sqlite_wal_restart_busy_total',
      'Checkpoint runs that could not restart the WAL (the writer was in a transaction or a reader still used the WAL); the next run tries again.',
      () => t.busyRuns,
    ),
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

/** A counter that follows a running total kept elsewhere (it only ever grows). */
function totalCounter(name: string, help: string, total: () => number): Counter {
  let counted = 0;
  return new Counter({
    name,
    help,
    registers: [],
    collect() {
      const now = total();
      this.inc(now - counted);
      counted = now;
    },
  });
}
