// PostgreSQL schema of the core (DATABASE_URL=postgres://…): the same tables, columns and indexes as
// the SQLite schema in ./schema.ts, so one domain store interface can have an implementation on each.
// `npm run db:generate:pg` (drizzle.pg.config.ts) writes its migrations into drizzle/pg/.
//
// Type choices, and why:
// - Timestamps stay unix epoch milliseconds: bigint read as a JS number (mode 'number'; every value
//   is far below 2^53), so domain code sees the same numbers on both databases. Counters and ids
//   are bigint too (SQLite's INTEGER is 64-bit); small codes (dim, kind, ports, HTTP status, 0/1
//   flags) are integer. ASNs are bigint: they go up to 2^32 - 1, past integer.
// - JSON columns (events.data, commands.command, pubchans, alert config, ...) stay text, not jsonb:
//   each domain only stores and returns them, and text gives back the exact bytes stored (jsonb
//   would reorder keys and drop duplicates), as SQLite does. A domain that comes to query inside
//   them on PostgreSQL can switch its column to jsonb then.
// - events is partitioned by day of received_at on PostgreSQL. drizzle-kit cannot say so: the table
//   below is what it sees (columns and indexes stay in its snapshot, so later column changes are
//   generated as usual), and the custom migration drizzle/pg/0001_events_partitioned.sql recreates it
//   as a partitioned table. Its primary key is (id, received_at) because PostgreSQL requires the
//   partition key in every unique key; ids still come from one sequence, so id alone stays unique.
import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, doublePrecision, index, integer, pgSequence, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';

/** hpfeeds credentials: one row per ident, same shape as the reference broker's sqlite store. */
export const authkeys = pgTable('authkeys', {
  ident: text('ident').primaryKey(),
  owner: text('owner').notNull().default(''),
  secret: text('secret').notNull(),
  /** JSON array of channel names the ident may publish to. */
  pubchans: text('pubchans').notNull().default('[]'),
  /** JSON array of channel names the ident may subscribe to. */
  subchans: text('subchans').notNull().default('[]'),
  createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
});

/**
 * HoneyBee nodes, keyed by node_name (the identity that survives restarts; node_id changes at every
 * node process start and is kept as a decimal string because it is a u64).
 */
export const nodes = pgTable(
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
    lastTotpStep: bigint('last_totp_step', { mode: 'number' }),
    /** Remote address of the current or last session (the socket peer, not the advertised one). */
    remoteAddress: text('remote_address'),
    transport: text('transport'),
    connectedAt: bigint('connected_at', { mode: 'number' }),
    lastSeenAt: bigint('last_seen_at', { mode: 'number' }),
    disconnectedAt: bigint('disconnected_at', { mode: 'number' }),
    /** Why the last session ended: drop, disconnect, replaced, stale, revoked, shutdown. */
    disconnectReason: text('disconnect_reason'),
    /** Address key (IPv4, or IPv6 /64) a pending node first came from: pending caps count on it. */
    pendingSource: text('pending_source'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('nodes_enrollment_idx').on(t.enrollment), index('nodes_pending_source_idx').on(t.pendingSource)],
);

/**
 * Registrations of names the core has no node row for (unknown in provisioned mode, refused over
 * the pending caps, bad names), aggregated per source address instead of one node_log row each.
 */
export const unknownRegistrations = pgTable(
  'unknown_registrations',
  {
    /** IPv4 address, or IPv6 /64 prefix. */
    addressKey: text('address_key').primaryKey(),
    /** Exact address of the latest attempt. */
    lastAddress: text('last_address').notNull(),
    attempts: bigint('attempts', { mode: 'number' }).notNull(),
    firstSeenAt: bigint('first_seen_at', { mode: 'number' }).notNull(),
    lastSeenAt: bigint('last_seen_at', { mode: 'number' }).notNull(),
    /** JSON array: the latest distinct names tried (a bounded sample, newest last). */
    lastNames: text('last_names').notNull().default('[]'),
    /** Rejection reason of the latest attempt. */
    lastResult: text('last_result').notNull(),
  },
  (t) => [index('unknown_registrations_last_seen_idx').on(t.lastSeenAt)],
);

/** Honeypots per node, as last reported by PotStatusUpdate. */
export const pots = pgTable(
  'pots',
  {
    nodeName: text('node_name')
      .notNull()
      .references(() => nodes.name, { onDelete: 'cascade' }),
    potId: text('pot_id').notNull(),
    potType: text('pot_type').notNull().default(''),
    status: text('status').notNull(),
    lastMessage: text('last_message'),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.nodeName, t.potId] })],
);

