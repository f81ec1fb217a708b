// The alerts service: rules and channels (validated, stored, cached), the observation entry points
// app.ts wires to the other domains, de-duplication and quiet periods, and hand-off to the
// dispatcher. Nothing here waits on a receiver: observing is synchronous and cheap (rules and
// channels are kept in memory: load() reads them, every change made here reads them again).
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { deliver as realDeliver } from './channels/index.js';
import { AlertDispatcher, type ChannelStats, type DeliverFn } from './dispatcher.js';
import * as match from './rules.js';
import type { AttackFact, AlertSignal, CommandFact, NodeOfflineFact, NodeOnlineFact, PotStatusFact } from './sources.js';
import type { AlertStore } from './store.js';
import type { Alert, AlertChannel, AlertRule, RuleKind } from './types.js';
import { AlertsError, ruleFields, validChannel, validRule, type ChannelInput, type RuleInput } from './validation.js';

export { AlertsError } from './validation.js';
export type { ChannelInput, RuleInput } from './validation.js';

export interface AlertServiceOptions {
  store: AlertStore;
  logger: FastifyBaseLogger;
  registry: Registry;
  /** Per delivery attempt. Default 10 000 ms. */
  sendTimeoutMs?: number;
  /** Attempts per alert and channel. Default 4. */
  maxAttempts?: number;
  /** First retry delay, doubled each time. Default 2000 ms. */
  retryDelayMs?: number;
  /** Alerts waiting per channel. Default 1000. */
  queueMax?: number;
  /** Replaceable for tests of the service alone; the default sends for real. */
  deliver?: DeliverFn;
  now?: () => number;
  /**
   * Reads the rules and channels again this often (ms), for changes made by other cores sharing
   * the database. Default 0: only after changes made through this service.
   */
  reloadEveryMs?: number;
}

/** Entries of the dedup map are pruned once it holds this many. */
const DEDUP_PRUNE_AT = 10_000;

/** A secret as the API shows it: never the value; the last 4 characters of a long one. */
export function maskSecret(v: string): string {
  return v.length >= 16 ? `****${v.slice(-4)}` : '****';
}

