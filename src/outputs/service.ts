// The outputs domain's service: every committed batch of events is normalised once, filtered and
// formatted per output, and handed to each output in one piece (one file write, or one backlog
// append per network output). Network outputs deliver from their backlog in the background.
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import { FileBacklog, type OutputBacklog } from './backlog.js';
import type { OutputConfig } from './config.js';
import { DeliveryWorker, type Sender } from './delivery.js';
import { RotatingFile } from './file.js';
import { DEFAULT_CEF_PRODUCT, formatRecord, type CefProduct } from './format.js';
import { BulkSender, bulkEncoder, HecSender, hecEncoder, WebhookSender } from './http.js';
import { OutputMetrics } from './metrics.js';
import { recordHasTag, recordsOf, type AttackRecord, type Normaliser, type OutputEvent } from './records.js';
import { StreamSyslogSender, syslogEncoder, UdpSyslogSender } from './syslog.js';

export interface OutputsOptions {
  outputs: readonly OutputConfig[];
  /** Backlogs live in `<dataDir>/outputs/<output name>/`. */
  dataDir: string;
  registry: Registry;
  logger: FastifyBaseLogger;
  /** Event → normalised record (the analytics domain's normaliseEvent). */
  normalise: Normaliser;
  /** hpfeeds channels an event of a pot type goes to, for `filter.channels`. */
  channelsFor?: (potType: string) => readonly string[];
  /** Known scanner addresses, for `filter.tags: ["scanner"]`. */
  isScanner?: (ip: string) => boolean;
  cef?: CefProduct;
  /** Opens a backlog (default: a FileBacklog in the output's directory). */
  openBacklog?: (cfg: Extract<OutputConfig, { backlog: unknown }>, dir: string) => OutputBacklog;
}

export interface Outputs {
  /** The onCommitted listener: formats and queues a committed batch. Never throws. */
  handle(events: readonly OutputEvent[]): void;
  readonly names: readonly string[];
  /** Records waiting in an output's backlog (0 for files). */
  backlog(name: string): number;
  /** Stops delivery (the batch in flight may finish) and closes files and backlogs; what waits is delivered after the next start. */
  close(): Promise<void>;
}

/** `k`: the record's position among its event's records (a cowrie session summary has several). */
type Encode = (r: AttackRecord, line: string, k: number) => string;

interface ActiveOutput {
  name: string;
  accepts(r: AttackRecord, e: OutputEvent): boolean;
  line(r: AttackRecord, e: OutputEvent): string;
  /** Outputs with the same key format a record to the same line. */
  lineKey: string;
  encode: Encode;
  perEvent: boolean;
  take(entries: string[]): void;
  pending(): number;
  close(): Promise<void>;
}

function filterOf(cfg: OutputConfig, opts: OutputsOptions): (r: AttackRecord, e: OutputEvent) => boolean {
  const f = cfg.filter;
  const nodes = f.nodes && new Set(f.nodes);
  const potTypes = f.potTypes && new Set(f.potTypes);
  const channels = f.channels && new Set(f.channels);
  const tags = f.tags;
  if (!nodes && !potTypes && !channels && !tags) return () => true;
  return (r, e) => {
    if (nodes && !nodes.has(e.node)) return false;
    if (potTypes && !potTypes.has(e.potType)) return false;
    if (channels && !(opts.channelsFor?.(e.potType) ?? []).some((c) => channels.has(c))) return false;
    if (tags && !tags.some((t) => recordHasTag(r, t, opts.isScanner))) return false;
    return true;
  };
}

