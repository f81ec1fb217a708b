// HTTP outputs against a local HTTP server that checks Splunk HEC and Elasticsearch _bulk bodies
// strictly, answers per-item errors, and goes away for a while.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { normaliseEvent } from '../../src/analytics/index.js';
import { createOutputs, parseOutputs, type Outputs } from '../../src/outputs/index.js';
import { tempDir } from '../helpers/tmp.js';
import { commandEvent, seqOf, waitFor } from './helpers.js';

const logger = pino({ level: 'silent' });
const tmp = tempDir('apiary-outputs-http-');
after(() => tmp.cleanup());
const fast = { retry: { initialMs: 50, maxMs: 400 }, timeoutMs: 2000 };
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

/** An HTTP server that can be stopped and started again on the same port. */
class Receiver {
  server: Server | null = null;
  port = 0;
  problems: string[] = [];
  private sockets = new Set<Socket>();
  constructor(private readonly handler: Handler) {}
  async start(): Promise<void> {
    const s = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          this.handler(req, Buffer.concat(chunks).toString('utf8'), res);
        } catch (err) {
          this.problems.push((err as Error).message);
          res.writeHead(500).end();
        }
      });
    });
    s.on('connection', (c: Socket) => {
      this.sockets.add(c);
      c.on('close', () => this.sockets.delete(c));
    });
    s.listen(this.port, '127.0.0.1');
    await once(s, 'listening');
    this.port = (s.address() as { port: number }).port;
    this.server = s;
  }
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    for (const c of this.sockets) c.destroy();
    await new Promise((r) => s.close(r));
  }
}

function outputsWith(cfg: unknown[], dataDir: string, registry: Registry): Outputs {
  return createOutputs({ outputs: parseOutputs(JSON.stringify(cfg), 'test'), dataDir, registry, logger, normalise: normaliseEvent });
}

async function metric(registry: Registry, name: string, output: string): Promise<number> {
  return (await registry.getSingleMetric(name)!.get()).values.find((v) => v.labels.output === output)?.value ?? 0;
}

/** Splits concatenated JSON objects (HEC's batch format) strictly: only objects, nothing between them. */
function concatenatedObjects(body: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let depth = 0;
  let inString = false;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth === 0) {
        if (i !== start) throw new Error(`bytes between HEC events at ${start}`);
        start = i;
      }
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) {
        out.push(JSON.parse(body.slice(start, i + 1)) as Record<string, unknown>);
        start = i + 1;
      }
    } else if (depth === 0) throw new Error(`unexpected ${JSON.stringify(c)} between HEC events`);
  }
  if (depth !== 0 || start !== body.length) throw new Error('truncated HEC body');
  return out;
}

