// How the process log looks. JSON lines (pino's own format) for machines: files, journald,
// docker logs, anything that is not a terminal. For a person at a terminal, one readable line per
// event: time, level, domain, message, then the other fields as key=value, coloured unless
// NO_COLOR is set.
import { format } from 'node:util';

export type LogFormat = 'auto' | 'pretty' | 'json';

/** A pino destination: pino writes one JSON document per call. */
export interface LogDestination {
  write(line: string): void;
}

/** Where pino writes, for the chosen format; undefined means pino's default JSON on stdout. */
export function logDestination(fmt: LogFormat, out: NodeJS.WriteStream = process.stdout): LogDestination | undefined {
  const pretty = fmt === 'pretty' || (fmt === 'auto' && out.isTTY === true);
  if (!pretty) return undefined;
  const colour = out.isTTY === true && !process.env.NO_COLOR;
  return { write: (line) => void out.write(prettyLine(line, colour)) };
}

const levels: Record<number, [string, string]> = {
  10: ['TRACE', '90'],
  20: ['DEBUG', '34'],
  30: ['INFO ', '32'],
  40: ['WARN ', '33'],
  50: ['ERROR', '31'],
  60: ['FATAL', '35'],
};
/** Fields shown in the fixed part of the line, or not at all. */
const shown = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'domain', 'v']);

function paint(colour: boolean, code: string, text: string): string {
  return colour ? `\x1b[${code}m${text}\x1b[0m` : text;
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v instanceof Object && 'message' in v && 'type' in v) {
    // A serialised error: its type and message, not the stack (one line per event).
    const e = v as { type: string; message: string; code?: string };
    return JSON.stringify(`${e.type}${e.code ? ` ${e.code}` : ''}: ${e.message}`);
  }
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** One pino JSON line as a readable line (ending in a newline). */
export function prettyLine(json: string, colour = false): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = new Date(typeof rec.time === 'number' ? rec.time : Date.now());
  const hhmmss = `${String(time.getHours()).padStart(2, '0')}:${String(time.getMinutes()).padStart(2, '0')}:${String(time.getSeconds()).padStart(2, '0')}.${String(time.getMilliseconds()).padStart(3, '0')}`;
  const [name, code] = levels[rec.level as number] ?? [String(rec.level).toUpperCase().padEnd(5), '0'];
  const parts = [paint(colour, '2', hhmmss), paint(colour, code, name)];
  if (rec.domain) parts.push(paint(colour, '36', `[${String(rec.domain)}]`));
  parts.push(typeof rec.msg === 'string' ? rec.msg : '');
  for (const [k, v] of Object.entries(rec)) {
    if (shown.has(k) || v === undefined) continue;
    parts.push(`${paint(colour, '2', `${k}=`)}${value(v)}`);
  }
  // A message or value with a newline in it would break the one-line promise.
  return `${format('%s', parts.join(' ')).replace(/\r?\n/g, '\\n')}\n`;
}
