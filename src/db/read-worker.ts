// Entry point of one read worker process of the ReadPool (see read-pool.ts): a read-only SQLite
// connection and the query modules it was started with. Queries are synchronous and run one at a
// time; a query past its time limit gets this whole process killed by the pool (better-sqlite3 cannot
// interrupt a statement), so nothing here needs to be interruptible.
import Database from 'better-sqlite3';
import type { QueryModule, ReadWorkerData, ReadWorkerReply, ReadWorkerRequest } from './read-pool.js';

const data = JSON.parse(process.argv[2] ?? '{}') as ReadWorkerData;

function send(m: ReadWorkerReply | { ready: boolean; error?: { name: string; message: string } }): void {
  process.send!(m);
}

async function main(): Promise<void> {
  const db = new Database(data.dbPath, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const handlers = new Map<string, Record<string, (args: unknown) => unknown>>();
  for (const [name, { url, options }] of Object.entries(data.modules)) {
    const mod = (await import(url)) as QueryModule;
    if (typeof mod.createQueries !== 'function') throw new Error(`query module ${name} (${url}) exports no createQueries(db)`);
    handlers.set(name, mod.createQueries(db, options));
  }
  process.on('message', (req: ReadWorkerRequest) => {
    let reply: ReadWorkerReply;
    try {
      const fn = handlers.get(req.module)?.[req.query];
      if (fn === undefined) throw new Error(`unknown query ${req.module}.${req.query}`);
      reply = { id: req.id, ok: true, result: fn(req.args) };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      reply = { id: req.id, ok: false, error: { name: e.name, message: e.message } };
    }
    send(reply);
  });
  // The pool going away (its process exited) ends this one too.
  process.on('disconnect', () => process.exit(0));
  send({ ready: true });
}

main().catch((err: unknown) => {
  const e = err instanceof Error ? err : new Error(String(err));
  send({ ready: false, error: { name: e.name, message: e.message } });
});
