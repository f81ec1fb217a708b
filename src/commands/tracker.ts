// Works out what happened to a sent command from what its node says afterwards. HoneyBee has no
// correlation id, so each node has at most one command in flight (the queue guarantees it) and
// every answer-shaped message from that node while it is in flight is attributed to it.
import type { CommandKind, CommandResult, ReportedPot } from './types.js';

export interface Flight {
  id: string;
  node: string;
  kind: CommandKind;
  potId: string | null;
  /** InstallPot only: whether the node starts the pot after installing it. */
  autoStart: boolean;
  sentAt: number;
  deadline: number;
  /** Session the command went out on; unknown for commands recovered after a core restart. */
  nodeId: string | undefined;
  pots: Map<string, ReportedPot>;
  lastStatus?: { status: string; message?: string };
  timer?: NodeJS.Timeout;
  quietTimer?: NodeJS.Timeout;
}

export interface TrackerHooks {
  /** Final outcome; the service makes it stick (compare-and-set) and forgets the flight. */
  settle(flight: Flight, status: 'succeeded' | 'failed', result: CommandResult): void;
  progress(flight: Flight, result: CommandResult): void;
}

export interface TrackerTiming {
  /** GetInstalledPots: answer complete after this long without another PotStatusUpdate. */
  quietPeriodMs: number;
  /** UpdateConfig: succeeded when no NodeEvent Error arrives within this long. */
  updateConfigGraceMs: number;
}

type Verdict = 'succeeded' | 'failed' | 'progress' | 'ignore';

/** What one PotStatusUpdate for the command's own pot means for it. */
export function judgePotStatus(kind: CommandKind, autoStart: boolean, status: string): Verdict {
  switch (kind) {
    case 'InstallPot':
      if (status === 'Failed') return 'failed';
      if (status === 'Running') return 'succeeded';
      // Without auto_start the node stops at "Stopped - Installation complete".
      if (status === 'Stopped' && !autoStart) return 'succeeded';
      return 'progress';
    case 'DeployPot':
    case 'RestartPot':
      if (status === 'Running') return 'succeeded';
      if (status === 'Failed') return 'failed';
      return 'progress';
    case 'StopPot':
      if (status === 'Stopped') return 'succeeded';
      if (status === 'Failed') return 'failed';
      return 'progress';
    case 'GetPotStatus':
    case 'GetPotInfo':
    case 'GetPotLogs':
    case 'GetPotMetrics':
      // The query is answered whatever state the pot is in.
      return 'succeeded';
    default:
      return 'ignore';
  }
}

export class AnswerTracker {
  private readonly byNode = new Map<string, Flight>();

  constructor(
    private readonly hooks: TrackerHooks,
    private readonly timing: TrackerTiming,
  ) {}

  get size(): number {
    return this.byNode.size;
  }

  get(node: string): Flight | undefined {
    return this.byNode.get(node);
  }

  /** `pots`: GetInstalledPots answers collected before a core restart. */
  track(flight: Omit<Flight, 'pots' | 'timer' | 'quietTimer'>, pots: ReportedPot[] = []): void {
    const prev = this.byNode.get(flight.node);
    if (prev && prev.id === flight.id) return;
    if (prev) this.clear(prev);
    const f: Flight = { ...flight, pots: new Map(pots.map((p) => [p.potId, p])) };
    this.byNode.set(f.node, f);
    f.timer = setTimeout(() => this.expire(f), Math.max(0, f.deadline - Date.now()));
    f.timer.unref();
    if (f.kind === 'GetInstalledPots') this.armQuiet(f);
    if (f.kind === 'UpdateConfig') {
      const wait = Math.max(0, f.sentAt + this.timing.updateConfigGraceMs - Date.now());
      f.quietTimer = setTimeout(() => this.done(f, 'succeeded', { message: 'no error reported within the grace period' }), wait);
      f.quietTimer.unref();
    }
  }

  forget(id: string, node: string): void {
    const f = this.byNode.get(node);
    if (f && f.id === id) {
      this.clear(f);
      this.byNode.delete(node);
    }
  }

  clearAll(): void {
    for (const f of this.byNode.values()) this.clear(f);
    this.byNode.clear();
  }

