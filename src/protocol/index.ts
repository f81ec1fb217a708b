// Public surface of the HoneyBee Protocol v2 codec. Other domains import from here only.
//
// Wire decisions where the spec is silent (see codec.ts/schemas.ts for the reasons):
// - node_id is a NodeId string (exact u64 digits) everywhere inside the core; a node_id sent as a
//   JSON string is rejected (real nodes send bare integers and get bare integers back).
// - Node -> core bodies ignore unknown fields (like serde/Go); core -> node bodies are strict.
// - encodeNodeCommand writes InstallPot exactly like the real core: git_url/git_branch as null
//   when absent, config as {} when absent, fields in the fixture's order.
// - encodeRegistrationAck omits absent message/totp_key and refuses a totp_key that is not a
//   valid node secret (a node would replace it with its own: lock-out).
// - Nesting deeper than 64 levels is refused before JSON.parse (reason 'json').
export type { NodeId } from './u64.js';
export { U64_MAX, isNodeId, randomNodeId, quoteInexactNumbers } from './u64.js';

export {
  PROTOCOL_VERSION,
  NODE_STATUSES,
  POT_STATUSES,
  NODE_TYPES,
  COMMAND_NAMES,
  POT_COMMANDS,
  UNIT_COMMANDS,
  nodeCommandSchema,
  installPotSchema,
  potIdSchema,
  nodeToCoreEnvelopeSchema,
  coreToNodeEnvelopeSchema,
} from './schemas.js';
export type { NodeCommandBody, InstallPotCommand, CommandName, PotCommandName, UnitCommandName } from './schemas.js';

export {
  parseNodeMessage,
  decodeCoreMessage,
  isPotEventShaped,
  encodeRegistrationAck,
  encodeNodeCommand,
  encodeCommandBody,
  encodeCoreMessage,
  encodeNodeMessage,
} from './codec.js';
export type {
  NodeMessage,
  NodeRegistrationMsg,
  NodeStatusUpdateMsg,
  PotStatusUpdateMsg,
  PotStatusUpdate,
  PotEventMsg,
  NodeEventMsg,
  NodeDropMsg,
  NodeStatus,
  PotStatus,
  NodeType,
  ParseResult,
  ParseFailure,
  ParseFailureReason,
  RegistrationAck,
  RegistrationAckMsg,
  NodeCommandMsg,
  CoreMessage,
  CoreParseResult,
  EncodeNodeMessageOptions,
} from './codec.js';

export {
  TOTP_STEP_SECONDS,
  TOTP_DIGITS,
  generateNodeSecret,
  isValidNodeSecret,
  totpCode,
  totpStep,
  verifyTotp,
} from './totp.js';
export type { TotpCheck } from './totp.js';

export { buildJsonSchemaFiles } from './json-schema.js';
