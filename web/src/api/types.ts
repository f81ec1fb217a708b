// Shapes of the REST API's answers the console reads (see /docs/json for the full schemas).
export type Role = 'viewer' | 'operator' | 'admin';

export interface SessionUser {
  id: string;
  username: string;
  role: Role;
}
export interface SessionInfo {
  user: SessionUser;
  csrf_token: string;
  expires_at: string | number;
  idle_expires_at: string | number;
}

export interface Pot {
  potId: string;
  potType: string;
  status: string;
  lastMessage: string | null;
  updatedAt: number;
}
export interface NodeRow {
  name: string;
  nodeId: string | null;
  nodeType: string | null;
  address: string | null;
  port: number | null;
  status: string;
  enrollment: 'pending' | 'approved' | 'enrolled' | 'revoked';
  hasSecret: boolean;
  online: boolean;
  remoteAddress: string | null;
  transport: string | null;
  connectedAt: number | null;
  lastSeenAt: number | null;
  disconnectedAt: number | null;
  disconnectReason: string | null;
  createdAt: number;
  updatedAt: number;
  pots?: Pot[];
}
export interface NodeLogEntry {
  id: number;
  kind: string;
  message: string;
  at: number;
}

export type CommandStatus = 'queued' | 'sent' | 'succeeded' | 'failed' | 'expired' | 'cancelled';
export interface CommandRow {
  id: string;
  seq: number;
  node: string;
  kind: string;
  potId: string | null;
  command: Record<string, unknown>;
  status: CommandStatus;
  result: { message?: string; potStatus?: string; pots?: { potId: string; potType: string; status: string; message?: string }[]; reason?: string } | null;
  batchId: string | null;
  requestedBy: string | null;
  createdAt: string;
  sentAt: string | null;
  finishedAt: string | null;
  expiresAt: string | null;
}

export interface EventRow {
  id: number;
  node: string;
  pot_id: string;
  pot_type: string;
  event_type: string;
  timestamp: string;
  data: Record<string, unknown>;
  received_at: string;
}
export interface EventPage {
  events: EventRow[];
  next_cursor: string | null;
}

export type TopDimension =
  | 'src_ip' | 'dst_port' | 'country' | 'asn' | 'username' | 'password' | 'credential' | 'command' | 'url' | 'hash' | 'node' | 'pot_type' | 'event_type';
export interface TopAnswer {
  by: TopDimension;
  since: string;
  until: string;
  exact: boolean;
  max_undercount: number;
  items: { key: string; count: number; as_org?: string; username?: string; password?: string }[];
}
export interface TimelineAnswer {
  bucket: 'minute' | 'hour' | 'day';
  since: string;
  until: string;
  series: { key: string; points: { start: string; count: number }[] }[];
}

export interface Fact {
  value: string;
  count: number;
  first_seen: string;
  last_seen: string;
  username?: string;
  password?: string;
}
export interface AttackSessionRow {
  id: number;
  node: string;
  pot_id: string;
  pot_type: string;
  session: string;
  src_ip: string;
  src_port: number | null;
  dest_ip: string | null;
  dest_port: number | null;
  protocol: string | null;
  started_at: string;
  last_seen: string;
  closed: boolean;
  events: number;
  logins_failed: number;
  username: string | null;
  password: string | null;
}
export interface Attacker {
  ip: string;
  first_seen: string;
  last_seen: string;
  events: number;
  geo: { scope: string; country: string | null; asn: number | null; as_org: string | null; city: string | null; latitude: number | null; longitude: number | null };
  scanner: string | null;
  tags: string[];
  logins_failed: number;
  logins_ok: number;
  nodes: Fact[];
  pots: Fact[];
  pot_types: Fact[];
  ports: Fact[];
  protocols: Fact[];
  credentials: Fact[];
  commands: Fact[];
  urls: Fact[];
  hashes: Fact[];
  sessions: AttackSessionRow[];
}
export interface SessionDetail extends AttackSessionRow {
  steps: { event_id: number; at: string; kind: string; value: string; detail: string | null }[];
}

export interface Authkey {
  ident: string;
  owner: string;
  pubchans: string[];
  subchans: string[];
  createdAt: number;
  updatedAt: number;
}
export interface TokenRow {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}
export interface AuditEntry {
  id: number;
  at: string;
  actor: { id: string; name: string; role: string };
  source: string;
  action: string;
  method: string;
  route: string;
  target: string | null;
  status: number;
  changes: unknown;
}
export interface UserRow {
  id: string;
  username: string;
  role: Role;
  [k: string]: unknown;
}
