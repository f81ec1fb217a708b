export { createCommandService, REGISTRATION_REQUESTER } from './service.js';
export type { CommandService, CommandServiceOptions, FinishedCommand, SendOptions, ListQuery, BroadcastResult } from './service.js';
export { commandRoutes } from './routes.js';
export type { CommandRoutesOptions } from './routes.js';
export { CommandError, COMMAND_KINDS, COMMAND_STATUSES } from './types.js';
export type {
  CommandKind,
  CommandStatus,
  CommandTransport,
  CommandView,
  CommandResult,
  NodeSelector,
  ReportedPot,
} from './types.js';
export { parseGitUrlRule } from './git-policy.js';
export type { GitUrlRule } from './git-policy.js';
export { SqliteCommandStore } from './sqlite-store.js';
export { PgCommandStore } from './pg-store.js';
export type { CommandStore, CommandRow, NewCommand, ListFilter } from './store.js';