/** Node lifecycle log: registrations, rejections, NodeEvent, NodeDrop, disconnects. */
export const nodeLog = pgTable(
  'node_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeName: text('node_name').notNull(),
    kind: text('kind').notNull(),
    message: text('message'),
    at: bigint('at', { mode: 'number' }).notNull(),
  },
  (t) => [index('node_log_node_at_idx').on(t.nodeName, t.at)],
);

/** Operator commands: the status record of each BullMQ job (job id = command id). */
export const commands = pgTable(
  'commands',
  {
    id: text('id').primaryKey(),
    /** Per-node delivery order: monotonically increasing across the table. */
    seq: bigint('seq', { mode: 'number' }).notNull(),
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
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    sentAt: bigint('sent_at', { mode: 'number' }),
    finishedAt: bigint('finished_at', { mode: 'number' }),
    expiresAt: bigint('expires_at', { mode: 'number' }).notNull(),
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

/**
 * Where commands.seq comes from on PostgreSQL: cores sharing the database draw from it (SQLite has
 * one core, which counts in memory). PostgreSQL only: a sequence is not a table, the SQLite schema
 * needs no counterpart. src/commands/pg-store.ts draws it under a lock held to commit, so seq
 * order is commit order.
 */
export const commandsSeq = pgSequence('commands_seq', { startWith: 1, increment: 1 });

/** Attack events normalised from PotEvent and event-shaped PotStatusUpdate. */
export const events = pgTable(
  'events',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    nodeName: text('node_name').notNull(),
    potId: text('pot_id').notNull(),
    potType: text('pot_type').notNull(),
    eventType: text('event_type').notNull(),
    /** Event time as reported by the node (ISO 8601 converted to epoch ms). */
    timestamp: bigint('timestamp', { mode: 'number' }).notNull(),
    /** JSON object. */
    data: text('data').notNull(),
    receivedAt: bigint('received_at', { mode: 'number' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.receivedAt] }),
    index('events_received_idx').on(t.receivedAt),
    // A filtered page (ORDER BY id DESC LIMIT) reads each partition's index in id order (a merge of
    // the partitions), no sort of every matching row. (SQLite has side tables instead: schema.ts.)
    index('events_node_id_idx').on(t.nodeName, t.id),
    index('events_type_id_idx').on(t.eventType, t.id),
  ],
);

// PostgreSQL only: batch notes (src/events/pg-batch-notes.ts). The statement that inserts an event
// batch also notes it in each table below that is in use, so a note exists exactly when its batch
// is committed; the owner deletes it once it has done what must follow the commit. What a killed
// core left undone is then found here. SQLite has neither: one core owns the file, and its analytics
// run inside the events' own transaction. Notes live about a second: no index beyond the key.
function batchNotes(name: string) {
  return pgTable(name, {
    /** The batch's first (lowest) event id: its key. */
    firstId: bigint('first_id', { mode: 'number' }).primaryKey(),
    /** Who noted it (the fan-out origin of the core: instance id / start id). */
    owner: text('owner').notNull(),
    notedAt: bigint('noted_at', { mode: 'number' }).notNull(),
    /** Lowest received_at of the batch: lets the reads skip older day partitions. */
    receivedFrom: bigint('received_from', { mode: 'number' }).notNull(),
    ids: bigint('ids', { mode: 'number' }).array().notNull(),
    /** Per id: the event came from a PotStatusUpdate (not stored in events; republishing needs it). */
    fromStatus: boolean('from_status').array().notNull(),
  });
}

/** Batches not yet on the cluster fan-out stream (src/cluster/outbox-relay.ts). */
export const eventOutbox = batchNotes('event_outbox');
/** Batches not yet in the analytics rollups (src/analytics/pg-ingest.ts). */
export const analyticsBacklog = batchNotes('analytics_backlog');

/** Operator API tokens. Only a SHA-256 of the token is stored. */
export const apiTokens = pgTable('api_tokens', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** admin | operator | viewer */
  role: text('role').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  lastUsedAt: bigint('last_used_at', { mode: 'number' }),
  revokedAt: bigint('revoked_at', { mode: 'number' }),
});

// Attack analytics (src/analytics): rollups, attackers and sessions maintained at ingest, in the
// events writer's transaction. (SQLite makes the rollup tables WITHOUT ROWID; on PostgreSQL the
// primary key index serves the same lookups.)

/** Counts per (dimension, hour bucket, node, pot type, key). dim numbers: src/analytics/dimensions.ts. */
export const attackRollupHour = pgTable(
  'attack_rollup_hour',
  {
    dim: integer('dim').notNull(),
    /** epoch ms / 3 600 000 */
    bucket: bigint('bucket', { mode: 'number' }).notNull(),
    node: text('node').notNull(),
    potType: text('pot_type').notNull(),
    key: text('key').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
  },
  // key_idx: one key's buckets (timelines split by a dimension) without scanning the window's rows.
  (t) => [primaryKey({ columns: [t.dim, t.bucket, t.node, t.potType, t.key] }), index('attack_rollup_hour_key_idx').on(t.dim, t.key, t.bucket)],
);

