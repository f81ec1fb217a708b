// A minimal core in its own process for the crash test: node gateway (TCP) + event service on a
// SQLite file. Every committed batch is reported to the parent over IPC *after* its commit, so
// whatever the parent heard of was accepted.
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyBaseLogger } from 'fastify';
import { openDatabase } from '../../src/db/index.js';
import { createNodeGateway } from '../../src/nodes/index.js';
import { createEventService } from '../../src/events/index.js';

const dbPath = process.argv[2]!;
const logger = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;
const db = openDatabase(dbPath);
const registry = new Registry();
const gateway = await createNodeGateway({ db, logger, registry, enrollment: 'open' });
const events = createEventService({ db, logger, registry, batch: { maxSize: 200, maxDelayMs: 5 } });
events.attach(gateway);
events.onCommitted((batch) => {
  const hash = createHash('sha1');
  for (const e of batch) hash.update(`${e.id}|${e.node}|${e.dataJson}\n`);
  process.send!({ type: 'committed', first: batch[0]!.id, last: batch[batch.length - 1]!.id, count: batch.length, digest: hash.digest('hex') });
});
const tcp = await gateway.listenTcp({ host: '127.0.0.1', port: 0 });
process.send!({ type: 'listening', port: tcp.port });