  potStatus(u: { nodeName: string; potId: string; potType: string; status: string; message?: string }): void {
    const f = this.byNode.get(u.nodeName);
    if (!f || u.status === '') return;
    if (f.kind === 'GetInstalledPots') {
      f.pots.set(u.potId, { potId: u.potId, potType: u.potType, status: u.status, ...(u.message ? { message: u.message } : {}) });
      this.armQuiet(f);
      this.hooks.progress(f, { pots: [...f.pots.values()] });
      return;
    }
    if (f.potId === null || u.potId !== f.potId) return;
    const verdict = judgePotStatus(f.kind, f.autoStart, u.status);
    const result: CommandResult = { potStatus: u.status, ...(u.message ? { message: u.message } : {}) };
    if (verdict === 'succeeded') this.done(f, 'succeeded', result);
    else if (verdict === 'failed') this.done(f, 'failed', { ...result, reason: 'pot_failed' });
    else if (verdict === 'progress') {
      f.lastStatus = { status: u.status, message: u.message };
      this.hooks.progress(f, result);
    }
  }

  nodeEvent(e: { nodeName: string; event: string; message?: string; description?: string }): void {
    const f = this.byNode.get(e.nodeName);
    if (!f) return;
    if (e.event === 'Started' && f.kind === 'Restart') {
      // The real node restarts its pots in-process and announces Started; it does not re-register.
      this.done(f, 'succeeded', { message: e.message || 'node reported Started after the restart' });
      return;
    }
    if (e.event !== 'Error') return;
    const message = e.message || e.description || 'node reported an error';
    this.done(f, 'failed', { reason: 'node_error', message });
  }

  /** A node registered (again). */
  online(n: { nodeName: string; nodeId: string }): void {
    const f = this.byNode.get(n.nodeName);
    if (!f) return;
    if (f.kind === 'Restart') {
      this.done(f, 'succeeded', { message: 'node re-registered after the restart' });
      return;
    }
    // A new node_id means a new node process: whatever it was doing for this command died with
    // the old one and no answer will come. The same node_id is a reconnect of the same process,
    // which keeps working and reports through the new session.
    if (f.nodeId !== undefined && f.nodeId !== n.nodeId) {
      this.done(f, 'failed', {
        reason: 'node_restarted',
        message: 'the node process restarted while the command was in flight; its outcome is unknown',
      });
    } else if (f.nodeId === undefined) {
      f.nodeId = n.nodeId;
    }
  }

  /** Applies the deadline now (the job noticed it first); false when the command is not tracked. */
  timeoutNow(id: string, node: string): boolean {
    const f = this.byNode.get(node);
    if (!f || f.id !== id) return false;
    this.expire(f);
    return true;
  }

  private expire(f: Flight): void {
    if (f.kind === 'GetInstalledPots') {
      this.done(f, 'succeeded', { pots: [...f.pots.values()] });
      return;
    }
    const last = f.lastStatus
      ? ` (last pot status ${f.lastStatus.status}${f.lastStatus.message ? `: ${f.lastStatus.message}` : ''})`
      : '';
    this.done(f, 'failed', {
      reason: 'timeout',
      message: `no answer from the node within ${Math.round((f.deadline - f.sentAt) / 1000)} s${last}`,
      ...(f.lastStatus ? { potStatus: f.lastStatus.status } : {}),
    });
  }

  private armQuiet(f: Flight): void {
    if (f.quietTimer) clearTimeout(f.quietTimer);
    f.quietTimer = setTimeout(() => this.done(f, 'succeeded', { pots: [...f.pots.values()] }), this.timing.quietPeriodMs);
    f.quietTimer.unref();
  }

  private done(f: Flight, status: 'succeeded' | 'failed', result: CommandResult): void {
    if (this.byNode.get(f.node) !== f) return;
    this.clear(f);
    this.byNode.delete(f.node);
    this.hooks.settle(f, status, result);
  }

  private clear(f: Flight): void {
    if (f.timer) clearTimeout(f.timer);
    if (f.quietTimer) clearTimeout(f.quietTimer);
    f.timer = undefined;
    f.quietTimer = undefined;
  }
}
