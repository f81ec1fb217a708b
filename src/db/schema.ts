// SQLite schema of the core. One file so that `drizzle-kit generate` sees every table and
// writes migrations into drizzle/. Timestamps are unix epoch milliseconds (integer) unless noted.
import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/** hpfeeds credentials: one row per ident, same shape as the reference broker's sqlite store. */
export const authkeys = sqliteTable('authkeys', {
  ident: text('ident').primaryKey(),
  owner: text('owner').notNull().default(''),
  secret: text('secret').notNull(),
  /** JSON array of channel names the ident may publish to. */
  pubchans: text('pubchans').notNull().default('[]'),
  /** JSON array of channel names the ident may subscribe to. */
  subchans: text('subchans').notNull().default('[]'),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
});

/**
 * HoneyBee nodes, keyed by node_name (the identity that survives restarts; node_id changes at every
 * node process start and is kept as a decimal string because it is a u64).
 */
export const nodes = sqliteTable(
  'nodes',
  {
    name: text('name').primaryKey(),
    nodeId: text('node_id'),
    nodeType: text('node_type'),
    address: text('address'),
    port: integer('port'),
    /** Last NodeStatusUpdate status, or 'Offline' when no session is live. */
    status: text('status').notNull().default('Offline'),
    /** pending | approved | enrolled | revoked */
    enrollment: text('enrollment').notNull(),
    /** base32 TOTP secret (32 chars); null while the node is pending or awaiting its first key. */
    totpSecret: text('totp_secret'),
    /** TOTP time step of the last accepted code: a code is accepted once (RFC 6238 one-time use). */
    lastTotpStep: integer('last_totp_step'),
    /** Remote address of the current or last session (the socket peer, not the advertised one). */
    remoteAddress: text('remote_address'),
    transport: text('transport'),
    connectedAt: integer('connected_at'),
    lastSeenAt: integer('last_seen_at'),
    disconnectedAt: integer('disconnected_at'),
    /** Why the last session ended: drop, disconnect, replaced, stale, revoked, shutdown. */
    disconnectReason: text('disconnect_reason'),
    /** Address key (IPv4, or IPv6 /64) a pending node first came from: pending caps count on it. */
    pendingSource: text('pending_source'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [index('nodes_enrollment_idx').on(t.enrollment), index('nodes_pending_source_idx').on(t.pendingSource)],
);

/**
 * Registrations of names the core has no node row for (unknown in provisioned mode, refused over
 * the pending caps, bad names), aggregated per source address instead of one node_log row each.
 */
export const unknownRegistrations = sqliteTable(
  'unknown_registrations',
  {
    /** IPv4 address, or IPv6 /64 prefix. */
    addressKey: text('address_key').primaryKey(),
    /** Exact address of the latest attempt. */
    lastAddress: text('last_address').notNull(),
    attempts: integer('attempts').notNull(),
    firstSeenAt: integer('first_seen_at').notNull(),
    lastSeenAt: integer('last_seen_at').notNull(),
    /** JSON array: the latest distinct names tried (a bounded sample, newest last). */
    lastNames: text('last_names').notNull().default('[]'),
    /** Rejection reason of the latest attempt. */
    lastResult: text('last_result').notNull(),
  },
  (t) => [index('unknown_registrations_last_seen_idx').on(t.lastSeenAt)],
);

/** Honeypots per node, as last reported by PotStatusUpdate. */
export const pots = sqliteTable(
  'pots',
  {
    nodeName: text('node_name')
      .notNull()
      .references(() => nodes.name, { onDelete: 'cascade' }),
    potId: text('pot_id').notNull(),
    potType: text('pot_type').notNull().default(''),
    status: text('status').notNull(),
    lastMessage: text('last_message'),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.nodeName, t.potId] })],
);

/** Node lifecycle log: registrations, rejections, NodeEvent, NodeDrop, disconnects. */
export const nodeLog = sqliteTable(
  'node_log',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    nodeName: text('node_name').notNull(),
    kind: text('kind').notNull(),
    message: text('message'),
    at: integer('at').notNull(),
  },
  (t) => [index('node_log_node_at_idx').on(t.nodeName, t.at)],
);

