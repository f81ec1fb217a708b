// HoneyBee v2 envelope codec. Parsing never throws: every input yields a message or a precise
// reason, so one bad line never costs a node its session. Encoding writes node_id as a bare
// integer and refuses (throws) on values a node would choke on, because the callers build them.
import type { z } from 'zod';
import {
  clip,
  coreMessageBodySchemas,
  nodeCommandSchema,
  nodeEventSerdeStructSchema,
  nodeEventSerdeUnitSchema,
  nodeEventTypedSchema,
  nodeMessageBodySchemas,
  PROTOCOL_VERSION,
  UNIT_COMMANDS,
  type InstallPotCommand,
  type NodeCommandBody,
} from './schemas.js';
import { parseHotEnvelope } from './hot-path.js';
import { scanJson, u64Problem, type NodeId } from './u64.js';

/** Envelope + variant + body use 3-4 levels; cowrie-like event data a few more. */
export const MAX_NESTING = 64;
import { isValidNodeSecret } from './totp.js';

// ---------------------------------------------------------------- types

export type NodeStatus = 'Connected' | 'Deploying' | 'Running' | 'Stopped' | 'Failed' | 'Unknown';
export type PotStatus = 'Installing' | 'Running' | 'Stopped' | 'Failed' | '';
export type NodeType = 'Full' | 'Agent';

export interface NodeRegistrationMsg {
  type: 'NodeRegistration';
  node_id: NodeId;
  node_name: string;
  address: string;
  port: number;
  node_type: NodeType;
  totp_code?: string;
}
export interface NodeStatusUpdateMsg {
  type: 'NodeStatusUpdate';
  node_id: NodeId;
  status: NodeStatus;
}
export interface PotStatusUpdateMsg {
  type: 'PotStatusUpdate';
  node_id: NodeId;
  pot_id: string;
  pot_type: string;
  status: PotStatus;
  message?: string;
}
export interface PotEventMsg {
  type: 'PotEvent';
  node_id: NodeId;
  pot_id: string;
  pot_type: string;
  event_type: string;
  timestamp: string;
  data: Record<string, unknown>;
  /**
   * `data` as the node wrote it, when the parser kept that text (the hot path does): stored and
   * republished verbatim, so the values received are the values kept (big integers included).
   */
  dataJson?: string;
}
export interface NodeEventMsg {
  type: 'NodeEvent';
  event: 'Started' | 'Stopped' | 'Error' | 'Alarm' | (string & {});
  message?: string;
  description?: string;
}
export interface NodeDropMsg {
  type: 'NodeDrop';
}

/** node -> core, normalised. */
export type NodeMessage =
  | NodeRegistrationMsg
  | NodeStatusUpdateMsg
  | PotStatusUpdateMsg
  | PotEventMsg
  | NodeEventMsg
  | NodeDropMsg;

export type PotStatusUpdate = PotStatusUpdateMsg;

export type ParseFailureReason = 'json' | 'envelope' | 'version' | 'schema';
export type ParseFailure = { ok: false; reason: ParseFailureReason; error: string };
export type ParseResult = { ok: true; message: NodeMessage } | ParseFailure;

export interface RegistrationAck {
  node_id: NodeId;
  accepted: boolean;
  message?: string;
  totp_key?: string;
}
export interface RegistrationAckMsg extends RegistrationAck {
  type: 'RegistrationAck';
}
export interface NodeCommandMsg {
  type: 'NodeCommand';
  node_id: NodeId;
  command: NodeCommandBody;
}
/** core -> node, as a node (the simulator) decodes it. */
export type CoreMessage = RegistrationAckMsg | NodeCommandMsg;
export type CoreParseResult = { ok: true; message: CoreMessage } | ParseFailure;

/** Real nodes forward honeypot attack events as PotStatusUpdate with an empty status. */
export function isPotEventShaped(m: PotStatusUpdateMsg): boolean {
  return m.status === '';
}

// ---------------------------------------------------------------- parsing

