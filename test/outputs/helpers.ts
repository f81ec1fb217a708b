import type { StoredEvent } from '../../src/analytics/index.js';
import type { OutputEvent } from '../../src/outputs/index.js';

let nextId = 1;

/** A committed-event-shaped cowrie command event with a sequence number in its command. */
export function commandEvent(seq: number, opts: { node?: string; potType?: string; timestamp?: number } = {}): OutputEvent {
  const data = { eventid: 'cowrie.command.input', input: `echo ${seq} a=b|c\\d`, src_ip: '203.0.113.7', src_port: 40000 + (seq % 1000), dst_ip: '10.0.0.1', dst_port: 22, session: 's1', protocol: 'ssh' };
  const e: StoredEvent = { id: nextId++, node: opts.node ?? 'node-a', potId: 'pot-1', potType: opts.potType ?? 'cowrie', eventType: 'cowrie.command.input', timestamp: opts.timestamp ?? Date.UTC(2026, 11, 1, 2, 0, 0) + seq, data };
  return { ...e, dataJson: JSON.stringify(data) };
}

/** The sequence number a formatted line carries (from the command), or -1. */
export function seqOf(line: string): number {
  const m = /echo (\d+) a/.exec(line);
  return m ? Number(m[1]) : -1;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
