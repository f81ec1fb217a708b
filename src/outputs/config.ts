// Outputs configuration: a JSON file (OUTPUTS_FILE / --outputs-file) and/or the same JSON inline
// (OUTPUTS), validated here. Errors name the source and the bad field; secrets (tokens, passwords,
// header values) never leave this file unmasked (describeOutputs).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FORMATS } from './format.js';
import { RECORD_TAGS } from './records.js';

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (at most 64)');
const nonEmpty = z.array(z.string().min(1)).min(1);

const filter = z
  .object({
    channels: nonEmpty.optional(),
    potTypes: nonEmpty.optional(),
    nodes: nonEmpty.optional(),
    tags: z.array(z.enum(RECORD_TAGS)).min(1).optional(),
  })
  .strict();

const backlog = z
  .object({
    maxBytes: z.number().int().min(1024 * 1024).default(256 * 1024 * 1024),
    segmentBytes: z.number().int().min(64 * 1024).default(8 * 1024 * 1024),
    fsync: z.enum(['always', 'interval']).default('interval'),
    fsyncIntervalMs: z.number().int().min(10).default(1000),
  })
  .strict();

const retry = z
  .object({
    initialMs: z.number().int().min(1).default(500),
    maxMs: z.number().int().min(1).default(60_000),
  })
  .strict();

const batch = z
  .object({
    maxEntries: z.number().int().min(1).max(100_000).default(1000),
    maxBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
  })
  .strict();

const common = {
  name,
  format: z.enum(FORMATS).default('json'),
  filter: filter.default({}),
};
const network = {
  backlog: backlog.default(backlog.parse({})),
  retry: retry.default(retry.parse({})),
  batch: batch.default(batch.parse({})),
  timeoutMs: z.number().int().min(100).default(10_000),
};

const tlsClient = z
  .object({
    /** PEM CA bundle file to trust (default: the system's). */
    ca: z.string().min(1).optional(),
    rejectUnauthorized: z.boolean().default(true),
    servername: z.string().min(1).optional(),
  })
  .strict();

const fileOutput = z
  .object({
    ...common,
    type: z.literal('file'),
    path: z.string().min(1),
    rotate: z
      .discriminatedUnion('by', [
        z.object({ by: z.literal('size'), maxBytes: z.number().int().min(1024).default(100 * 1024 * 1024), keep: z.number().int().min(0).default(3) }).strict(),
        z.object({ by: z.literal('time'), every: z.enum(['hour', 'day']).default('day'), keep: z.number().int().min(0).default(7) }).strict(),
        z.object({ by: z.literal('none') }).strict(),
      ])
      .default({ by: 'size', maxBytes: 100 * 1024 * 1024, keep: 3 }),
  })
  .strict();

const FACILITIES = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'security', 'console', 'solaris-cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;

