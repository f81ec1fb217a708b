// The real node's cowrie text names a session only on its connect line; later lines are attributed
// to the session open on that (node, sensor) (cowrie-text-sessions.ts). When several cores share a
// fleet and a node reconnects to another core mid-session, that core must know what was open, or
// the rest of the session's lines lose their session (and cowrie.sessions its commands). So the
// open sessions are written to a shared state (Redis: src/cluster/) whenever they change (connects
// and closes: a few per session, batched per event-loop turn, never one write per line), and read
// back once when a node registers at a core.
//
// The read is asynchronous. The node gateway holds the node's RegistrationAck until it is done
// (bounded; see GatewayCore.beforeAck), and a node speaks only after its ack, so its lines meet
// the shared view. Sensors whose sessions changed here while the read ran (lines of the node's
// previous session on this core, or of a node that sent past the bound) keep this core's view;
// the others take the shared one.
import { CowrieTextSessions, type CowrieTextSessionOptions, type OpenTextSession } from './cowrie-text-sessions.js';

export interface CowrieTextEntry {
  node: string;
  sensor: string;
  /** Empty: nothing open on that sensor. */
  open: OpenTextSession[];
}

export interface CowrieTextState {
  save(entries: readonly CowrieTextEntry[]): Promise<void>;
  load(node: string): Promise<CowrieTextEntry[]>;
}

export class SharedCowrieText {
  readonly sessions: CowrieTextSessions;
  private readonly dirty = new Map<string, { node: string; sensor: string }>();
  private flushing: NodeJS.Immediate | undefined;
  /** Nodes being read, with the sensors that changed here meanwhile and the read itself. */
  private readonly loading = new Map<string, { changedMeanwhile: Set<string>; read: Promise<void> }>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly state: CowrieTextState,
    opts: CowrieTextSessionOptions | undefined,
    private readonly onError: (err: unknown) => void,
  ) {
    this.sessions = new CowrieTextSessions({ ...opts, onChange: (node, sensor) => this.changed(node, sensor) });
  }

  /**
   * A node is registering at this core: take what another core left open for it. Resolves once
   * that is read (a failed read is reported to onError and resolves too: this core's view stays).
   */
  nodeOnline(node: string): Promise<void> {
    const already = this.loading.get(node);
    if (already !== undefined) return already.read;
    const changedMeanwhile = new Set<string>();
    const read = this.state.load(node).then((entries) => {
      const now = Date.now();
      const shared = new Set<string>();
      for (const e of entries) {
        shared.add(e.sensor);
        if (!changedMeanwhile.has(e.sensor)) this.sessions.adopt(node, e.sensor, e.open, now);
      }
      // What this core still remembers from an earlier visit has ended elsewhere since.
      for (const sensor of this.sessions.sensorsOf(node)) {
        if (!shared.has(sensor) && !changedMeanwhile.has(sensor)) this.sessions.adopt(node, sensor, [], now);
      }
    });
    const done = this.track(read.finally(() => this.loading.delete(node)));
    this.loading.set(node, { changedMeanwhile, read: done });
    return done;
  }

  /** Writes what is pending and waits for the calls in flight, at most `maxWaitMs`. */
  async settle(maxWaitMs = 3000): Promise<void> {
    this.flush();
    const deadline = Date.now() + maxWaitMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.all([...this.inFlight]), new Promise((resolve) => setTimeout(resolve, deadline - Date.now()).unref())]);
    }
  }

  private changed(node: string, sensor: string): void {
    this.dirty.set(node + '\u0000' + sensor, { node, sensor });
    this.loading.get(node)?.changedMeanwhile.add(sensor);
    this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    if (this.flushing !== undefined) clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.dirty.size === 0) return;
    const entries: CowrieTextEntry[] = [];
    for (const { node, sensor } of this.dirty.values()) entries.push({ node, sensor, open: this.sessions.openOf(node, sensor) });
    this.dirty.clear();
    this.track(this.state.save(entries));
  }

  private track(call: Promise<void>): Promise<void> {
    const p = call.catch((err: unknown) => this.onError(err));
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }
}