/** Same as attack_rollup_hour with day buckets (epoch ms / 86 400 000), for long windows. */
export const attackRollupDay = pgTable(
  'attack_rollup_day',
  {
    dim: integer('dim').notNull(),
    bucket: bigint('bucket', { mode: 'number' }).notNull(),
    node: text('node').notNull(),
    potType: text('pot_type').notNull(),
    key: text('key').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
  },
  // key_idx: one key's buckets (timelines split by a dimension) without scanning the window's rows.
  (t) => [primaryKey({ columns: [t.dim, t.bucket, t.node, t.potType, t.key] }), index('attack_rollup_day_key_idx').on(t.dim, t.key, t.bucket)],
);

/**
 * Per-day top-K summaries of attack_rollup_day for long-window top-N (src/analytics/sqlite-top-summaries.ts):
 * the K keys with the highest day counts over all nodes and pot types, per dimension and day.
 */
export const attackTopDay = pgTable(
  'attack_top_day',
  {
    dim: integer('dim').notNull(),
    /** epoch ms / 86 400 000 */
    bucket: bigint('bucket', { mode: 'number' }).notNull(),
    key: text('key').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.dim, t.bucket, t.key] })],
);

/** Per (dim, day) summary: `floor` bounds the day count of any key not kept (0 = all kept), `n` keys kept. */
export const attackTopDayFloor = pgTable(
  'attack_top_day_floor',
  {
    dim: integer('dim').notNull(),
    bucket: bigint('bucket', { mode: 'number' }).notNull(),
    floor: bigint('floor', { mode: 'number' }).notNull(),
    n: integer('n').notNull(),
  },
  (t) => [primaryKey({ columns: [t.dim, t.bucket] })],
);

/** Per-hour top-K summaries of attack_rollup_hour for 24 h windows (src/analytics/sqlite-top-summaries.ts). */
export const attackTopHour = pgTable(
  'attack_top_hour',
  {
    dim: integer('dim').notNull(),
    /** epoch ms / 3 600 000 */
    bucket: bigint('bucket', { mode: 'number' }).notNull(),
    key: text('key').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.dim, t.bucket, t.key] })],
);

/** Per (dim, hour) summary: `floor` bounds the hour count of any key not kept (0 = all kept), `n` keys kept. */
export const attackTopHourFloor = pgTable(
  'attack_top_hour_floor',
  {
    dim: integer('dim').notNull(),
    bucket: bigint('bucket', { mode: 'number' }).notNull(),
    floor: bigint('floor', { mode: 'number' }).notNull(),
    n: integer('n').notNull(),
  },
  (t) => [primaryKey({ columns: [t.dim, t.bucket] })],
);

/** Events per minute bucket (epoch ms / 60 000), node and pot type: minute timelines. */
export const attackMinute = pgTable(
  'attack_minute',
  {
    bucket: bigint('bucket', { mode: 'number' }).notNull(),
    node: text('node').notNull(),
    potType: text('pot_type').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.bucket, t.node, t.potType] })],
);

/**
 * Progress markers of the analytics ingest. `day_rollup_until_hour`: every hour bucket below it has
 * been folded into attack_rollup_day (later increments of those hours go to both tables).
 */
export const attackMeta = pgTable('attack_meta', {
  key: text('key').primaryKey(),
  value: bigint('value', { mode: 'number' }).notNull(),
});

/** Events from IGNORE_CIDRS sources per hour bucket: stored as events, not counted as attacks. */
export const attackIgnored = pgTable('attack_ignored', {
  bucket: bigint('bucket', { mode: 'number' }).primaryKey(),
  count: bigint('count', { mode: 'number' }).notNull(),
});

/** AS organisation names seen, for top-by-ASN answers. */
export const attackAsn = pgTable('attack_asn', {
  asn: bigint('asn', { mode: 'number' }).primaryKey(),
  org: text('org').notNull(),
});

