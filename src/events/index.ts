// Public surface of the events domain: ingest of attack events from the node gateway, batched
// persistence with retention, hpfeeds republishing (incl. classic cowrie.sessions and dionaea
// channels), queries, stats, the live stream and the /api/v1 routes.
export { createEventService } from './service.js';
export { BUILTIN_POT_TYPES, OTHER_LABEL } from './labels.js';
export type { EventService, EventServiceOptions, CommittedEvent, RepublishedEvent } from './service.js';
export type { CowrieSessionState, CowrieSessionUpdate, CowrieTakenSession } from './cowrie-shared.js';
export type { CowrieTextState, CowrieTextEntry } from './cowrie-text-shared.js';
export type { OpenTextSession } from './cowrie-text-sessions.js';
export { eventRoutes, eventJsonSchema } from './routes.js';
export type { EventRoutesOptions } from './routes.js';
export {
  nodeAuthkeyFor,
  resolveChannels,
  channelsForPotType,
  CLASSIC_DIONAEA_CHANNELS,
  DEFAULT_AUTHKEY_POT_TYPES,
} from './channels.js';
export type { ChannelOptions, NodeAuthkey } from './channels.js';
export type { CowrieAggregatorOptions, CowrieSessionSummary } from './cowrie.js';
export type { BatchOptions } from './writer.js';
export { SqliteEventStore, eventQueryModules } from './sqlite-store.js';
export type { SqliteEventStoreOptions } from './sqlite-store.js';
export { PgEventStore, PgEventWriter } from './pg-store.js';
export type { PgEventStoreOptions } from './pg-store.js';
export type { BatchNotes, EventStore, NewEvent, NotedBatch, StoredEvent, RetentionStep } from './store.js';
export type { RetentionOptions } from './retention.js';
export type { StreamOptions, StreamSocket } from './stream.js';
export type { EventListQuery, EventPage, EventStats, EventStatsQuery, StatsBucket } from './queries.js';
export { STATUS_MESSAGE_EVENT_TYPE, UNKNOWN_POT_TYPE, parseIsoTimestamp } from './normalize.js';
export { parseCowrieText } from './cowrie-text.js';
export type { CowrieTextFields } from './cowrie-text.js';
export { CowrieTextSessions, COWRIE_UNPARSED_EVENT_TYPE } from './cowrie-text-sessions.js';
export type { CowrieTextSessionOptions, CowrieTextEvent, CowrieTextOutcome } from './cowrie-text-sessions.js';
export type {
  AttackEvent,
  AttackEventSource,
  CowriePotLookup,
  EventPublisher,
  EventFilter,
  EventJson,
  PotTypeLookup,
  PotEventMessage,
  PotStatusEventMessage,
  PotStatusNotice,
} from './types.js';
