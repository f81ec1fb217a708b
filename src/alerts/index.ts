// Alerts: rules over node, pot, command, attack-event and output-backlog activity, delivered to
// HMAC-signed webhooks, Slack-compatible webhooks, Telegram bots and e-mail (SMTP + STARTTLS) with
// de-duplication, quiet periods, bounded queues and bounded retries. app.ts feeds it.
export { AlertService, AlertsError, maskSecret } from './service.js';
export type { AlertServiceOptions, RuleInput, ChannelInput } from './service.js';
export { SqliteAlertStore } from './sqlite-store.js';
export { PgAlertStore } from './pg-store.js';
export type { AlertStore } from './store.js';
export { alertRoutes } from './routes.js';
export { webhookSignature, slackPayload, alertText, DeliveryError } from './channels/index.js';
export type { ChannelStats, DeliverFn } from './dispatcher.js';
export type { AttackFact, AlertSignal, CommandFact, NodeOfflineFact, NodeOnlineFact, OutputBacklogSignal, PotStatusFact } from './sources.js';
export { RULE_KINDS, CHANNEL_TYPES } from './types.js';
export type { Alert, AlertChannel, AlertRule, ChannelType, RuleKind } from './types.js';
