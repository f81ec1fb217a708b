// Shared setup for the events tests: a real SQLite file in a temp dir and a silent logger.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import { openDatabase, ReadPool, type DatabaseHandle } from '../../src/db/index.js';
import { eventQueryModules, SqliteEventStore, type SqliteEventStoreOptions } from '../../src/events/index.js';
import { tempDir } from '../helpers/tmp.js';
import type { AttackEvent } from '../../src/events/index.js';

export function silentLogger(): FastifyBaseLogger {
  return pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
}

export interface TestDb {
  handle: DatabaseHandle;
  path: string;
  reopen(): DatabaseHandle;
  cleanup(): void;
}

export function testDb(): TestDb {
  const dir = tempDir('apiary-events-');
  const path = `${dir.path}/core.db`;
  const opened: DatabaseHandle[] = [];
  const open = () => {
    const h = openDatabase(path);
    opened.push(h);
    return h;
  };
  return {
    handle: open(),
    path,
    reopen: open,
    cleanup() {
      for (const h of opened) h.close();
      dir.cleanup();
    },
  };
}

export function newRegistry(): Registry {
  return new Registry();
}

export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  let total = 0;
  for (const v of values) {
    const l = v.labels as Record<string, string | number>;
    if (Object.entries(labels).every(([k, want]) => String(l[k]) === want)) total += v.value;
  }
  return total;
}

export function potEvent(
  nodeName: string,
  fields: { pot_id?: string; pot_type?: string; event_type?: string; timestamp?: string; data?: Record<string, unknown> } = {},
  receivedAt = Date.now(),
): AttackEvent {
  return {
    nodeName,
    receivedAt,
    message: {
      type: 'PotEvent',
      node_id: '1',
      pot_id: fields.pot_id ?? 'pot-01',
      pot_type: fields.pot_type ?? 'cowrie',
      event_type: fields.event_type ?? 'cowrie.login.failed',
      timestamp: fields.timestamp ?? new Date(receivedAt).toISOString(),
      data: fields.data ?? {},
    },
  };
}

export function statusEvent(nodeName: string, message: string | undefined, potType = '', potId = 'pot-01', receivedAt = Date.now()): AttackEvent {
  return {
    nodeName,
    receivedAt,
    message: {
      type: 'PotStatusUpdate',
      node_id: '1',
      pot_id: potId,
      pot_type: potType,
      status: '',
      ...(message !== undefined ? { message } : {}),
    },
  };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A received hpfeeds message (payload copied out of the read buffer). */
export interface HpMessage {
  ident: string;
  channel: string;
  payload: string;
}

/** Collects messages of an hpfeeds client and lets a test wait for a count on a channel. */
export class Inbox {
  readonly messages: HpMessage[] = [];
  constructor(client: { on(ev: 'message', fn: (ident: string, channel: string, payload: Buffer) => void): unknown }) {
    client.on('message', (ident, channel, payload) => {
      this.messages.push({ ident, channel, payload: payload.toString('utf8') });
    });
  }
  on(channel: string): HpMessage[] {
    return this.messages.filter((m) => m.channel === channel);
  }
  async waitFor(channel: string, count: number, timeoutMs = 10_000): Promise<HpMessage[]> {
    await waitFor(() => this.on(channel).length >= count, timeoutMs, `${count} messages on ${channel} (have ${this.on(channel).length})`);
    return this.on(channel);
  }
}

/** A SqliteEventStore on a test database with a one-worker read pool; close() closes both. */
export function openTestStore(db: TestDb, opts: Omit<SqliteEventStoreOptions, 'dbPath' | 'readPool'> = {}): { store: SqliteEventStore; readPool: ReadPool; close(): Promise<void> } {
  const readPool = new ReadPool({ dbPath: db.path, modules: eventQueryModules(), size: 1 });
  const store = new SqliteEventStore({ dbPath: db.path, readPool, ...opts });
  return {
    store,
    readPool,
    close: async () => {
      await store.close();
      await readPool.close();
    },
  };
}
