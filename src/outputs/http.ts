// HTTP outputs: Splunk HEC (/services/collector/event, `Authorization: Splunk <token>`, events
// concatenated), Elasticsearch/OpenSearch `_bulk` (ndjson action + document lines; per-item
// results read: 429/5xx items and everything after them are retried, other refused items are
// logged and counted as rejected) and a generic webhook (ndjson of formatted lines).
// A batch answered 400/413/422 as a whole is retried entry by entry, so one bad record is refused
// alone instead of holding its output forever; every other failure (network, 401/403/404, 429,
// 5xx) keeps the batch for a retry.
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { FastifyBaseLogger } from 'fastify';
import type { BulkOutputConfig, HecOutputConfig, WebhookOutputConfig } from './config.js';
import type { Sender } from './delivery.js';
import type { AttackRecord } from './records.js';

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`);
  }
}

type Cfg = HecOutputConfig | BulkOutputConfig | WebhookOutputConfig;

class HttpPoster {
  private readonly url: URL;
  private readonly agent: HttpAgent;

  constructor(
    url: string,
    private readonly cfg: Cfg,
  ) {
    this.url = new URL(url);
    const tls = cfg.tls;
    this.agent =
      this.url.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: tls?.ca ? readFileSync(tls.ca) : undefined, rejectUnauthorized: tls?.rejectUnauthorized ?? true, servername: tls?.servername })
        : new HttpAgent({ keepAlive: true, maxSockets: 1 });
  }

  post(body: Buffer, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    const request = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        this.url,
        { method: 'POST', agent: this.agent, headers: { ...headers, 'content-length': String(body.length) }, timeout: this.cfg.timeoutMs },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            // Answers are small; a huge one is cut (the per-item result of a bulk batch fits easily).
            if (size < 64 * 1024 * 1024) chunks.push(c);
            size += c.length;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`HTTP request timed out after ${this.cfg.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

const PER_ENTRY_STATUSES = new Set([400, 413, 422]);

/** Sends batches whose whole answer is 2xx or not; splits a batch refused as bad data (see above). */
abstract class WholeBatchSender implements Sender {
  protected readonly poster: HttpPoster;

  constructor(
    url: string,
    protected readonly cfg: Cfg,
    protected readonly logger: FastifyBaseLogger,
  ) {
    this.poster = new HttpPoster(url, cfg);
  }

  protected abstract body(entries: readonly Buffer[]): Buffer;
  protected abstract headers(): Record<string, string>;

  private async postEntries(entries: readonly Buffer[]): Promise<void> {
    const res = await this.poster.post(this.body(entries), this.headers());
    if (res.status < 200 || res.status > 299) throw new HttpStatusError(res.status, res.body);
  }

  async send(entries: readonly Buffer[]): Promise<{ done: number; rejected: number }> {
    try {
      await this.postEntries(entries);
      return { done: entries.length, rejected: 0 };
    } catch (err) {
      if (!(err instanceof HttpStatusError) || !PER_ENTRY_STATUSES.has(err.status)) throw err;
      if (entries.length > 1) return this.oneByOne(entries);
      this.logger.error({ output: this.cfg.name, status: err.status, answer: err.body.slice(0, 500) }, 'receiver refused a record; it is dropped (counted as rejected)');
      return { done: 1, rejected: 1 };
    }
  }

  private async oneByOne(entries: readonly Buffer[]): Promise<{ done: number; rejected: number }> {
    let rejected = 0;
    for (let i = 0; i < entries.length; i++) {
      try {
        await this.postEntries([entries[i]!]);
      } catch (err) {
        if (err instanceof HttpStatusError && PER_ENTRY_STATUSES.has(err.status)) {
          rejected++;
          this.logger.error({ output: this.cfg.name, status: err.status, answer: err.body.slice(0, 500) }, 'receiver refused a record; it is dropped (counted as rejected)');
          continue;
        }
        if (i === 0) throw err;
        return { done: i, rejected };
      }
    }
    return { done: entries.length, rejected };
  }

  async close(): Promise<void> {
    this.poster.close();
  }
}

function hecUrl(url: string): string {
  const u = new URL(url);
  if (!u.pathname.endsWith('/services/collector/event')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/services/collector/event`;
  return u.toString();
}

/** The HEC event envelope of one record; JSON formats embed the record as an object. */
export function hecEncoder(cfg: HecOutputConfig) {
  const fixed = `"source":${JSON.stringify(cfg.source)},"sourcetype":${JSON.stringify(cfg.sourcetype)}${cfg.index ? `,"index":${JSON.stringify(cfg.index)}` : ''}`;
  const json = cfg.format === 'json' || cfg.format === 'raw_json';
  return (r: AttackRecord, line: string): string =>
    `{"time":${(r.timestamp / 1000).toFixed(3)},"host":${JSON.stringify(r.sensor)},${fixed},"event":${json ? line : JSON.stringify(line)}}`;
}

export class HecSender extends WholeBatchSender {
  constructor(cfg: HecOutputConfig, logger: FastifyBaseLogger) {
    super(hecUrl(cfg.url), cfg, logger);
  }
  protected body(entries: readonly Buffer[]): Buffer {
    return Buffer.concat(entries as Buffer[]);
  }
  protected headers(): Record<string, string> {
    return { authorization: `Splunk ${(this.cfg as HecOutputConfig).token}`, 'content-type': 'application/json' };
  }
}

export class WebhookSender extends WholeBatchSender {
  constructor(cfg: WebhookOutputConfig, logger: FastifyBaseLogger) {
    super(cfg.url, cfg, logger);
  }
  protected body(entries: readonly Buffer[]): Buffer {
    const parts: Buffer[] = [];
    for (const e of entries) parts.push(e, NL);
    return Buffer.concat(parts);
  }
  protected headers(): Record<string, string> {
    return { 'content-type': 'application/x-ndjson', ...(this.cfg as WebhookOutputConfig).headers };
  }
}

const NL = Buffer.from('\n');

/**
 * The `_bulk` action line and document of one record (both newline-terminated). The document id
 * is derived from the record (event id, position in its event, event time), so a batch sent again
 * after a lost answer or a 429 cannot index a record twice: with `create` the copy is refused with
 * 409 (counted as delivered), with `index` it overwrites itself.
 */
export function bulkEncoder(cfg: BulkOutputConfig) {
  const head = `{"${cfg.action}":{"_index":${JSON.stringify(cfg.index)},"_id":"`;
  return (r: AttackRecord, line: string, k: number): string => `${head}${r.event_id}-${k}-${r.timestamp}"}}\n${line}\n`;
}

function bulkUrl(url: string): string {
  const u = new URL(url);
  if (!u.pathname.endsWith('/_bulk')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/_bulk`;
  return u.toString();
}

interface BulkItem {
  status?: number;
  error?: unknown;
}

export class BulkSender implements Sender {
  private readonly poster: HttpPoster;
  private readonly auth: string | undefined;

  constructor(
    private readonly cfg: BulkOutputConfig,
    private readonly logger: FastifyBaseLogger,
  ) {
    this.poster = new HttpPoster(bulkUrl(cfg.url), cfg);
    if (cfg.apiKey) this.auth = `ApiKey ${cfg.apiKey}`;
    else if (cfg.username !== undefined) this.auth = `Basic ${Buffer.from(`${cfg.username}:${cfg.password ?? ''}`).toString('base64')}`;
  }

  async send(entries: readonly Buffer[]): Promise<{ done: number; rejected: number }> {
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
    if (this.auth) headers.authorization = this.auth;
    const res = await this.poster.post(Buffer.concat(entries as Buffer[]), headers);
    if (res.status < 200 || res.status > 299) throw new HttpStatusError(res.status, res.body);
    let answer: { errors?: boolean; items?: Record<string, BulkItem>[] };
    try {
      answer = JSON.parse(res.body) as typeof answer;
    } catch {
      throw new Error('_bulk answer is not JSON');
    }
    if (!Array.isArray(answer.items) || answer.items.length !== entries.length) {
      throw new Error(`_bulk answer has ${answer.items?.length ?? 'no'} items for ${entries.length} documents`);
    }
    if (!answer.errors) return { done: entries.length, rejected: 0 };
    let rejected = 0;
    for (let i = 0; i < answer.items.length; i++) {
      const item = Object.values(answer.items[i]!)[0] ?? {};
      const status = item.status ?? 0;
      if (status >= 200 && status <= 299) continue;
      // Already indexed by an earlier try whose answer was lost or retried (see bulkEncoder).
      if (status === 409 && this.cfg.action === 'create') continue;
      if (status === 429 || status >= 500 || status === 0) {
        this.logger.warn({ output: this.cfg.name, status, error: item.error }, '_bulk item failed; it and the records after it are retried');
        return { done: i, rejected };
      }
      rejected++;
      this.logger.error({ output: this.cfg.name, status, error: item.error }, '_bulk item refused; the record is dropped (counted as rejected)');
    }
    return { done: entries.length, rejected };
  }

  async close(): Promise<void> {
    this.poster.close();
  }
}
