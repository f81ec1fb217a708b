// Intake checks of the public surface: what a command body and a node selection must satisfy
// before anything is stored. Each refusal is a CommandError and counts in the rejected metric.
import { nodeCommandSchema, type NodeCommandBody } from '../protocol/index.js';
import { checkGitPolicy } from './git-policy.js';
import type { CommandMetrics } from './metrics.js';
import type { CommandStore } from './store.js';
import { COMMAND_KINDS, CommandError, MAX_SELECTOR_STATUSES, type CommandKind, type CommandTransport, type NodeSelector } from './types.js';

/** A command body that passed intake. */
export interface ParsedCommand {
  body: NodeCommandBody;
  kind: CommandKind;
  potId: string | null;
}

export interface CommandIntakeOptions {
  store: Pick<CommandStore, 'knownNodes' | 'selectNodes'>;
  gateway: Pick<CommandTransport, 'onlineNodes'>;
  metrics: Pick<CommandMetrics, 'rejected'>;
  /** Compiled git URL allow-list; null refuses every InstallPot git_url. */
  gitAllowed: ((url: string) => boolean) | null;
}

export interface CommandIntake {
  /** `dryRun`: a check asked for by an operator, not a refused command (not counted as rejected). */
  parse(command: unknown, opts?: { dryRun?: boolean }): ParsedCommand;
  checkNodes(names: string[]): Promise<void>;
  /** The node names a broadcast selector stands for. */
  resolveSelector(selector: NodeSelector): Promise<string[]>;
}

function commandKind(body: NodeCommandBody): CommandKind {
  const key = Object.keys(body)[0];
  if (!(COMMAND_KINDS as readonly string[]).includes(key)) throw new CommandError(400, 'bad_request', `unknown command ${key}`);
  return key as CommandKind;
}

function commandPotId(body: NodeCommandBody): string | null {
  if ('InstallPot' in body) return body.InstallPot.pot_id;
  const value = Object.values(body)[0];
  return typeof value === 'string' ? value : null;
}

export function createCommandIntake(opts: CommandIntakeOptions): CommandIntake {
  const { store, gateway, metrics, gitAllowed } = opts;

  /** Validates a command body against the protocol schema and the git policy. */
  function parse(command: unknown, { dryRun = false } = {}): ParsedCommand {
    const parsed = nodeCommandSchema.safeParse(command);
    if (!parsed.success) {
      if (!dryRun) metrics.rejected('invalid');
      const detail = parsed.error.issues
        .map((i) => `${i.path.length ? `command.${i.path.join('.')}: ` : ''}${i.message}`)
        .join('; ');
      throw new CommandError(400, 'bad_request', detail || 'invalid command');
    }
    const body = parsed.data;
    try {
      checkGitPolicy(body, gitAllowed);
    } catch (err) {
      if (!dryRun) metrics.rejected('git_url');
      throw err;
    }
    return { body, kind: commandKind(body), potId: commandPotId(body) };
  }

  /** Every name must be a known, unrevoked node. */
  async function checkNodes(names: string[]): Promise<void> {
    const known = await store.knownNodes(names);
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length) {
      metrics.rejected('unknown_node');
      const shown = unknown.slice(0, 20).join(', ') + (unknown.length > 20 ? `, and ${unknown.length - 20} more` : '');
      throw new CommandError(404, 'unknown_node', `unknown node${unknown.length > 1 ? 's' : ''}: ${shown}`);
    }
    const revoked = names.filter((n) => known.get(n) === 'revoked');
    if (revoked.length) {
      metrics.rejected('revoked_node');
      throw new CommandError(409, 'node_revoked', `revoked node${revoked.length > 1 ? 's' : ''} cannot receive commands: ${revoked.slice(0, 20).join(', ')}`);
    }
  }

  async function resolveSelector(selector: NodeSelector): Promise<string[]> {
    if (Array.isArray(selector)) {
      const names = [...new Set(selector)];
      await checkNodes(names);
      return names;
    }
    if (selector === 'all') return store.selectNodes();
    if (selector === 'online') {
      const online = new Set(gateway.onlineNodes());
      return (await store.selectNodes()).filter((n) => online.has(n));
    }
    if (selector && typeof selector === 'object' && 'status' in selector) {
      const statuses = [...new Set(Array.isArray(selector.status) ? selector.status : [selector.status])];
      // Each status is one bound SQL parameter: the list is bounded, never passed through whole.
      if (statuses.length > MAX_SELECTOR_STATUSES) {
        throw new CommandError(400, 'bad_request', `nodes.status lists at most ${MAX_SELECTOR_STATUSES} statuses`);
      }
      return store.selectNodes(statuses);
    }
    throw new CommandError(400, 'bad_request', 'nodes must be a list of node names, "all", "online" or {"status": ...}');
  }

  return { parse, checkNodes, resolveSelector };
}