describe('Splunk HEC output', () => {
  it('posts event envelopes with the token, and keeps every record in order across a receiver outage', async () => {
    const received: number[] = [];
    const hec = new Receiver((req, body, res) => {
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/services/collector/event');
      assert.equal(req.headers.authorization, 'Splunk 11111111-2222-3333-4444-555555555555');
      assert.equal(req.headers['content-type'], 'application/json');
      for (const ev of concatenatedObjects(body)) {
        assert.deepEqual(Object.keys(ev), ['time', 'host', 'source', 'sourcetype', 'index', 'event']);
        assert.equal(typeof ev.time, 'number');
        assert.equal(ev.host, 'node-a');
        assert.equal(ev.sourcetype, 'apiary:attack');
        assert.equal(ev.index, 'honeypots');
        const event = ev.event as Record<string, unknown>;
        assert.equal(Object.keys(event)[0], 'timestamp');
        assert.equal(ev.time, Date.parse(event.timestamp as string) / 1000);
        received.push(seqOf(event.command as string));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
    });
    await hec.start();
    const registry = new Registry();
    const outputs = outputsWith(
      [{ name: 'hec', type: 'splunk_hec', url: `http://127.0.0.1:${hec.port}`, token: '11111111-2222-3333-4444-555555555555', index: 'honeypots', sourcetype: 'apiary:attack', batch: { maxEntries: 25 }, ...fast }],
      join(tmp.path, 'hec'),
      registry,
    );
    try {
      for (let b = 0; b < 4; b++) outputs.handle(range(b * 25, b * 25 + 25).map((i) => commandEvent(i)));
      await waitFor(() => received.length === 100, 10_000, 'first 100');
      await hec.stop();
      for (let b = 4; b < 10; b++) outputs.handle(range(b * 25, b * 25 + 25).map((i) => commandEvent(i)));
      await waitFor(async () => (await metric(registry, 'apiary_output_failed_total', 'hec')) > 0, 10_000, 'failures while down');
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(outputs.backlog('hec'), 150);
      await hec.start();
      await waitFor(() => received.length >= 250, 10_000, 'all after the receiver returned');
      assert.deepEqual(received, range(0, 250));
      assert.deepEqual(hec.problems, []);
      // The receiver has the last batch before the sender has read its answer and counted it.
      await waitFor(async () => (await metric(registry, 'apiary_output_sent_total', 'hec')) === 250, 10_000, 'all 250 counted as sent');
      assert.equal(outputs.backlog('hec'), 0);
    } finally {
      await outputs.close();
      await hec.stop();
    }
  });
});

describe('Elasticsearch _bulk output', () => {
  it('sends action+document ndjson with stable ids, retries 429 items and what follows without indexing twice, refuses mapping errors for good', async () => {
    const indexed: number[] = [];
    const ids = new Set<string>();
    let conflicts = 0;
    let throttledOnce = false;
    const es = new Receiver((req, body, res) => {
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/_bulk');
      assert.equal(req.headers['content-type'], 'application/x-ndjson');
      assert.equal(req.headers.authorization, `Basic ${Buffer.from('elastic:pw').toString('base64')}`);
      assert.ok(body.endsWith('\n'), 'a _bulk body ends with a newline');
      const lines = body.slice(0, -1).split('\n');
      assert.equal(lines.length % 2, 0, 'action and document lines pair up');
      const items: unknown[] = [];
      let errors = false;
      for (let i = 0; i < lines.length; i += 2) {
        const action = JSON.parse(lines[i]!) as { create: { _index: string; _id: string } };
        assert.deepEqual(Object.keys(action), ['create']);
        assert.equal(action.create._index, 'apiary-attacks');
        const doc = JSON.parse(lines[i + 1]!) as Record<string, unknown>;
        assert.equal(Object.keys(doc)[0], 'timestamp');
        const seq = seqOf(doc.command as string);
        // The id names the record: its event id, its place in the event, the event's time.
        assert.match(action.create._id, /^\d+-0-\d+$/);
        if (ids.has(action.create._id)) {
          // What Elasticsearch answers a create of an existing document.
          conflicts++;
          errors = true;
          items.push({ create: { _index: 'apiary-attacks', _id: action.create._id, status: 409, error: { type: 'version_conflict_engine_exception' } } });
        } else if (seq === 7) {
          errors = true;
          items.push({ create: { _index: 'apiary-attacks', status: 400, error: { type: 'mapper_parsing_exception', reason: 'failed to parse' } } });
        } else if (seq === 12 && !throttledOnce) {
          throttledOnce = true;
          errors = true;
          items.push({ create: { _index: 'apiary-attacks', status: 429, error: { type: 'es_rejected_execution_exception' } } });
        } else {
          indexed.push(seq);
          ids.add(action.create._id);
          items.push({ create: { _index: 'apiary-attacks', _id: action.create._id, status: 201, result: 'created' } });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ took: 1, errors, items }));
    });
    await es.start();
    const registry = new Registry();
    const outputs = outputsWith(
      [{ name: 'es', type: 'elasticsearch', url: `http://127.0.0.1:${es.port}`, index: 'apiary-attacks', username: 'elastic', password: 'pw', ...fast }],
      join(tmp.path, 'es'),
      registry,
    );
    try {
      outputs.handle(range(0, 20).map((i) => commandEvent(i)));
      await waitFor(() => outputs.backlog('es') === 0 && indexed.includes(19) && throttledOnce, 10_000, 'bulk delivered');
      assert.deepEqual(es.problems, []);
      // Every record but the refused one is indexed exactly once: those after the throttled item
      // were sent again and refused as existing (409), which counts as delivered, not rejected.
      assert.deepEqual([...indexed].sort((a, b) => a - b), range(0, 20).filter((i) => i !== 7));
      assert.ok(conflicts > 0, 'the retry resent records already indexed');
      assert.equal(await metric(registry, 'apiary_output_rejected_total', 'es'), 1);
      assert.ok((await metric(registry, 'apiary_output_failed_total', 'es')) >= 8);
    } finally {
      await outputs.close();
      await es.stop();
    }
  });
});

describe('webhook output', () => {
  it('posts ndjson with its headers; a batch refused with 400 is retried record by record', async () => {
    const got: number[] = [];
    const hook = new Receiver((req, body, res) => {
      assert.equal(req.headers['x-api-key'], 'k1');
      assert.equal(req.headers['content-type'], 'application/x-ndjson');
      const lines = body.split('\n');
      assert.equal(lines.pop(), '');
      const seqsIn = lines.map((l) => seqOf(l));
      if (seqsIn.includes(3)) {
        res.writeHead(400).end('bad record');
        return;
      }
      got.push(...seqsIn);
      res.writeHead(204).end();
    });
    await hook.start();
    const registry = new Registry();
    const outputs = outputsWith([{ name: 'hook', type: 'webhook', url: `http://127.0.0.1:${hook.port}/in`, format: 'splunk', headers: { 'x-api-key': 'k1' }, ...fast }], join(tmp.path, 'hook'), registry);
    try {
      outputs.handle(range(0, 6).map((i) => commandEvent(i)));
      await waitFor(() => outputs.backlog('hook') === 0 && got.length === 5, 10_000, 'webhook delivered');
      assert.deepEqual(got, [0, 1, 2, 4, 5]);
      assert.deepEqual(hook.problems, []);
      assert.equal(await metric(registry, 'apiary_output_rejected_total', 'hook'), 1);
    } finally {
      await outputs.close();
      await hook.stop();
    }
  });
});
