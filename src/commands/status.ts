// Status tracking of sent commands: feeds what the gateway reports about nodes (registrations,
// pot status updates, node events) to the answer tracker (tracker.ts), and turns its verdicts and
// deadlines into settled rows. The tracker judges; this file wires it to the store and the gateway.
import type { FastifyBaseLogger } from 'fastify';
import type { NodeCommandBody } from '../protocol/index.js';
import type { CommandRow, CommandStore } from './store.js';
import { AnswerTracker, type Flight } from './tracker.js';
import {
  COMMAND_KINDS,
  type CommandKind,
  type CommandResult,
  type CommandTransport,
  type ReportedPot,
} from './types.js';

const DEFAULT_ANSWER_TIMEOUTS: Record<CommandKind, number> = {
  InstallPot: 120_000,
  Restart: 120_000,
  DeployPot: 30_000,
  StopPot: 30_000,
  RestartPot: 30_000,
  GetPotStatus: 30_000,
  GetPotInfo: 30_000,
  GetPotLogs: 30_000,
  GetPotMetrics: 30_000,
  GetInstalledPots: 30_000,
  UpdateConfig: 30_000,
};

/** How long a sent command of each kind waits for its answer (see CommandServiceOptions.answerTimeoutMs). */
export function answerTimeouts(option: number | Partial<Record<CommandKind, number>> | undefined): Record<CommandKind, number> {
  return typeof option === 'number'
    ? (Object.fromEntries(COMMAND_KINDS.map((k) => [k, option])) as Record<CommandKind, number>)
    : { ...DEFAULT_ANSWER_TIMEOUTS, ...(option ?? {}) };
}

export interface StatusTrackingOptions {
  store: CommandStore;
  gateway: CommandTransport;
  logger: FastifyBaseLogger;
  timeouts: Record<CommandKind, number>;
  quietPeriodMs: number;
  updateConfigGraceMs: number;
  /** True once the service is closing: outcomes arriving after that are left for the next start. */
  isClosed(): boolean;
  /** Makes the outcome of a sent command stick (compare-and-set on 'sent') with its side effects. */
  settleSent(id: string, status: 'succeeded' | 'failed', result: CommandResult): Promise<void>;
  /** A node (re)registered; its session is already known here. */
  onNodeOnline(node: string): void;
  /**
   * Session routing: a node's answers reach only the instance holding its session, so flights
   * follow the session: none are rebuilt at start, a node's flight is picked up from the store
   * when it registers here and dropped (not settled) when its session here ends.
   */
  routed?: boolean;
}

export interface StatusTracking {
  /**
   * Rebuilds the flights of 'sent' rows, then subscribes to the gateway. After a core restart that
   * is what makes late answers still count and deadlines still apply.
   */
  start(): Promise<void>;
  stopListening(): void;
  /** Tracks a command just written to its node's current session. */
  trackSent(row: CommandRow): void;
  /** Tracks a sent command whose session is unknown (recovered from the store). */
  trackRecovered(row: CommandRow): void;
  isTracking(node: string): boolean;
  /**
   * Fails the node's flight `id` as timed out now, resolving once that outcome is recorded; false
   * when no such flight is tracked.
   */
  timeoutNow(id: string, node: string): Promise<boolean>;
  forget(id: string, node: string): void;
  /** Drops every flight and its timers. */
  clearAll(): void;
}

