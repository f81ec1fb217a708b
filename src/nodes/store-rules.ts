// What both node stores do the same way, whatever the database: the caps on peer-supplied text,
// when a node's log is trimmed, and how an unknown-name aggregate's name sample is merged.
import { truncateUtf8 } from './limits.js';
import type { NodeChanges, NodeStoreLimits, RegisteredInfo } from './store.js';

export type ResolvedNodeStoreLimits = Required<Omit<NodeStoreLimits, 'onTruncated' | 'onPotCapped'>> & Pick<NodeStoreLimits, 'onTruncated' | 'onPotCapped'>;

export function resolveLimits(limits: NodeStoreLimits): ResolvedNodeStoreLimits {
  return {
    logMessageMaxBytes: limits.logMessageMaxBytes ?? 4096,
    potMessageMaxBytes: limits.potMessageMaxBytes ?? 4096,
    maxLogRowsPerNode: limits.maxLogRowsPerNode ?? 10_000,
    unknownNamesSample: limits.unknownNamesSample ?? 10,
    maxPotsPerNode: limits.maxPotsPerNode ?? 256,
    onTruncated: limits.onTruncated,
    onPotCapped: limits.onPotCapped,
  };
}

/** `text` cut to `maxBytes` of UTF-8 (onTruncated told when it was). */
export function cappedText(limits: ResolvedNodeStoreLimits, text: string | null, field: 'node_log.message' | 'pots.last_message'): string | null {
  if (text === null) return null;
  const cut = truncateUtf8(text, field === 'node_log.message' ? limits.logMessageMaxBytes : limits.potMessageMaxBytes);
  if (cut.truncated) limits.onTruncated?.(field);
  return cut.text;
}

/**
 * Counts node_log writes per name in this process: every tenth of maxLogRowsPerNode writes, the
 * name is due for a trim to its newest maxLogRowsPerNode rows, so no peer grows the table by more
 * than ~10 % beyond its cap between trims.
 */
export class LogTrimSchedule {
  private readonly writes = new Map<string, number>();

  constructor(private readonly maxLogRowsPerNode: number) {}

  /** Records one write of `name`; true when that name should be trimmed now. */
  wrote(name: string): boolean {
    const writes = (this.writes.get(name) ?? 0) + 1;
    if (writes >= Math.max(1, Math.floor(this.maxLogRowsPerNode / 10))) {
      this.writes.delete(name);
      return true;
    }
    if (this.writes.size >= 100_000) this.writes.clear();
    this.writes.set(name, writes);
    return false;
  }
}

/** The stored sample of names (JSON text) with `added` moved to its end, newest last, at most `sample`. */
export function mergeNameSample(storedJson: string | undefined, added: readonly string[], sample: number): string[] {
  let names: string[] = [];
  try {
    const parsed: unknown = storedJson === undefined ? [] : JSON.parse(storedJson);
    if (Array.isArray(parsed)) names = parsed.filter((n): n is string => typeof n === 'string');
  } catch {
    names = [];
  }
  for (const n of added) {
    const at = names.indexOf(n);
    if (at >= 0) names.splice(at, 1);
    names.push(n);
  }
  return names.slice(-sample);
}

/** The columns a node's accepted registration sets. */
export function registeredValues(info: RegisteredInfo, now: number): NodeChanges {
  return {
    nodeId: info.nodeId,
    nodeType: info.nodeType,
    address: info.address,
    port: info.port,
    remoteAddress: info.remoteAddress,
    transport: info.transport,
    status: 'Connected',
    connectedAt: now,
    lastSeenAt: now,
    disconnectedAt: null,
    disconnectReason: null,
  };
}