/** Operator commands: the status record of each BullMQ job (job id = command id). */
export const commands = sqliteTable(
  'commands',
  {
    id: text('id').primaryKey(),
    /** Per-node delivery order: monotonically increasing across the table. */
    seq: integer('seq').notNull(),
    nodeName: text('node_name').notNull(),
    /** NodeCommand variant name, e.g. InstallPot, DeployPot, Restart. */
    kind: text('kind').notNull(),
    potId: text('pot_id'),
    /** JSON of the command body as sent to the node. */
    command: text('command').notNull(),
    /** queued | sent | succeeded | failed | expired | cancelled */
    status: text('status').notNull(),
    result: text('result'),
    /** Broadcast group id when the command was sent to a selection of nodes. */
    batchId: text('batch_id'),
    requestedBy: text('requested_by'),
    createdAt: integer('created_at').notNull(),
    sentAt: integer('sent_at'),
    finishedAt: integer('finished_at'),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [
    index('commands_node_seq_idx').on(t.nodeName, t.seq),
    // Delivery checks ask "is anything of this node sent / queued before seq N?" on every job run;
    // without status in the key they would walk the node's whole command history.
    index('commands_node_status_seq_idx').on(t.nodeName, t.status, t.seq),
    index('commands_status_idx').on(t.status),
    index('commands_batch_idx').on(t.batchId),
  ],
);

/** Attack events normalised from PotEvent and event-shaped PotStatusUpdate. */
export const events = sqliteTable(
  'events',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    nodeName: text('node_name').notNull(),
    potId: text('pot_id').notNull(),
    potType: text('pot_type').notNull(),
    eventType: text('event_type').notNull(),
    /** Event time as reported by the node (ISO 8601 converted to epoch ms). */
    timestamp: integer('timestamp').notNull(),
    /** JSON object. */
    data: text('data').notNull(),
    receivedAt: integer('received_at').notNull(),
  },
  // Every secondary index costs the writer on each insert: its hot leaf pages are rewritten into the
  // WAL at every commit, whatever the batch size. received_at (retention) has a monotonic key, so one
  // hot leaf. The list filters by node and by event type use the side tables below instead of
  // (column, id) indexes here: those dirtied ~15 leaves per commit (one per node and type), about
  // 5 µs per event at batch 100 (migration 0013). A pot filter goes through the node's side table
  // (the console always sends the node with it). Counts over time are the analytics rollups' job:
  // /events/stats with a node or type filter scans the time range.
  (t) => [index('events_received_idx').on(t.receivedAt)],
);

// Side index tables of events (src/events/side-index.ts): (node_name, id) and (event_type, id) for
// the filtered pages of GET /events, filled by the events writer in bulk, sorted, every few thousand
// rows instead of at every commit, so each of their leaves goes into the WAL once per catch-up (an
// index on events would write its hot leaves at each commit). events_side_state.indexed_through is
// the watermark: every event with id <= it has its side rows; newer ones (the tail) are found by
// scanning events by id. The migration creates the two tables WITHOUT ROWID (drizzle cannot say
// so): the key is the whole row. Rows of deleted events are removed by retention; a leftover one is
// harmless (reads join events by id).