/** One row per source address. */
export const attackers = pgTable(
  'attackers',
  {
    ip: text('ip').primaryKey(),
    firstSeen: bigint('first_seen', { mode: 'number' }).notNull(),
    lastSeen: bigint('last_seen', { mode: 'number' }).notNull(),
    events: bigint('events', { mode: 'number' }).notNull(),
    scope: text('scope').notNull(),
    country: text('country'),
    asn: bigint('asn', { mode: 'number' }),
    asOrg: text('as_org'),
    city: text('city'),
    latitude: doublePrecision('latitude'),
    longitude: doublePrecision('longitude'),
    /** Label from the operator's scanner list ('' = listed without a label); null = not listed. */
    scanner: text('scanner'),
    loginsFailed: bigint('logins_failed', { mode: 'number' }).notNull().default(0),
    loginsOk: bigint('logins_ok', { mode: 'number' }).notNull().default(0),
    commands: bigint('commands', { mode: 'number' }).notNull().default(0),
    downloads: bigint('downloads', { mode: 'number' }).notNull().default(0),
  },
  (t) => [index('attackers_last_seen_idx').on(t.lastSeen)],
);

/** What each attacker did, counted per (kind, value); kind numbers: src/analytics/dimensions.ts. */
export const attackerFacts = pgTable(
  'attacker_facts',
  {
    ip: text('ip').notNull(),
    kind: integer('kind').notNull(),
    value: text('value').notNull(),
    count: bigint('count', { mode: 'number' }).notNull(),
    firstSeen: bigint('first_seen', { mode: 'number' }).notNull(),
    lastSeen: bigint('last_seen', { mode: 'number' }).notNull(),
  },
  // No time index: facts go with their attacker at retention (an index here doubled the upsert cost).
  (t) => [primaryKey({ columns: [t.ip, t.kind, t.value] })],
);

/** One row per attacker session (cowrie and other pots that report a session id). */
export const attackSessions = pgTable(
  'attack_sessions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    node: text('node').notNull(),
    potId: text('pot_id').notNull(),
    potType: text('pot_type').notNull(),
    session: text('session').notNull(),
    srcIp: text('src_ip'),
    srcPort: integer('src_port'),
    destIp: text('dest_ip'),
    destPort: integer('dest_port'),
    protocol: text('protocol'),
    startedAt: bigint('started_at', { mode: 'number' }).notNull(),
    lastSeen: bigint('last_seen', { mode: 'number' }).notNull(),
    closed: integer('closed').notNull().default(0),
    events: bigint('events', { mode: 'number' }).notNull(),
    loginsFailed: bigint('logins_failed', { mode: 'number' }).notNull().default(0),
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
export const attackSessionSteps = pgTable(
  'attack_session_steps',
  {
    sessionId: bigint('session_id', { mode: 'number' }).notNull(),
    eventId: bigint('event_id', { mode: 'number' }).notNull(),
    at: bigint('at', { mode: 'number' }).notNull(),
    /** login.failed | login.success | command | command.failed | download | upload */
    kind: text('kind').notNull(),
    value: text('value').notNull(),
    /** password (logins), sha256 (downloads) */
    detail: text('detail'),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.eventId] })],
);

/** Operator actions through the API (src/audit/); the request body is stored with secrets masked. */
export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: bigint('at', { mode: 'number' }).notNull(),
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
export const alertChannels = pgTable(
  'alert_channels',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    type: text('type').notNull(),
    config: text('config').notNull(),
    secrets: text('secrets').notNull(),
    enabled: integer('enabled').notNull().default(1),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [uniqueIndex('alert_channels_name_idx').on(t.name)],
);

/** Alert rules (src/alerts/): what fires, to which channels, with de-duplication and quiet period. */
export const alertRules = pgTable(
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
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [uniqueIndex('alert_rules_name_idx').on(t.name)],
);

/**
 * People who log in to the console (src/users/). Usernames are unique whatever their case (they
 * are ASCII, so lower() is exact). password_hash carries its own KDF parameters.
 */
export const users = pgTable(
  'users',
  {
    id: text('id').primaryKey(),
    username: text('username').notNull(),
    /** viewer | operator | admin */
    role: text('role').notNull(),
    passwordHash: text('password_hash').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    disabledAt: bigint('disabled_at', { mode: 'number' }),
    lastLoginAt: bigint('last_login_at', { mode: 'number' }),
  },
  (t) => [uniqueIndex('users_username_lower_idx').on(sql`lower(${t.username})`)],
);

/**
 * Console login sessions. The cookie's value is never stored, only its SHA-256 (id_hash): a leaked
 * database does not log anyone in. Idle expiry is last_seen_at + SESSION_IDLE_MINUTES (so a
 * changed setting applies to existing sessions); expires_at is the absolute end.
 */
export const userSessions = pgTable(
  'user_sessions',
  {
    idHash: text('id_hash').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    csrfToken: text('csrf_token').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    lastSeenAt: bigint('last_seen_at', { mode: 'number' }).notNull(),
    expiresAt: bigint('expires_at', { mode: 'number' }).notNull(),
    source: text('source').notNull(),
  },
  (t) => [index('user_sessions_user_idx').on(t.userId), index('user_sessions_expires_idx').on(t.expiresAt)],
);