export class AlertService {
  private rules: AlertRule[] = [];
  private readonly channels = new Map<string, AlertChannel>();
  private readonly lastSent = new Map<string, number>();
  private readonly quietUntil = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();
  private readonly windows = new Map<string, match.AttackerWindows>();
  private readonly dispatcher: AlertDispatcher;
  private readonly outcomes: Counter<'kind' | 'outcome'>;
  private readonly now: () => number;
  private eventRules = 0;
  /** Changes run one at a time: each validates against what the one before it stored. */
  private changing: Promise<unknown> = Promise.resolve();
  private reloadTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: AlertServiceOptions) {
    this.now = opts.now ?? Date.now;
    this.dispatcher = new AlertDispatcher({
      logger: opts.logger,
      registry: opts.registry,
      deliver: opts.deliver ?? realDeliver,
      channel: (id) => this.channels.get(id),
      timeoutMs: opts.sendTimeoutMs ?? 10_000,
      maxAttempts: opts.maxAttempts ?? 4,
      retryDelayMs: opts.retryDelayMs ?? 2000,
      queueMax: opts.queueMax ?? 1000,
    });
    this.outcomes = new Counter({
      name: 'apiary_alerts_total',
      help: 'Alerts per rule kind (outcome: sent | deduplicated | quiet: held back by the quiet period)',
      labelNames: ['kind', 'outcome'],
      registers: [opts.registry],
    });
  }

  /** Reads the rules and channels from the store; call once before use (rejects when the store fails). */
  async load(): Promise<void> {
    await this.reload();
    const every = this.opts.reloadEveryMs ?? 0;
    if (every > 0 && this.reloadTimer === undefined) {
      this.reloadTimer = setInterval(() => {
        this.reload().catch((err: unknown) => this.opts.logger.warn({ err }, 'could not read the alert rules again; keeping the ones in memory'));
      }, every);
      this.reloadTimer.unref();
    }
  }

  private async reload(): Promise<void> {
    const [rules, channels] = await Promise.all([this.opts.store.listRules(), this.opts.store.listChannels()]);
    this.rules = rules;
    this.eventRules = this.rules.filter((r) => r.enabled && match.EVENT_KINDS.has(r.kind)).length;
    this.channels.clear();
    for (const c of channels) this.channels.set(c.id, c);
    for (const id of this.windows.keys()) if (!this.rules.some((r) => r.id === id)) this.windows.delete(id);
  }

  private exclusive<T>(change: () => Promise<T>): Promise<T> {
    const run = this.changing.then(change);
    this.changing = run.catch(() => undefined);
    return run;
  }

  // ------------------------------------------------------------ observations

  nodeOnline(f: NodeOnlineFact): void {
    this.each('node_online', (r) => match.nodeOnline(r, f));
  }

  nodeOffline(f: NodeOfflineFact): void {
    this.each('node_offline', (r) => match.nodeOffline(r, f));
  }

  potStatus(f: PotStatusFact): void {
    if (f.status === 'Failed') this.each('pot_failed', (r) => match.potFailed(r, f));
  }

  commandFinished(f: CommandFact): void {
    if (f.status !== 'succeeded' && f.status !== 'cancelled') this.each('command_failed', (r) => match.commandFailed(r, f));
  }

  /** True when some enabled rule reads committed events (so the caller may skip normalising them). */
  get wantsEvents(): boolean {
    return this.eventRules > 0;
  }

  eventsCommitted(facts: readonly AttackFact[]): void {
    if (!this.wantsEvents) return;
    for (const f of facts) {
      if (f.login === 'success') this.each('login_success', (r) => match.loginSuccess(r, f));
      if (match.isDownload(f)) this.each('file_download', (r) => match.fileDownload(r, f));
      if (f.srcIp !== null) {
        this.each('attacker_events', (r) => {
          const p = r.params as { events: number; minutes: number };
          let w = this.windows.get(r.id);
          if (!w) this.windows.set(r.id, (w = new match.AttackerWindows()));
          return w.observe(f.srcIp!, f.receivedAt, p.events, p.minutes) ? match.attackerCandidate(f, p.events, p.minutes) : undefined;
        });
      }
    }
  }

  /** Generic entry point for other domains (the outputs domain: backlog above a bound). */
  signal(s: AlertSignal): void {
    if (s.kind === 'output_backlog') this.each('output_backlog', (r) => match.outputBacklog(r, s));
  }

  private each(kind: RuleKind, candidate: (rule: AlertRule) => match.Candidate | undefined): void {
    for (const rule of this.rules) {
      if (rule.kind !== kind || !rule.enabled) continue;
      let c: match.Candidate | undefined;
      try {
        c = candidate(rule);
      } catch (err) {
        this.opts.logger.error({ err, rule: rule.id }, 'alert rule evaluation failed');
        continue;
      }
      if (c) this.fire(rule, c);
    }
  }

  private fire(rule: AlertRule, c: match.Candidate): void {
    const now = this.now();
    const key = `${rule.id}\u0000${c.subject}`;
    const last = this.lastSent.get(key);
    if (last !== undefined && now - last < rule.dedupSeconds * 1000) {
      this.outcomes.inc({ kind: rule.kind, outcome: 'deduplicated' });
      return;
    }
    if ((this.quietUntil.get(rule.id) ?? 0) > now) {
      this.suppressed.set(rule.id, (this.suppressed.get(rule.id) ?? 0) + 1);
      this.outcomes.inc({ kind: rule.kind, outcome: 'quiet' });
      return;
    }
    if (this.lastSent.size >= DEDUP_PRUNE_AT) this.pruneDedup(now);
    this.lastSent.set(key, now);
    if (rule.quietSeconds > 0) this.quietUntil.set(rule.id, now + rule.quietSeconds * 1000);
    const alert: Alert = {
      id: randomUUID(),
      rule: { id: rule.id, name: rule.name, kind: rule.kind },
      subject: c.subject,
      title: c.title,
      text: c.text,
      at: new Date(now).toISOString(),
      details: c.details,
      suppressed: this.suppressed.get(rule.id) ?? 0,
    };
    this.suppressed.delete(rule.id);
    this.outcomes.inc({ kind: rule.kind, outcome: 'sent' });
    for (const id of rule.channels) {
      const channel = this.channels.get(id);
      if (channel?.enabled) this.dispatcher.enqueue(channel, alert);
    }
  }

  private pruneDedup(now: number): void {
    const windowOf = new Map(this.rules.map((r) => [r.id, r.dedupSeconds * 1000]));
    for (const [key, at] of this.lastSent) {
      const ruleId = key.slice(0, key.indexOf('\u0000'));
      if (now - at >= (windowOf.get(ruleId) ?? 0)) this.lastSent.delete(key);
    }
    // Still full (very many live subjects): forget the oldest half rather than grow without bound.
    if (this.lastSent.size >= DEDUP_PRUNE_AT) {
      let drop = Math.floor(this.lastSent.size / 2);
      for (const key of this.lastSent.keys()) {
        if (drop-- <= 0) break;
        this.lastSent.delete(key);
      }
    }
  }

  // ------------------------------------------------------------ rules

  listRules(): AlertRule[] {
    return this.rules.map((r) => ({ ...r }));
  }

  async getRule(id: string): Promise<AlertRule> {
    const r = await this.opts.store.getRule(id);
    if (!r) throw new AlertsError(404, 'not_found', `no alert rule ${id}`);
    return r;
  }

  createRule(input: RuleInput): Promise<AlertRule> {
    return this.exclusive(async () => {
      const now = this.now();
      const rule = validRule({ id: randomUUID(), createdAt: now, updatedAt: now, ...ruleFields(input) }, this.rules, this.channels);
      await this.save(() => this.opts.store.putRule(rule));
      return rule;
    });
  }

  updateRule(id: string, patch: Partial<RuleInput>): Promise<AlertRule> {
    return this.exclusive(() => this.changeRule(id, patch));
  }

  private async changeRule(id: string, patch: Partial<RuleInput>): Promise<AlertRule> {
    const current = await this.getRule(id);
    const kind = patch.kind ?? current.kind;
    const rule = validRule({
      ...current,
      ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)),
      // params given replace the old ones; a new kind without params starts from none
      params: patch.params === undefined ? (kind === current.kind ? current.params : {}) : patch.params,
      kind,
      updatedAt: this.now(),
    } as AlertRule, this.rules, this.channels);
    await this.save(() => this.opts.store.putRule(rule));
    return rule;
  }

  deleteRule(id: string): Promise<void> {
    return this.exclusive(async () => {
      if (!(await this.opts.store.deleteRule(id))) throw new AlertsError(404, 'not_found', `no alert rule ${id}`);
      await this.reload();
    });
  }

  // ------------------------------------------------------------ channels

  /** Channels as the API shows them: secrets masked, delivery stats attached. */
  listChannels(): (Omit<AlertChannel, 'secrets'> & { secrets: Record<string, string>; stats: ChannelStats })[] {
    return [...this.channels.values()].map((c) => this.channelView(c));
  }

  channelView(c: AlertChannel) {
    return { ...c, secrets: Object.fromEntries(Object.entries(c.secrets).map(([k, v]) => [k, maskSecret(v)])), stats: this.dispatcher.stats(c.id) };
  }

  getChannel(id: string): AlertChannel {
    const c = this.channels.get(id);
    if (!c) throw new AlertsError(404, 'not_found', `no alert channel ${id}`);
    return c;
  }

  createChannel(input: ChannelInput): Promise<AlertChannel> {
    return this.exclusive(() => this.addChannel(input));
  }

  private async addChannel(input: ChannelInput): Promise<AlertChannel> {
    const now = this.now();
    const channel = validChannel({
      id: randomUUID(),
      name: input.name,
      type: input.type,
      config: input.config ?? {},
      secrets: (input.secrets ?? {}) as Record<string, string>,
      enabled: input.enabled ?? true,
      createdAt: now,
      updatedAt: now,
    }, this.channels);
    await this.save(() => this.opts.store.putChannel(channel));
    return channel;
  }

  /** config is replaced when given; secrets are merged key by key (omit a key to keep its value). */
  updateChannel(id: string, patch: Partial<Omit<ChannelInput, 'type'>>): Promise<AlertChannel> {
    return this.exclusive(() => this.changeChannel(id, patch));
  }

  private async changeChannel(id: string, patch: Partial<Omit<ChannelInput, 'type'>>): Promise<AlertChannel> {
    const current = this.getChannel(id);
    const channel = validChannel({
      ...current,
      name: patch.name ?? current.name,
      config: patch.config ?? current.config,
      secrets: { ...current.secrets, ...((patch.secrets ?? {}) as Record<string, string>) },
      enabled: patch.enabled ?? current.enabled,
      updatedAt: this.now(),
    }, this.channels);
    await this.save(() => this.opts.store.putChannel(channel));
    return channel;
  }

  deleteChannel(id: string): Promise<void> {
    return this.exclusive(async () => {
      this.getChannel(id);
      const users = this.rules.filter((r) => r.channels.includes(id)).map((r) => r.name);
      if (users.length > 0) throw new AlertsError(409, 'conflict', `alert channel ${id} is used by the rule(s) ${users.join(', ')}`);
      await this.opts.store.deleteChannel(id);
      this.dispatcher.forget(id);
      await this.reload();
    });
  }

  /** Sends a sample alert to the channel now (one attempt) and says how it went. */
  async testChannel(id: string): Promise<{ delivered: boolean; error?: string }> {
    const channel = this.getChannel(id);
    const alert: Alert = {
      id: randomUUID(),
      rule: { id: 'test', name: 'test', kind: 'node_offline' },
      subject: 'sample',
      title: 'Sample alert from apiary',
      text: `If you can read this, the ${channel.type} channel ${channel.name} works.`,
      at: new Date(this.now()).toISOString(),
      details: { channel: channel.name },
      suppressed: 0,
      test: true,
    };
    return this.dispatcher.sendNow(channel, alert);
  }

  private async save(write: () => Promise<void>): Promise<void> {
    await write();
    await this.reload();
  }

  close(): void {
    if (this.reloadTimer !== undefined) clearInterval(this.reloadTimer);
    this.dispatcher.close();
  }
}
