// The two databases a domain store can run on, for contract tests that run one suite against each
// implementation: a fresh SQLite file, and a fresh PostgreSQL database (skipped, with the reason,
// only when nothing listens on the PostgreSQL address; see ./pg.ts).
import { join } from 'node:path';
import { openDatabase, openPgDatabase, type DatabaseHandle, type PgDatabaseHandle } from '../../src/db/index.js';
import { createTestPgDatabase, pgSkipReason } from './pg.js';
import { tempDir } from './tmp.js';

export type OpenedBackend = ({ kind: 'sqlite'; database: DatabaseHandle } | { kind: 'pg'; database: PgDatabaseHandle }) & { close(): Promise<void> };

export interface Backend {
  name: string;
  /** Set when this backend cannot run here: the suite is skipped with it as the message. */
  skip?: string;
  /** A new, empty, migrated database. */
  open(): Promise<OpenedBackend>;
}

export async function databaseBackends(): Promise<Backend[]> {
  return [
    {
      name: 'SQLite',
      async open() {
        const dir = tempDir('apiary-contract-');
        const database = openDatabase(join(dir.path, 'apiary.sqlite'));
        return {
          kind: 'sqlite',
          database,
          async close() {
            database.close();
            dir.cleanup();
          },
        };
      },
    },
    {
      name: 'PostgreSQL',
      skip: await pgSkipReason(),
      async open() {
        const testDb = await createTestPgDatabase();
        let database: PgDatabaseHandle;
        try {
          database = await openPgDatabase(testDb.url, { max: 4 });
        } catch (err) {
          await testDb.drop();
          throw err;
        }
        return {
          kind: 'pg',
          database,
          async close() {
            try {
              await database.close();
            } finally {
              await testDb.drop();
            }
          },
        };
      },
    },
  ];
}