/** An event's node, in (node, id) order. */
export const eventsByNode = sqliteTable(
  'events_by_node',
  {
    nodeName: text('node_name').notNull(),
    id: integer('id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.nodeName, t.id] })],
);

/** An event's type, in (type, id) order. */
export const eventsByType = sqliteTable(
  'events_by_type',
  {
    eventType: text('event_type').notNull(),
    id: integer('id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.eventType, t.id] })],
);

/** Progress of the side tables; key 'indexed_through': the highest events.id they cover. */
export const eventsSideState = sqliteTable('events_side_state', {
  key: text('key').primaryKey(),
  value: integer('value').notNull(),
});

/** Operator API tokens. Only a SHA-256 of the token is stored. */
export const apiTokens = sqliteTable('api_tokens', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** admin | operator | viewer */
  role: text('role').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  createdAt: integer('created_at').notNull(),
  lastUsedAt: integer('last_used_at'),
  revokedAt: integer('revoked_at'),
});

// Attack analytics (src/analytics): rollups, attackers and sessions maintained at ingest, in the
// events writer's transaction. The migration creates the rollup tables WITHOUT ROWID (drizzle cannot
// say so): their primary key is the whole lookup path, so they are clustered on it.

/** Counts per (dimension, hour bucket, node, pot type, key). dim numbers: src/analytics/dimensions.ts. */
export const attackRollupHour = sqliteTable(
  'attack_rollup_hour',
  {
    dim: integer('dim').notNull(),
    /** epoch ms / 3 600 000 */
    bucket: integer('bucket').notNull(),
    node: text('node').notNull(),
    potType: text('pot_type').notNull(),
    key: text('key').notNull(),
    count: integer('count').notNull(),
  },
  // key_idx: one key's buckets (timelines split by a dimension) without scanning the window's rows.
  (t) => [primaryKey({ columns: [t.dim, t.bucket, t.node, t.potType, t.key] }), index('attack_rollup_hour_key_idx').on(t.dim, t.key, t.bucket)],
);

/** Same as attack_rollup_hour with day buckets (epoch ms / 86 400 000), for long windows. */
export const attackRollupDay = sqliteTable(
  'attack_rollup_day',
  {
    dim: integer('dim').notNull(),
    bucket: integer('bucket').notNull(),
    node: text('node').notNull(),
    potType: text('pot_type').notNull(),
    key: text('key').notNull(),
    count: integer('count').notNull(),
  },
  // key_idx: one key's buckets (timelines split by a dimension) without scanning the window's rows.
  (t) => [primaryKey({ columns: [t.dim, t.bucket, t.node, t.potType, t.key] }), index('attack_rollup_day_key_idx').on(t.dim, t.key, t.bucket)],
);

/**
 * Per-day top-K summaries of attack_rollup_day for long-window top-N (src/analytics/sqlite-top-summaries.ts):
 * the K keys with the highest day counts over all nodes and pot types, per dimension and day.
 */
export const attackTopDay = sqliteTable(
  'attack_top_day',
  {
    dim: integer('dim').notNull(),
    /** epoch ms / 86 400 000 */
    bucket: integer('bucket').notNull(),
    key: text('key').notNull(),
    count: integer('count').notNull(),
  },
  (t) => [primaryKey({ columns: [t.dim, t.bucket, t.key] })],
);

/** Per (dim, day) summary: `floor` bounds the day count of any key not kept (0 = all kept), `n` keys kept. */
export const attackTopDayFloor = sqliteTable(
  'attack_top_day_floor',
  {
    dim: integer('dim').notNull(),
    bucket: integer('bucket').notNull(),
    floor: integer('floor').notNull(),
    n: integer('n').notNull(),
  },
  (t) => [primaryKey({ columns: [t.dim, t.bucket] })],
);

/**
 * Per-hour top-K summaries of attack_rollup_hour for 24 h top-N (src/analytics/sqlite-top-summaries.ts),
 * kept like attack_top_day with hour buckets.
 */
export const attackTopHour = sqliteTable(
  'attack_top_hour',
  {
    dim: integer('dim').notNull(),
    /** epoch ms / 3 600 000 */
    bucket: integer('bucket').notNull(),
    key: text('key').notNull(),
    count: integer('count').notNull(),
  },
  (t) => [primaryKey({ columns: [t.dim, t.bucket, t.key] })],
);

/** Per (dim, hour) summary: `floor` bounds the hour count of any key not kept (0 = all kept), `n` keys kept. */
export const attackTopHourFloor = sqliteTable(
  'attack_top_hour_floor',
  {
    dim: integer('dim').notNull(),
    bucket: integer('bucket').notNull(),
    floor: integer('floor').notNull(),
    n: integer('n').notNull(),
  },
  (t) => [primaryKey({ columns: [t.dim, t.bucket] })],
);

/** Events per minute bucket (epoch ms / 60 000), node and pot type: minute timelines. */
export const attackMinute = sqliteTable(
  'attack_minute',
  {
    bucket: integer('bucket').notNull(),
    node: text('node').notNull(),
    potType: text('pot_type').notNull(),
    count: integer('count').notNull(),
  },
  (t) => [primaryKey({ columns: [t.bucket, t.node, t.potType] })],
);

/**
 * Progress markers of the analytics ingest. `day_rollup_until_hour`: every hour bucket below it has
 * been folded into attack_rollup_day (later increments of those hours go to both tables).
 */
export const attackMeta = sqliteTable('attack_meta', {
  key: text('key').primaryKey(),
  value: integer('value').notNull(),
});

/** Events from IGNORE_CIDRS sources per hour bucket: stored as events, not counted as attacks. */
export const attackIgnored = sqliteTable('attack_ignored', {
  bucket: integer('bucket').primaryKey(),
  count: integer('count').notNull(),
});

/** AS organisation names seen, for top-by-ASN answers. */
export const attackAsn = sqliteTable('attack_asn', {
  asn: integer('asn').primaryKey(),
  org: text('org').notNull(),
});

/** One row per source address. */
export const attackers = sqliteTable(
  'attackers',
  {
    ip: text('ip').primaryKey(),
    firstSeen: integer('first_seen').notNull(),
    lastSeen: integer('last_seen').notNull(),
    events: integer('events').notNull(),
    scope: text('scope').notNull(),
    country: text('country'),
    asn: integer('asn'),
    asOrg: text('as_org'),
    city: text('city'),
    latitude: real('latitude'),
    longitude: real('longitude'),
    /** Label from the operator's scanner list ('' = listed without a label); null = not listed. */
    scanner: text('scanner'),
    loginsFailed: integer('logins_failed').notNull().default(0),
    loginsOk: integer('logins_ok').notNull().default(0),
    commands: integer('commands').notNull().default(0),
    downloads: integer('downloads').notNull().default(0),
  },
  (t) => [index('attackers_last_seen_idx').on(t.lastSeen)],
);

/** What each attacker did, counted per (kind, value); kind numbers: src/analytics/dimensions.ts. */
export const attackerFacts = sqliteTable(
  'attacker_facts',
  {
    ip: text('ip').notNull(),
    kind: integer('kind').notNull(),
    value: text('value').notNull(),
    count: integer('count').notNull(),
    firstSeen: integer('first_seen').notNull(),
    lastSeen: integer('last_seen').notNull(),
  },
  // No time index: facts go with their attacker at retention (an index here doubled the upsert cost).
  (t) => [primaryKey({ columns: [t.ip, t.kind, t.value] })],
);

/** One row per attacker session (cowrie and other pots that report a session id). */
export const attackSessions = sqliteTable(
  'attack_sessions',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    node: text('node').notNull(),
    potId: text('pot_id').notNull(),
    potType: text('pot_type').notNull(),
    session: text('session').notNull(),
    srcIp: text('src_ip'),
    srcPort: integer('src_port'),
    destIp: text('dest_ip'),
    destPort: integer('dest_port'),
    protocol: text('protocol'),
    startedAt: integer('started_at').notNull(),
    lastSeen: integer('last_seen').notNull(),
    closed: integer('closed').notNull().default(0),
    events: integer('events').notNull(),
    loginsFailed: integer('logins_failed').notNull().default(0),
    /** Credentials of the successful login, if any. */
    username: text('username'),
    password: text('password'),
  },
  (t) => [
    uniqueIndex('attack_sessions_key_idx').on(t.node, t.potId, t.session),
    index('attack_sessions_started_idx').on(t.startedAt),
    index('attack_sessions_ip_idx').on(t.srcIp, t.startedAt),
    index('attack_sessions_last_seen_idx').on(t.lastSeen),
  ],
);

/** Credentials tried, commands and downloads of a session, in event order. */
export const attackSessionSteps = sqliteTable(
  'attack_session_steps',
  {
    sessionId: integer('session_id').notNull(),
    eventId: integer('event_id').notNull(),
    at: integer('at').notNull(),
    /** login.failed | login.success | command | command.failed | download | upload */
    kind: text('kind').notNull(),
    value: text('value').notNull(),
    /** password (logins), sha256 (downloads) */
    detail: text('detail'),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.eventId] })],
);