function fail(reason: ParseFailureReason, error: string): ParseFailure {
  return { ok: false, reason, error };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(clip(value, 40))}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${clip(String(value), 40)}`;
}

function formatIssues(prefix: string, issues: readonly z.core.$ZodIssue[]): string {
  const shown = issues.slice(0, 3).map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.');
    return `${path}: ${issue.message}`;
  });
  if (issues.length > 3) shown.push(`(+${issues.length - 3} more)`);
  return shown.join('; ');
}

type Envelope = { variant: string; body: unknown; bodyGiven: boolean } | ParseFailure;

/** JSON -> the one variant inside a version 2 envelope. */
function openEnvelope(text: unknown): Envelope {
  if (typeof text !== 'string') return fail('json', `expected a JSON text, got ${typeof text}`);
  const scanned = scanJson(text, 3, MAX_NESTING);
  if (scanned.tooDeep) return fail('json', `JSON nested deeper than ${MAX_NESTING} levels`);
  let root: unknown;
  try {
    root = JSON.parse(scanned.text);
  } catch (err) {
    return fail('json', `invalid JSON: ${clip(err instanceof Error ? err.message : String(err), 200)}`);
  }
  if (root === null || typeof root !== 'object' || Array.isArray(root)) {
    return fail('envelope', `envelope must be a JSON object {"version":2,"message":{...}}, got ${describe(root)}`);
  }
  const env = root as Record<string, unknown>;
  if (!('version' in env)) return fail('envelope', 'envelope has no "version"');
  if (env.version !== PROTOCOL_VERSION) {
    return fail('version', `unsupported protocol version ${clip(JSON.stringify(env.version) ?? String(env.version), 40)}: only version 2 is spoken`);
  }
  const message = env.message;
  if (message === undefined) return fail('envelope', 'envelope has no "message"');
  if (typeof message === 'string') {
    if (scanned.nodeIdIsString) return nodeIdStringFailure(message);
    return { variant: message, body: undefined, bodyGiven: false };
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    return fail('envelope', `"message" must be an object with one variant key, got ${describe(message)}`);
  }
  let variant: string | undefined;
  let count = 0;
  for (const key in message) {
    if (count === 0) variant = key;
    count++;
  }
  if (count !== 1 || variant === undefined) {
    const keys = Object.keys(message).slice(0, 5).map((k) => JSON.stringify(clip(k, 40)));
    return fail('envelope', `"message" must have exactly one variant key, got ${count}${count ? ` (${keys.join(', ')})` : ''}`);
  }
  if (scanned.nodeIdIsString) return nodeIdStringFailure(variant);
  return { variant, body: (message as Record<string, unknown>)[variant], bodyGiven: true };
}

function nodeIdStringFailure(variant: string): ParseFailure {
  return fail('schema', `message.${clip(variant, 40)}.node_id: must be a bare JSON integer (u64), not a string`);
}

function validate<T>(schema: z.ZodType<T>, variant: string, body: unknown): { ok: true; value: T } | ParseFailure {
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, value: result.data };
  return fail('schema', formatIssues(`message.${variant}`, result.error.issues));
}

const NODE_VARIANTS = new Set(Object.keys(nodeMessageBodySchemas));
const CORE_VARIANTS = new Set(Object.keys(coreMessageBodySchemas));

function unknownVariant(variant: string, direction: 'node' | 'core'): ParseFailure {
  const wrongWay = direction === 'node' ? CORE_VARIANTS.has(variant) : NODE_VARIANTS.has(variant);
  if (wrongWay) {
    return fail('schema', `${variant} is a ${direction === 'node' ? 'core -> node' : 'node -> core'} message; it is not accepted in this direction`);
  }
  const known = [...(direction === 'node' ? NODE_VARIANTS : CORE_VARIANTS)].join(', ');
  return fail('schema', `unknown message variant ${JSON.stringify(clip(variant, 40))} (expected one of ${known})`);
}

function present<T>(value: T | null | undefined): value is T {
  return value !== null && value !== undefined;
}

function normaliseNodeEvent(body: unknown): NodeEventMsg | ParseFailure {
  if (typeof body === 'string') {
    const r = validate(nodeEventSerdeUnitSchema, 'NodeEvent', body);
    return r.ok ? { type: 'NodeEvent', event: r.value } : r;
  }
  if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'type' in body) {
    const r = validate(nodeEventTypedSchema, 'NodeEvent', body);
    if (!r.ok) return r;
    const m: NodeEventMsg = { type: 'NodeEvent', event: r.value.type };
    if (present(r.value.message)) m.message = r.value.message;
    if (present(r.value.description)) m.description = r.value.description;
    return m;
  }
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const keys = Object.keys(body);
    if (keys.length !== 1) {
      return fail('schema', `message.NodeEvent: expected {"type":...}, "Name" or {"Name":{...}}, got an object with ${keys.length} keys`);
    }
    const event = keys[0]!;
    // checked by hand: zod's record skips a "__proto__" key instead of validating it
    const name = validate(nodeEventSerdeUnitSchema, 'NodeEvent', event);
    if (!name.ok) return name;
    const r = validate(nodeEventSerdeStructSchema, 'NodeEvent', body);
    if (!r.ok) return r;
    const details = r.value[event];
    const m: NodeEventMsg = { type: 'NodeEvent', event };
    if (details) {
      if (present(details.message)) m.message = details.message;
      if (present(details.description)) m.description = details.description;
    }
    return m;
  }
  return fail('schema', `message.NodeEvent: expected {"type":...}, "Name" or {"Name":{...}}, got ${describe(body)}`);
}

/**
 * PotEvent.data as JSON.parse built it. The validated copy is rebuilt key by key, and assigning a
 * `__proto__` key sets the copy's prototype instead of keeping the key: attackers do send it.
 */
function rawData(body: unknown): Record<string, unknown> | undefined {
  const data = (body as { data?: unknown } | null)?.data;
  return data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
}

function parseNodeMessageUnchecked(text: unknown): ParseResult {
  const env = openEnvelope(text);
  if ('ok' in env) return env;
  const { variant, body, bodyGiven } = env;
  switch (variant) {
    case 'NodeRegistration': {
      const r = validate(nodeMessageBodySchemas.NodeRegistration, variant, body);
      if (!r.ok) return r;
      const v = r.value;
      const m: NodeRegistrationMsg = {
        type: 'NodeRegistration',
        node_id: v.node_id,
        node_name: v.node_name,
        address: v.address,
        port: v.port,
        node_type: v.node_type,
      };
      if (present(v.totp_code)) m.totp_code = v.totp_code;
      return { ok: true, message: m };
    }
    case 'NodeStatusUpdate': {
      const r = validate(nodeMessageBodySchemas.NodeStatusUpdate, variant, body);
      if (!r.ok) return r;
      return { ok: true, message: { type: 'NodeStatusUpdate', node_id: r.value.node_id, status: r.value.status } };
    }
    case 'PotStatusUpdate': {
      const r = validate(nodeMessageBodySchemas.PotStatusUpdate, variant, body);
      if (!r.ok) return r;
      const v = r.value;
      const m: PotStatusUpdateMsg = { type: 'PotStatusUpdate', node_id: v.node_id, pot_id: v.pot_id, pot_type: v.pot_type, status: v.status };
      if (present(v.message)) m.message = v.message;
      return { ok: true, message: m };
    }
    case 'PotEvent': {
      const r = validate(nodeMessageBodySchemas.PotEvent, variant, body);
      if (!r.ok) return r;
      const v = r.value;
      return {
        ok: true,
        message: {
          type: 'PotEvent',
          node_id: v.node_id,
          pot_id: v.pot_id,
          pot_type: v.pot_type,
          event_type: v.event_type,
          timestamp: v.timestamp,
          data: rawData(body) ?? v.data ?? {},
        },
      };
    }
    case 'NodeEvent': {
      if (!bodyGiven) return fail('schema', 'message.NodeEvent: needs a body ({"NodeEvent":{"type":"Started"}})');
      const m = normaliseNodeEvent(body);
      return 'ok' in m ? m : { ok: true, message: m };
    }
    case 'NodeDrop': {
      if (bodyGiven && body !== null && (typeof body !== 'object' || Array.isArray(body))) {
        return fail('schema', `message.NodeDrop: expected {}, null or the bare string "NodeDrop", got ${describe(body)}`);
      }
      return { ok: true, message: { type: 'NodeDrop' } };
    }
    default:
      return unknownVariant(variant, 'node');
  }
}

/** The general parser alone (no hot path): for tests comparing both. Never throws. */
export function parseNodeMessageGeneral(text: string): ParseResult {
  try {
    return parseNodeMessageUnchecked(text);
  } catch (err) {
    return fail('schema', `unexpected parser failure: ${clip(err instanceof Error ? err.message : String(err), 200)}`);
  }
}

/** node -> core. Never throws. */
export function parseNodeMessage(text: string): ParseResult {
  try {
    // Nearly every line is one of the hot shapes: matched by hand, one JSON.parse of the data only.
    const hot = parseHotEnvelope(text);
    if (hot !== undefined) return { ok: true, message: hot as NodeMessage };
    return parseNodeMessageUnchecked(text);
  } catch (err) {
    return fail('schema', `unexpected parser failure: ${clip(err instanceof Error ? err.message : String(err), 200)}`);
  }
}

function decodeCoreMessageUnchecked(text: unknown): CoreParseResult {
  const env = openEnvelope(text);
  if ('ok' in env) return env;
  const { variant, body, bodyGiven } = env;
  switch (variant) {
    case 'RegistrationAck': {
      const r = validate(coreMessageBodySchemas.RegistrationAck, variant, body);
      if (!r.ok) return r;
      const m: RegistrationAckMsg = { type: 'RegistrationAck', node_id: r.value.node_id, accepted: r.value.accepted };
      if (present(r.value.message)) m.message = r.value.message;
      if (present(r.value.totp_key)) m.totp_key = r.value.totp_key;
      return { ok: true, message: m };
    }
    case 'NodeCommand': {
      if (!bodyGiven) return fail('schema', 'message.NodeCommand: needs a body');
      const r = validate(coreMessageBodySchemas.NodeCommand, variant, body);
      if (!r.ok) return r;
      return { ok: true, message: { type: 'NodeCommand', node_id: r.value.node_id, command: r.value.command } };
    }
    default:
      return unknownVariant(variant, 'core');
  }
}

/** core -> node, as a HoneyBee node reads it (used by the simulator and tests). Never throws. */
export function decodeCoreMessage(text: string): CoreParseResult {
  try {
    return decodeCoreMessageUnchecked(text);
  } catch (err) {
    return fail('schema', `unexpected parser failure: ${clip(err instanceof Error ? err.message : String(err), 200)}`);
  }
}

// ---------------------------------------------------------------- encoding

function checkedNodeId(nodeId: unknown): string {
  if (typeof nodeId !== 'string') throw new TypeError(`node_id must be a decimal string (NodeId), got ${typeof nodeId}`);
  const problem = u64Problem(nodeId);
  if (problem) throw new RangeError(`node_id ${clip(nodeId, 40)} is ${problem}`);
  return nodeId;
}

const str = JSON.stringify;

/** RegistrationAck, compact, no newline. Omits absent message/totp_key like the real core. */
export function encodeRegistrationAck(a: RegistrationAck): string {
  const nodeId = checkedNodeId(a.node_id);
  if (typeof a.accepted !== 'boolean') throw new TypeError('accepted must be a boolean');
  let body = `{"node_id":${nodeId},"accepted":${a.accepted}`;
  if (present(a.message)) {
    if (typeof a.message !== 'string') throw new TypeError('message must be a string');
    body += `,"message":${str(a.message)}`;
  }
  if (present(a.totp_key)) {
    // A node silently replaces a malformed secret with a fresh one of its own: that would lock
    // the node out for good, so such a key is never sent.
    if (!isValidNodeSecret(a.totp_key)) throw new RangeError('totp_key must be exactly 32 upper-case base32 characters');
    body += `,"totp_key":${str(a.totp_key)}`;
  }
  return `{"version":2,"message":{"RegistrationAck":${body}}}}`;
}

function encodeInstallPot(c: InstallPotCommand): string {
  // Same field order and nulls as the real core (see the fixture). An absent config is sent as {}:
  // the node reads a map[string]string and an empty map is the safest "no settings".
  return (
    `{"pot_id":${str(c.pot_id)},"honeypot_type":${str(c.honeypot_type)}` +
    `,"git_url":${present(c.git_url) ? str(c.git_url) : 'null'}` +
    `,"git_branch":${present(c.git_branch) ? str(c.git_branch) : 'null'}` +
    `,"config":${present(c.config) ? str(c.config) : '{}'}` +
    `,"auto_start":${c.auto_start}}`
  );
}

const UNIT = new Set<string>(UNIT_COMMANDS);

/** Validated NodeCommand.command -> its wire JSON (unit commands as {"Name":{}}). */
export function encodeCommandBody(command: NodeCommandBody): string {
  const checked = nodeCommandSchema.safeParse(command);
  if (!checked.success) throw new TypeError(`invalid node command: ${formatIssues('command', checked.error.issues)}`);
  const body = checked.data as Record<string, unknown>;
  const name = Object.keys(body).find((k) => body[k] !== undefined)!;
  if (name === 'InstallPot') return `{"InstallPot":${encodeInstallPot(body.InstallPot as InstallPotCommand)}}`;
  if (UNIT.has(name)) return `{"${name}":{}}`;
  return `{"${name}":${str(body[name])}}`;
}

export function encodeNodeCommand(node_id: NodeId, command: NodeCommandBody): string {
  const nodeId = checkedNodeId(node_id);
  return `{"version":2,"message":{"NodeCommand":{"node_id":${nodeId},"command":${encodeCommandBody(command)}}}}`;
}

export function encodeCoreMessage(m: CoreMessage): string {
  return m.type === 'RegistrationAck' ? encodeRegistrationAck(m) : encodeNodeCommand(m.node_id, m.command);
}

// Go's encoding/json escapes these inside strings; HoneyBee nodes are Go programs, so the
// simulator writes lines byte-identical to theirs. They only ever occur inside JSON strings.
const GO_ESCAPED = /[<>&\u2028\u2029]/g;
const HAS_GO_ESCAPED = /[<>&\u2028\u2029]/;
function goEscape(json: string): string {
  return HAS_GO_ESCAPED.test(json) ? json.replace(GO_ESCAPED, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) : json;
}

export interface EncodeNodeMessageOptions {
  /** 'typed' (default) = the public node's {"type":..}; 'serde' = "Started" / {"Error":{..}}. */
  nodeEventForm?: 'typed' | 'serde';
  /** NodeDrop as {"NodeDrop":{}} (default), {"NodeDrop":null} or the bare string "NodeDrop". */
  nodeDropForm?: 'object' | 'null' | 'string';
}

function optionalField(name: string, value: string | undefined): string {
  return value === undefined ? '' : `,"${name}":${str(value)}`;
}

/** node -> core wire line (no newline), the way a Go HoneyBee node writes it. For the simulator. */
export function encodeNodeMessage(m: NodeMessage, opts: EncodeNodeMessageOptions = {}): string {
  let inner: string;
  switch (m.type) {
    case 'NodeRegistration':
      inner =
        `{"NodeRegistration":{"node_id":${checkedNodeId(m.node_id)},"node_name":${str(m.node_name)},"address":${str(m.address)}` +
        `,"port":${m.port},"node_type":${str(m.node_type)}${optionalField('totp_code', m.totp_code)}}}`;
      break;
    case 'NodeStatusUpdate':
      inner = `{"NodeStatusUpdate":{"node_id":${checkedNodeId(m.node_id)},"status":${str(m.status)}}}`;
      break;
    case 'PotStatusUpdate':
      inner =
        `{"PotStatusUpdate":{"node_id":${checkedNodeId(m.node_id)},"pot_id":${str(m.pot_id)},"pot_type":${str(m.pot_type)}` +
        `,"status":${str(m.status)}${optionalField('message', m.message)}}}`;
      break;
    case 'PotEvent':
      inner =
        `{"PotEvent":{"node_id":${checkedNodeId(m.node_id)},"pot_id":${str(m.pot_id)},"pot_type":${str(m.pot_type)}` +
        `,"event_type":${str(m.event_type)},"timestamp":${str(m.timestamp)},"data":${str(m.data)}}}`;
      break;
    case 'NodeEvent':
      if (opts.nodeEventForm === 'serde') {
        const details = optionalField('message', m.message) + optionalField('description', m.description);
        inner = details === '' ? `{"NodeEvent":${str(m.event)}}` : `{"NodeEvent":{${str(m.event)}:{${details.slice(1)}}}}`;
      } else {
        inner = `{"NodeEvent":{"type":${str(m.event)}${optionalField('message', m.message)}${optionalField('description', m.description)}}}`;
      }
      break;
    case 'NodeDrop':
      inner = opts.nodeDropForm === 'string' ? '"NodeDrop"' : opts.nodeDropForm === 'null' ? '{"NodeDrop":null}' : '{"NodeDrop":{}}';
      break;
  }
  return goEscape(`{"version":2,"message":${inner}}`);
}
