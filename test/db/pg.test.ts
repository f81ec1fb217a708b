// The PostgreSQL foundation against a real server: migrations give the same tables and columns as
// SQLite, events is partitioned by day, partitions are created ahead and dropped by retention,
// concurrent starts migrate once, and the test helper's databases are really dropped.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAY_MS, dayOf, EventPartitions, openDatabase, openPgDatabase, partitionDay, partitionName, type PgDatabaseHandle } from '../../src/db/index.js';
import { createTestPgDatabase, dropStaleTestDatabases, pgDatabaseExists, pgSkipReason, type TestPgDatabase } from '../helpers/pg.js';
import { tempDir } from '../helpers/tmp.js';

describe('partition names', () => {
  it('are events_pYYYYMMDD of the UTC day, and only well-formed ones are read back', () => {
    const day = dayOf(Date.UTC(2026, 11, 1, 23, 59, 59, 999));
    assert.equal(partitionName(day), 'events_p20261201');
    assert.equal(partitionDay('events_p20261201'), day);
    assert.equal(partitionName(day + 31), 'events_p20270101');
    for (const other of ['events_p20261301', 'events_p20260230', 'events_p2026120', 'events', 'events_default', 'x_p20261201']) assert.equal(partitionDay(other), undefined, other);
  });
});

const skip = await pgSkipReason();