/** Operator actions through the API (src/audit/); the request body is stored with secrets masked. */
export const auditLog = sqliteTable(
  'audit_log',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    at: integer('at').notNull(),
    actorId: text('actor_id'),
    actorName: text('actor_name'),
    actorRole: text('actor_role'),
    /** token | user (console session) | cli; null in entries written before users existed (tokens). */
    actorKind: text('actor_kind'),
    source: text('source').notNull(),
    action: text('action').notNull(),
    method: text('method').notNull(),
    route: text('route').notNull(),
    target: text('target'),
    status: integer('status').notNull(),
    changes: text('changes'),
  },
  (t) => [
    index('audit_log_at_idx').on(t.at),
    index('audit_log_actor_name_idx').on(t.actorName, t.id),
    index('audit_log_actor_id_idx').on(t.actorId, t.id),
    index('audit_log_action_idx').on(t.action, t.id),
    index('audit_log_target_idx').on(t.target, t.id),
  ],
);

/** Alert delivery channels (src/alerts/); `secrets` is never returned by the API unmasked. */
export const alertChannels = sqliteTable(
  'alert_channels',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    type: text('type').notNull(),
    config: text('config').notNull(),
    secrets: text('secrets').notNull(),
    enabled: integer('enabled').notNull().default(1),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [uniqueIndex('alert_channels_name_idx').on(t.name)],
);