export function createStatusTracking(opts: StatusTrackingOptions): StatusTracking {
  const { store, gateway, timeouts } = opts;
  const log = opts.logger;
  /** Session id of every online node: a flight remembers the session its command went out on. */
  const nodeIds = new Map<string, string>();
  /** Outcomes being recorded, by command id (timeoutNow waits for its own). */
  const settling = new Map<string, Promise<void>>();

  const tracker = new AnswerTracker(
    {
      // Called from timers and gateway events: a failure here must be logged, never thrown.
      settle: (f: Flight, status, result) => {
        if (opts.isClosed()) return;
        const done = opts
          .settleSent(f.id, status, result)
          .catch((err: unknown) => log.error({ err, command: f.id }, 'could not record a command outcome'))
          .finally(() => {
            if (settling.get(f.id) === done) settling.delete(f.id);
          });
        settling.set(f.id, done);
      },
      progress: (f: Flight, result) => {
        if (opts.isClosed()) return;
        store.progress(f.id, result).catch((err: unknown) => log.error({ err, command: f.id }, 'could not record command progress'));
      },
    },
    { quietPeriodMs: opts.quietPeriodMs, updateConfigGraceMs: opts.updateConfigGraceMs },
  );

  function track(row: CommandRow, nodeId: string | undefined): void {
    const body = JSON.parse(row.command) as NodeCommandBody;
    let pots: ReportedPot[] = [];
    if (row.result) {
      try {
        pots = (JSON.parse(row.result) as CommandResult).pots ?? [];
      } catch {
        pots = [];
      }
    }
    tracker.track(
      {
        id: row.id,
        node: row.nodeName,
        kind: row.kind as CommandKind,
        potId: row.potId,
        autoStart: 'InstallPot' in body ? body.InstallPot.auto_start : false,
        sentAt: row.sentAt ?? Date.now(),
        deadline: (row.sentAt ?? Date.now()) + timeouts[row.kind as CommandKind],
        nodeId,
      },
      pots,
    );
  }

  const onOnline = (n: { nodeName: string; nodeId: string }) => {
    nodeIds.set(n.nodeName, n.nodeId);
    if (opts.routed && !tracker.get(n.nodeName)) {
      // The node's in-flight command may have been sent by the instance that held it before: its
      // flight moves here with the session, read from the store before the registration is applied.
      store
        .inFlight(n.nodeName)
        .then((sent) => {
          if (nodeIds.get(n.nodeName) !== n.nodeId) return; // gone again meanwhile
          if (sent && !tracker.get(n.nodeName)) track(sent, undefined);
          tracker.online(n);
          opts.onNodeOnline(n.nodeName);
        })
        .catch((err: unknown) => log.error({ err, node: n.nodeName }, 'could not read the in-flight command of a node; the sweep will wake it'));
      return;
    }
    tracker.online(n);
    opts.onNodeOnline(n.nodeName);
  };
  const onOffline = (n: { nodeName: string }) => {
    nodeIds.delete(n.nodeName);
    if (opts.routed) {
      const f = tracker.get(n.nodeName);
      if (f) tracker.forget(f.id, n.nodeName);
    }
  };
  const onPotStatus = (u: { nodeName: string; potId: string; potType: string; status: string; message?: string }) =>
    tracker.potStatus(u);
  const onNodeEvent = (e: { nodeName: string; event: string; message?: string; description?: string }) =>
    tracker.nodeEvent(e);

  return {
    async start() {
      if (!opts.routed) for (const row of await store.pending()) if (row.status === 'sent') track(row, undefined);
      gateway.on('online', onOnline);
      gateway.on('offline', onOffline);
      gateway.on('potStatus', onPotStatus);
      gateway.on('nodeEvent', onNodeEvent);
    },
    stopListening() {
      gateway.off('online', onOnline);
      gateway.off('offline', onOffline);
      gateway.off('potStatus', onPotStatus);
      gateway.off('nodeEvent', onNodeEvent);
    },
    trackSent: (row) => track(row, nodeIds.get(row.nodeName)),
    trackRecovered: (row) => track(row, undefined),
    isTracking: (node) => tracker.get(node) !== undefined,
    timeoutNow: async (id, node) => {
      if (!tracker.timeoutNow(id, node)) return false;
      await settling.get(id);
      return true;
    },
    forget: (id, node) => tracker.forget(id, node),
    clearAll: () => tracker.clearAll(),
  };
}