describe('PostgreSQL database', { skip }, () => {
  let testDb: TestPgDatabase;
  let handle: PgDatabaseHandle;
  before(async () => {
    testDb = await createTestPgDatabase();
    handle = await openPgDatabase(testDb.url);
  });
  after(async () => {
    await handle?.close();
    await testDb?.drop();
  });

  it('has every table and column of the SQLite schema, with the same names', async () => {
    const dir = tempDir();
    const sqlite = openDatabase(join(dir.path, 'a.sqlite'));
    try {
      const tables = sqlite.sqlite.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE '\\_\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
      // The events side index tables exist on SQLite only: PostgreSQL keeps the (node_name, id) and
      // (event_type, id) indexes they replace there (src/events/side-index.ts says why).
      const sqliteOnly = new Set(['events_by_node', 'events_by_type', 'events_side_state']);
      const expected = new Map<string, string[]>(tables.filter((t) => !sqliteOnly.has(t.name)).map((t) => [t.name, (sqlite.sqlite.prepare(`SELECT name FROM pragma_table_info('${t.name}')`).all() as { name: string }[]).map((c) => c.name).sort()]));
      const { rows } = await handle.pool.query<{ table_name: string; column_name: string }>(
        `SELECT c.table_name, c.column_name FROM information_schema.columns c
           JOIN pg_class k ON k.relname = c.table_name AND k.relnamespace = 'public'::regnamespace
         WHERE c.table_schema = 'public' AND NOT k.relispartition`,
      );
      const actual = new Map<string, string[]>();
      // Batch notes exist on PostgreSQL only (src/events/pg-batch-notes.ts).
      const postgresOnly = new Set(['event_outbox', 'analytics_backlog']);
      for (const r of rows) if (!postgresOnly.has(r.table_name)) actual.set(r.table_name, [...(actual.get(r.table_name) ?? []), r.column_name]);
      for (const cols of actual.values()) cols.sort();
      assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
      for (const [table, cols] of expected) assert.deepEqual(actual.get(table), cols, table);
      // The same secondary and unique indexes, by name (primary keys are named differently by the
      // two dialects), but for those the SQLite side tables replace.
      const pgOnlyIndexes = new Set(['events_node_id_idx', 'events_type_id_idx']);
      const sqliteIndexes = (sqlite.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'").all() as { name: string }[]).map((r) => r.name).sort();
      const pgIndexes = (
        await handle.pool.query<{ name: string }>(
          `SELECT i.relname AS name FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
           WHERE t.relnamespace = 'public'::regnamespace AND NOT t.relispartition AND NOT x.indisprimary`,
        )
      ).rows.map((r) => r.name).filter((n) => !pgOnlyIndexes.has(n)).sort();
      assert.deepEqual(pgIndexes, sqliteIndexes);
    } finally {
      sqlite.close();
      dir.cleanup();
    }
  });

  it('events is partitioned by range of received_at; bigint columns read as numbers', async () => {
    const { rows } = await handle.pool.query<{ def: string }>("SELECT pg_get_partkeydef('events'::regclass) AS def");
    assert.equal(rows[0]!.def, 'RANGE (received_at)');
    const parts = new EventPartitions(handle.pool);
    await parts.ensureAhead(Date.UTC(2026, 0, 10, 12));
    const res = await handle.pool.query<{ id: number; received_at: number }>(
      "INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES ('n', 'p', 't', 'e', 1, '{}', $1) RETURNING id, received_at",
      [Date.UTC(2026, 0, 10, 12)],
    );
    assert.equal(typeof res.rows[0]!.id, 'number');
    assert.equal(res.rows[0]!.received_at, Date.UTC(2026, 0, 10, 12));
    await handle.pool.query('DELETE FROM events');
  });

  it('partitions: today and the days ahead are created once; a day without one refuses rows; retention drops whole old days', async () => {
    const now = Date.UTC(2026, 2, 15, 8, 30);
    const parts = new EventPartitions(handle.pool, { aheadDays: 2 });
    assert.deepEqual(await parts.ensureAhead(now), ['events_p20260315', 'events_p20260316', 'events_p20260317']);
    assert.deepEqual(await parts.ensureAhead(now), [], 'nothing twice');
    // Another instance (a second manager on the same database) sees them and creates nothing.
    assert.deepEqual(await new EventPartitions(handle.pool, { aheadDays: 2 }).ensureAhead(now), []);
    const insert = (receivedAt: number) =>
      handle.pool.query("INSERT INTO events (node_name, pot_id, pot_type, event_type, timestamp, data, received_at) VALUES ('n', 'p', 't', 'e', 1, '{}', $1)", [receivedAt]);
    await insert(now);
    await insert(now + DAY_MS);
    await insert(Date.UTC(2026, 2, 17, 23, 59, 59, 999));
    await assert.rejects(insert(Date.UTC(2026, 2, 18)), /no partition of relation "events" found/);
    const { rows } = await handle.pool.query<{ part: string; n: number }>("SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM events WHERE received_at >= $1 GROUP BY 1 ORDER BY 1", [Date.UTC(2026, 2, 15)]);
    assert.deepEqual(rows, [
      { part: 'events_p20260315', n: 1 },
      { part: 'events_p20260316', n: 1 },
      { part: 'events_p20260317', n: 1 },
    ]);
    // Cutoff inside the 16th: the 15th (wholly before it) goes, the 16th (holding it) stays.
    const dropped = await parts.dropBefore(Date.UTC(2026, 2, 16, 1));
    assert.ok(dropped.includes('events_p20260315'));
    assert.ok(!dropped.includes('events_p20260316'));
    const left = (await parts.list()).map((p) => p.name);
    assert.ok(!left.includes('events_p20260315'));
    assert.ok(left.includes('events_p20260316') && left.includes('events_p20260317'));
    assert.equal((await handle.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE received_at >= $1', [Date.UTC(2026, 2, 15)])).rows[0]!.n, 2);
    // maintain(): ahead of a later "now", and retention by age in days.
    const later = Date.UTC(2026, 2, 20, 0, 1);
    const m = await parts.maintain(2, later);
    assert.deepEqual(m.created, ['events_p20260320', 'events_p20260321', 'events_p20260322']);
    assert.ok(m.dropped.includes('events_p20260316') && m.dropped.includes('events_p20260317'));
    assert.deepEqual((await parts.list()).map((p) => p.name), ['events_p20260320', 'events_p20260321', 'events_p20260322']);
  });

  it('concurrent starts on one database migrate it once; close is idempotent', async () => {
    const fresh = await createTestPgDatabase();
    try {
      const handles = await Promise.all([openPgDatabase(fresh.url), openPgDatabase(fresh.url), openPgDatabase(fresh.url)]);
      const { rows } = await handles[0]!.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
      const journal = JSON.parse(readFileSync(new URL('../../drizzle/pg/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] };
      assert.ok(journal.entries.length >= 2);
      assert.equal(rows[0]!.n, journal.entries.length, 'every migration of the journal, each applied once');
      for (const h of handles) {
        await h.close();
        await h.close();
      }
    } finally {
      await fresh.drop();
    }
    assert.equal(await pgDatabaseExists(fresh.name), false, 'the helper dropped it');
  });

  it('an unreachable server rejects the open, naming the cause', async () => {
    await assert.rejects(openPgDatabase('postgres://postgres@127.0.0.1:1/none', { max: 1 }), /ECONNREFUSED/);
  });

  it('the test helper drops a database its process left at exit, and those of killed processes at the next run', async () => {
    const helper = fileURLToPath(new URL('../helpers/pg.ts', import.meta.url));
    // A child that creates a database, prints its name, then exits (or waits to be killed).
    const child = (thenExit: boolean) => {
      const script = `const { createTestPgDatabase } = await import(${JSON.stringify(helper)});
        const d = await createTestPgDatabase();
        process.stdout.write(d.name + '\\n');
        ${thenExit ? 'process.exit(0);' : 'setInterval(() => {}, 1000);'}`;
      return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    };
    const nameFrom = async (c: ReturnType<typeof child>) => {
      let out = '';
      for await (const chunk of c.stdout!) {
        out += chunk;
        if (out.includes('\n')) break;
      }
      return out.trim();
    };
    const exiting = child(true);
    const exitName = await nameFrom(exiting);
    if (exiting.exitCode === null) await once(exiting, 'exit');
    assert.match(exitName, /^apiary_test_\d+_[0-9a-f]+$/);
    assert.equal(await pgDatabaseExists(exitName), false, 'dropped by the exit hook');

    const killed = child(false);
    const killedName = await nameFrom(killed);
    killed.kill('SIGKILL');
    await once(killed, 'exit');
    assert.equal(await pgDatabaseExists(killedName), true, 'a SIGKILL leaves it');
    await dropStaleTestDatabases();
    assert.equal(await pgDatabaseExists(killedName), false, 'the next run drops it');
  });
});
