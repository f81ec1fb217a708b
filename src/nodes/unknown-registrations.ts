// Registrations of names the core keeps no node row for (unknown names in provisioned mode, names
// refused over the pending caps, invalid names) are aggregated per source address: a count, first
// and last seen, and a small sample of the latest names. A flood of made-up names then costs one
// row per address instead of one node_log row per name, and one write per flush instead of one
// per attempt.
import { addressKey } from './limits.js';
import type { NodeStore, UnknownRegistrationDelta } from './store.js';

/** Addresses held in memory between flushes; beyond it the batch is flushed early. */
const MAX_PENDING_ADDRESSES = 10_000;
/** Longest name kept in the sample (names are not validated when the attempt is a bad name). */
const SAMPLE_NAME_MAX = 253;

export class UnknownRegistrationLog {
  private pending = new Map<string, UnknownRegistrationDelta>();
  /** Writes in flight (each flush writes its own batch). */
  private readonly writing = new Set<Promise<void>>();

  constructor(
    private readonly store: NodeStore,
    private readonly namesSample: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  record(remoteAddress: string, name: string, result: string, now: number): void {
    const key = addressKey(remoteAddress);
    let d = this.pending.get(key);
    if (!d) {
      if (this.pending.size >= MAX_PENDING_ADDRESSES) this.flush();
      d = { addressKey: key, lastAddress: remoteAddress, attempts: 0, firstSeenAt: now, lastSeenAt: now, names: [], lastResult: result };
      this.pending.set(key, d);
    }
    d.attempts++;
    d.lastSeenAt = now;
    d.lastAddress = remoteAddress;
    d.lastResult = result;
    // eslint-disable-next-line no-control-regex
    const shown = name.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, SAMPLE_NAME_MAX);
    const at = d.names.indexOf(shown);
    if (at >= 0) d.names.splice(at, 1);
    d.names.push(shown);
    if (d.names.length > this.namesSample) d.names.shift();
  }

  flush(): void {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    const write = this.store.recordUnknown(batch).catch(this.onError);
    this.writing.add(write);
    void write.finally(() => this.writing.delete(write));
  }

  /** Resolves once the batches flushed so far are written (or have failed). */
  async settled(): Promise<void> {
    await Promise.all([...this.writing]);
  }
}