/** Alert rules (src/alerts/): what fires, to which channels, with de-duplication and quiet period. */
export const alertRules = sqliteTable(
  'alert_rules',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    kind: text('kind').notNull(),
    params: text('params').notNull(),
    channels: text('channels').notNull(),
    dedupSeconds: integer('dedup_seconds').notNull(),
    quietSeconds: integer('quiet_seconds').notNull(),
    enabled: integer('enabled').notNull().default(1),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [uniqueIndex('alert_rules_name_idx').on(t.name)],
);

/**
 * People who log in to the console (src/users/). Usernames are unique whatever their case (they
 * are ASCII, so SQLite's lower() is exact). password_hash carries its own KDF parameters.
 */
export const users = sqliteTable(
  'users',
  {
    id: text('id').primaryKey(),
    username: text('username').notNull(),
    /** viewer | operator | admin */
    role: text('role').notNull(),
    passwordHash: text('password_hash').notNull(),
    createdAt: integer('created_at').notNull(),
    disabledAt: integer('disabled_at'),
    lastLoginAt: integer('last_login_at'),
  },
  (t) => [uniqueIndex('users_username_lower_idx').on(sql`lower(${t.username})`)],
);

/**
 * Console login sessions. The cookie's value is never stored, only its SHA-256 (id_hash): a leaked
 * database does not log anyone in. Idle expiry is last_seen_at + SESSION_IDLE_MINUTES (so a
 * changed setting applies to existing sessions); expires_at is the absolute end.
 */
export const userSessions = sqliteTable(
  'user_sessions',
  {
    idHash: text('id_hash').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    csrfToken: text('csrf_token').notNull(),
    createdAt: integer('created_at').notNull(),
    lastSeenAt: integer('last_seen_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    source: text('source').notNull(),
  },
  (t) => [index('user_sessions_user_idx').on(t.userId), index('user_sessions_expires_idx').on(t.expiresAt)],
);
