// SQLite schema of the core. One file so that `drizzle-kit generate` sees every table and
// writes migrations into drizzle/. Timestamps are unix epoch milliseconds (integer) unless noted.
import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core';

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
  (t) => [
    index('events_received_idx').on(t.receivedAt),
    index('events_node_ts_idx').on(t.nodeName, t.timestamp),
    index('events_type_ts_idx').on(t.eventType, t.timestamp),
    index('events_pot_ts_idx').on(t.potId, t.timestamp),
  ],
);

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