export function createOutputs(opts: OutputsOptions): Outputs {
  const metrics = new OutputMetrics(opts.registry);
  const cef = opts.cef ?? DEFAULT_CEF_PRODUCT;
  const active: ActiveOutput[] = [];
  const log = opts.logger;
  try {
    for (const cfg of opts.outputs) active.push(build(cfg));
  } catch (err) {
    void Promise.all(active.map((a) => a.close()));
    throw err;
  }

  function build(cfg: OutputConfig): ActiveOutput {
    const isFile = cfg.type === 'file';
    const fmt = cfg.format;
    const line =
      fmt === 'raw_json'
        ? // Untouched, except that a node's pretty-printed JSON (line breaks are only ever whitespace
          // in JSON text) is kept on one line: every output is line- or entry-oriented.
          (_r: AttackRecord, e: OutputEvent) => (/[\r\n]/.test(e.dataJson) ? e.dataJson.replace(/[\r\n]+/g, ' ') : e.dataJson)
        : (r: AttackRecord) => formatRecord(fmt, r, { cef, cefTimestampPrefix: isFile });
    const base = { name: cfg.name, accepts: filterOf(cfg, opts), line, lineKey: fmt === 'cef' && isFile ? 'cef-file' : fmt, perEvent: fmt === 'raw_json' };
    if (cfg.type === 'file') {
      const file = new RotatingFile(cfg.path, cfg.rotate);
      let lastLog = 0;
      metrics.add({ name: cfg.name, backlogEntries: () => 0, backlogBytes: () => 0, lagSeconds: () => 0 });
      return {
        ...base,
        encode: (_r, l) => l,
        take(entries) {
          try {
            file.write(Buffer.from(`${entries.join('\n')}\n`));
            metrics.sent.inc({ output: cfg.name }, entries.length);
          } catch (err) {
            metrics.dropped.inc({ output: cfg.name }, entries.length);
            if (Date.now() - lastLog > 10_000) {
              lastLog = Date.now();
              log.error({ err, output: cfg.name, path: cfg.path, records: entries.length }, 'could not write to the output file; records dropped (counted)');
            }
          }
        },
        pending: () => 0,
        async close() {
          file.close();
        },
      };
    }
    let encode: Encode;
    let sender: Sender;
    switch (cfg.type) {
      case 'syslog':
        encode = syslogEncoder(cfg);
        sender = cfg.transport === 'udp' ? new UdpSyslogSender(cfg) : new StreamSyslogSender(cfg);
        break;
      case 'splunk_hec':
        encode = hecEncoder(cfg);
        sender = new HecSender(cfg, log);
        break;
      case 'elasticsearch':
        encode = bulkEncoder(cfg);
        sender = new BulkSender(cfg, log);
        break;
      case 'webhook':
        encode = (_r, l) => l;
        sender = new WebhookSender(cfg, log);
        break;
    }
    const dir = join(opts.dataDir, 'outputs', cfg.name);
    const backlog = opts.openBacklog?.(cfg, dir) ?? new FileBacklog({ dir, ...cfg.backlog });
    if (backlog.pendingEntries > 0) log.info({ output: cfg.name, backlog: backlog.pendingEntries }, 'output backlog from the last run; delivering it first');
    const worker = new DeliveryWorker({ name: cfg.name, backlog, sender, metrics, logger: log, retry: cfg.retry, batch: cfg.batch });
    metrics.add({
      name: cfg.name,
      backlogEntries: () => backlog.pendingEntries,
      backlogBytes: () => backlog.pendingBytes,
      lagSeconds: () => {
        const t = backlog.oldestAppendedAt;
        return t === null ? 0 : Math.max(0, (Date.now() - t) / 1000);
      },
    });
    worker.start();
    let droppedSinceLog = 0;
    let lastLog = 0;
    return {
      ...base,
      encode,
      take(entries) {
        let refused: number;
        try {
          refused = backlog.append(entries);
        } catch (err) {
          refused = entries.length;
          log.error({ err, output: cfg.name }, 'could not append to the output backlog');
        }
        if (refused > 0) {
          metrics.dropped.inc({ output: cfg.name }, refused);
          droppedSinceLog += refused;
          if (Date.now() - lastLog > 10_000) {
            log.warn({ output: cfg.name, dropped: droppedSinceLog, backlogBytes: backlog.pendingBytes, maxBytes: cfg.backlog.maxBytes }, 'output backlog is full; new records are dropped (counted)');
            lastLog = Date.now();
            droppedSinceLog = 0;
          }
        }
        if (refused < entries.length) worker.wake();
      },
      pending: () => backlog.pendingEntries,
      async close() {
        await worker.stop();
        backlog.close();
      },
    };
  }

  let closed = false;
  return {
    names: active.map((a) => a.name),
    backlog: (name) => active.find((a) => a.name === name)?.pending() ?? 0,
    handle(events) {
      if (closed || active.length === 0) return;
      const records: AttackRecord[][] = new Array(events.length);
      for (let i = 0; i < events.length; i++) {
        try {
          records[i] = recordsOf(events[i]!, opts.normalise);
        } catch (err) {
          records[i] = [];
          log.error({ err, eventId: events[i]!.id }, 'could not normalise an event for the outputs');
        }
      }
      // Outputs with the same format share each formatted line (formatting is most of the cost).
      const lines = new Map<string, Map<AttackRecord, string>>();
      for (const out of active) {
        let cache = lines.get(out.lineKey);
        if (cache === undefined) lines.set(out.lineKey, (cache = new Map()));
        const entries: string[] = [];
        for (let i = 0; i < events.length; i++) {
          const e = events[i]!;
          const recs = records[i]!;
          for (let k = 0; k < recs.length; k++) {
            const r = recs[k]!;
            if (!out.accepts(r, e)) continue;
            let line = cache.get(r);
            if (line === undefined) cache.set(r, (line = out.line(r, e)));
            entries.push(out.encode(r, line, k));
            // raw_json writes the event's payload once, however many records it has.
            if (out.perEvent) break;
          }
        }
        if (entries.length > 0) out.take(entries);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(active.map((a) => a.close().catch((err: unknown) => log.error({ err, output: a.name }, 'error closing an output'))));
    },
  };
}