const syslogOutput = z
  .object({
    ...common,
    ...network,
    type: z.literal('syslog'),
    transport: z.enum(['udp', 'tcp', 'tls']).default('tcp'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(514),
    facility: z.enum(FACILITIES).default('user'),
    /** HOSTNAME field (default: this machine's name). */
    hostname: z.string().regex(/^[!-~]{1,255}$/, 'printable ASCII without spaces').optional(),
    appName: z.string().regex(/^[!-~]{1,48}$/, 'printable ASCII without spaces, at most 48').default('apiary'),
    tls: tlsClient.optional(),
  })
  .strict();

const httpCommon = {
  ...common,
  ...network,
  url: z.string().url(),
  tls: tlsClient.optional(),
};

const hecOutput = z
  .object({
    ...httpCommon,
    type: z.literal('splunk_hec'),
    token: z.string().min(1),
    index: z.string().min(1).optional(),
    sourcetype: z.string().min(1).default('apiary'),
    source: z.string().min(1).default('apiary'),
  })
  .strict();

const bulkOutput = z
  .object({
    ...httpCommon,
    type: z.literal('elasticsearch'),
    index: z.string().min(1),
    action: z.enum(['create', 'index']).default('create'),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    apiKey: z.string().min(1).optional(),
  })
  .strict();

const webhookOutput = z
  .object({
    ...httpCommon,
    type: z.literal('webhook'),
    headers: z.record(z.string(), z.string()).default({}),
  })
  .strict();

export const outputSchema = z.discriminatedUnion('type', [fileOutput, syslogOutput, hecOutput, bulkOutput, webhookOutput]);
export const outputsSchema = z.union([z.array(outputSchema), z.object({ outputs: z.array(outputSchema) }).strict().transform((o) => o.outputs)]);

export type OutputConfig = z.output<typeof outputSchema>;
export type FileOutputConfig = z.output<typeof fileOutput>;
export type SyslogOutputConfig = z.output<typeof syslogOutput>;
export type HecOutputConfig = z.output<typeof hecOutput>;
export type BulkOutputConfig = z.output<typeof bulkOutput>;
export type WebhookOutputConfig = z.output<typeof webhookOutput>;
export type NetworkOutputConfig = SyslogOutputConfig | HecOutputConfig | BulkOutputConfig | WebhookOutputConfig;
export const SYSLOG_FACILITIES: readonly string[] = FACILITIES;

export class OutputsConfigError extends Error {
  override name = 'OutputsConfigError';
}

function where(path: readonly PropertyKey[], list: unknown): string {
  // Name the output by its `name` when it has one: "outputs[1] (siem).port".
  const p = path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
  const idx = path.findIndex((k) => typeof k === 'number');
  const arr = Array.isArray(list) ? list : (list as { outputs?: unknown[] } | null)?.outputs;
  const n = idx >= 0 && Array.isArray(arr) ? (arr[path[idx] as number] as { name?: unknown } | undefined)?.name : undefined;
  return `outputs${p.replace(/^\.outputs/, '')}${typeof n === 'string' ? ` (${n})` : ''}`;
}

/** Parses outputs JSON text; `source` names where it came from in errors (a file path, or OUTPUTS). */
export function parseOutputs(text: string, source: string): OutputConfig[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new OutputsConfigError(`${source}: not JSON: ${(err as Error).message}`);
  }
  const r = outputsSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    // A union error says little: report the deepest issue of the branch that matched the type.
    const deep = (issue as { errors?: { path: PropertyKey[]; message: string }[][] }).errors?.flat().sort((a, b) => b.path.length - a.path.length)[0];
    const path = deep ? [...issue.path, ...deep.path] : issue.path;
    throw new OutputsConfigError(`${source}: ${where(path, json)}: ${deep?.message ?? issue.message}`);
  }
  const seen = new Set<string>();
  for (const o of r.data) {
    if (seen.has(o.name)) throw new OutputsConfigError(`${source}: two outputs are named ${o.name}`);
    seen.add(o.name);
    if (o.type === 'elasticsearch' && o.format !== 'json' && o.format !== 'raw_json') {
      throw new OutputsConfigError(`${source}: outputs (${o.name}).format: elasticsearch documents are JSON: use json or raw_json`);
    }
    if (o.type === 'elasticsearch' && o.apiKey && (o.username || o.password)) {
      throw new OutputsConfigError(`${source}: outputs (${o.name}): set apiKey or username/password, not both`);
    }
    if (o.type === 'syslog' && o.transport !== 'tls' && o.tls) {
      throw new OutputsConfigError(`${source}: outputs (${o.name}).tls: only for transport "tls"`);
    }
  }
  return r.data;
}

/** Reads OUTPUTS_FILE and OUTPUTS (either or both; names must not repeat across them). */
export function loadOutputs(file: string | undefined, inline: string | undefined): OutputConfig[] {
  const out: OutputConfig[] = [];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new OutputsConfigError(`outputs file ${file}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    out.push(...parseOutputs(text, `outputs file ${file}`));
  }
  if (inline) out.push(...parseOutputs(inline, 'OUTPUTS'));
  const seen = new Set<string>();
  for (const o of out) {
    if (seen.has(o.name)) throw new OutputsConfigError(`outputs: the name ${o.name} is used in both the outputs file and OUTPUTS`);
    seen.add(o.name);
  }
  return out;
}

const SECRET_KEYS = new Set(['token', 'password', 'apiKey']);

/** The outputs as safe to log: secrets and header values replaced by '(set)', URLs without credentials. */
export function describeOutputs(outputs: readonly OutputConfig[]): Record<string, unknown>[] {
  return outputs.map((o) => {
    const d: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if (SECRET_KEYS.has(k)) d[k] = v ? '(set)' : '(unset)';
      else if (k === 'headers') d[k] = Object.fromEntries(Object.keys(v as object).map((h) => [h, '(set)']));
      else if (k === 'url' && typeof v === 'string') {
        const u = new URL(v);
        if (u.username || u.password) {
          u.username = u.username ? '(set)' : '';
          u.password = u.password ? '(set)' : '';
        }
        d[k] = u.toString();
      } else d[k] = v;
    }
    return d;
  });
}
