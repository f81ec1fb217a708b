// Zod schemas of every HoneyBee v2 message body, both directions. They validate what arrives on
// the wire (node_id already turned into an exact decimal string by the u64 scanner) and are the
// source of the generated JSON Schemas in schemas/. Normalisation (null -> absent, the three
// NodeEvent forms -> one shape) happens in codec.ts, so no schema here carries a transform.
import { z } from 'zod';
import { u64Problem, U64_MAX } from './u64.js';

export const PROTOCOL_VERSION = 2;
export const versionSchema = z.literal(PROTOCOL_VERSION);

// Node ids are exact decimal strings internally; the JSON Schema generator swaps this schema
// for `integer 0..U64_MAX` (see json-schema.ts), which is what travels on the wire.
export const nodeIdSchema = z
  .string({ error: 'node_id must be a bare JSON integer (u64)' })
  .superRefine((value, ctx) => {
    const problem = u64Problem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: `${clip(value, 40)} is ${problem}` });
  });

export const NODE_ID_JSON_SCHEMA = {
  type: 'integer',
  minimum: 0,
  maximum: U64_MAX, // replaced by the bare integer when serialised; JSON numbers cannot hold it in JS
  description: 'u64 chosen at random by the node at each process start; a bare JSON integer, often above 2^53 and 2^63: parse without precision loss',
} as const;

// No control characters: names and ids end up in logs, file names and the UI.
const PRINTABLE = /^[^\u0000-\u001f\u007f]*$/;

const nodeName = z.string().min(1).max(255).regex(PRINTABLE, 'must not contain control characters');
const optionalText = z.string().nullish();

export const potIdSchema = z
  .string()
  .min(1, 'pot_id must not be empty')
  .max(255)
  .regex(PRINTABLE, 'pot_id must not contain control characters');

export const NODE_STATUSES = ['Connected', 'Deploying', 'Running', 'Stopped', 'Failed', 'Unknown'] as const;
export const POT_STATUSES = ['Installing', 'Running', 'Stopped', 'Failed', ''] as const;
export const NODE_TYPES = ['Full', 'Agent'] as const;

// ---------------------------------------------------------------- node -> core

export const nodeRegistrationSchema = z.object({
  node_id: nodeIdSchema,
  node_name: nodeName,
  address: z.string().max(255),
  port: z.number().int().min(0).max(65535),
  node_type: z.enum(NODE_TYPES),
  // Any string passes here: a malformed code is a failed login the gateway answers with an ack,
  // not an unreadable line.
  totp_code: z.string().max(64).nullish(),
});

export const nodeStatusUpdateSchema = z.object({
  node_id: nodeIdSchema,
  status: z.enum(NODE_STATUSES),
});

export const potStatusUpdateSchema = z.object({
  node_id: nodeIdSchema,
  pot_id: potIdSchema,
  pot_type: z.string().max(255).default('').describe('often "" when the update is a forwarded attack event'),
  status: z.enum(POT_STATUSES).describe('"" marks a forwarded honeypot attack event (text in message), not a status'),
  message: optionalText,
});

export const potEventSchema = z.object({
  node_id: nodeIdSchema,
  pot_id: potIdSchema,
  pot_type: z.string().max(255).default(''),
  event_type: z.string().max(255),
  timestamp: z.string().max(64).describe('ISO 8601 as sent by the node; not re-validated so no event is lost to a clock format'),
  data: z.record(z.string(), z.unknown()).nullish(),
});

// PascalCase on the wire ("Started", "Alarm"); the pattern also keeps names like "__proto__" out.
const nodeEventName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'event name must start with a letter and contain only letters, digits, "_", "." or "-"');

/** Form the public HoneyBee node sends: `{"type":"Error","message":..,"description":..}`. */
export const nodeEventTypedSchema = z.object({
  type: nodeEventName,
  message: optionalText,
  description: optionalText,
});

const nodeEventDetails = z.object({ message: optionalText, description: optionalText }).nullable();

/** serde externally tagged forms: `"Started"` or `{"Error":{"message":..}}`. */
export const nodeEventSerdeUnitSchema = nodeEventName;
export const nodeEventSerdeStructSchema = z
  .record(nodeEventName, nodeEventDetails)
  .meta({ minProperties: 1, maxProperties: 1 });

export const nodeEventSchema = z.union([nodeEventTypedSchema, nodeEventSerdeUnitSchema, nodeEventSerdeStructSchema]);

export const nodeDropSchema = z.union([z.object({}), z.null()]);

export const nodeMessageBodySchemas = {
  NodeRegistration: nodeRegistrationSchema,
  NodeStatusUpdate: nodeStatusUpdateSchema,
  PotStatusUpdate: potStatusUpdateSchema,
  PotEvent: potEventSchema,
  NodeEvent: nodeEventSchema,
  NodeDrop: nodeDropSchema,
} as const;

export type NodeVariant = keyof typeof nodeMessageBodySchemas;

// ---------------------------------------------------------------- core -> node

export const installPotSchema = z
  .object({
    pot_id: potIdSchema,
    honeypot_type: z.string().min(1).max(255).regex(PRINTABLE, 'honeypot_type must not contain control characters'),
    git_url: z.string().max(2048).nullish(),
    git_branch: z.string().max(255).nullish(),
    config: z
      .record(z.string().max(255), z.string({ error: 'config values must be strings (HoneyBee nodes read map[string]string)' }).max(65_536))
      .refine((m) => Object.keys(m).length <= 256, 'config has at most 256 entries')
      .nullish(),
    auto_start: z.boolean(),
  })
  .strict();

export const POT_COMMANDS = ['DeployPot', 'StopPot', 'RestartPot', 'GetPotStatus', 'GetPotInfo', 'GetPotLogs', 'GetPotMetrics'] as const;
export const UNIT_COMMANDS = ['Restart', 'UpdateConfig', 'GetInstalledPots'] as const;
export type PotCommandName = (typeof POT_COMMANDS)[number];
export type UnitCommandName = (typeof UNIT_COMMANDS)[number];
export const COMMAND_NAMES = ['InstallPot', ...POT_COMMANDS, ...UNIT_COMMANDS] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

const unitBody = z.object({}).strict();

/**
 * One object with every variant as an optional key and exactly one present. Equivalent to the
 * externally tagged union, but validation errors name the offending field ("InstallPot.auto_start:
 * ...") instead of a bare "invalid union", which matters for operator input on the REST API.
 */
const nodeCommandObject = z
  .object(
    {
      InstallPot: installPotSchema.optional(),
      DeployPot: potIdSchema.optional().describe('start the pot'),
      StopPot: potIdSchema.optional(),
      RestartPot: potIdSchema.optional(),
      GetPotStatus: potIdSchema.optional(),
      GetPotInfo: potIdSchema.optional(),
      GetPotLogs: potIdSchema.optional(),
      GetPotMetrics: potIdSchema.optional(),
      Restart: unitBody.optional().describe('unit command: always {"Restart":{}}; nodes drop the string form'),
      UpdateConfig: unitBody.optional(),
      GetInstalledPots: unitBody.optional(),
    },
    {
      error: (issue) =>
        issue.code === 'invalid_type'
          ? 'command must be an object with exactly one variant key, e.g. {"DeployPot":"pot-01"} or {"Restart":{}} (unit commands are never bare strings: nodes drop them)'
          : undefined,
    },
  )
  .strict()
  .meta({
    minProperties: 1,
    maxProperties: 1,
    description: 'HoneyBee NodeCommand.command: exactly one variant, externally tagged',
  })
  .superRefine((value, ctx) => {
    const present = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined);
    if (present.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          present.length === 0
            ? `command must name exactly one of ${COMMAND_NAMES.join(', ')}`
            : `command must name exactly one variant, got ${present.join(', ')}`,
      });
    }
  });

export interface InstallPotCommand {
  pot_id: string;
  honeypot_type: string;
  git_url?: string | null;
  git_branch?: string | null;
  config?: Record<string, string> | null;
  auto_start: boolean;
}

/** Exact wire shape of NodeCommand.command. */
export type NodeCommandBody =
  | { InstallPot: InstallPotCommand }
  | { DeployPot: string }
  | { StopPot: string }
  | { RestartPot: string }
  | { GetPotStatus: string }
  | { GetPotInfo: string }
  | { GetPotLogs: string }
  | { GetPotMetrics: string }
  | { Restart: Record<string, never> }
  | { UpdateConfig: Record<string, never> }
  | { GetInstalledPots: Record<string, never> };

// The object form above is what validates; its inferred type is a bag of optionals, so the
// exported type is the exact union callers build and receive.
export const nodeCommandSchema = nodeCommandObject as unknown as z.ZodType<NodeCommandBody>;

export const registrationAckSchema = z.object({
  node_id: nodeIdSchema,
  accepted: z.boolean(),
  message: optionalText,
  totp_key: optionalText.describe('32 upper-case base32 characters; the node stores it and uses it for every later code'),
});

export const nodeCommandMessageSchema = z.object({
  node_id: nodeIdSchema,
  command: nodeCommandSchema,
});

export const coreMessageBodySchemas = {
  RegistrationAck: registrationAckSchema,
  NodeCommand: nodeCommandMessageSchema,
} as const;

export type CoreVariant = keyof typeof coreMessageBodySchemas;

// ---------------------------------------------------------------- envelopes (for JSON Schema)

function variantObject<K extends string, S extends z.ZodType>(name: K, body: S) {
  return z.object({ [name]: body } as { [P in K]: S }).strict();
}

export const nodeToCoreEnvelopeSchema = z
  .object({
    version: versionSchema,
    message: z.union([
      variantObject('NodeRegistration', nodeRegistrationSchema),
      variantObject('NodeStatusUpdate', nodeStatusUpdateSchema),
      variantObject('PotStatusUpdate', potStatusUpdateSchema),
      variantObject('PotEvent', potEventSchema),
      variantObject('NodeEvent', nodeEventSchema),
      variantObject('NodeDrop', nodeDropSchema),
      z.literal('NodeDrop'),
    ]),
  })
  .meta({ title: 'HoneyBee v2 node -> core envelope', description: 'One compact JSON envelope per line (TCP) or per text frame (WebSocket)' });

export const coreToNodeEnvelopeSchema = z
  .object({
    version: versionSchema,
    message: z.union([
      variantObject('RegistrationAck', registrationAckSchema),
      variantObject('NodeCommand', nodeCommandMessageSchema),
    ]),
  })
  .meta({ title: 'HoneyBee v2 core -> node envelope', description: 'One compact JSON envelope per line (TCP) or per text frame (WebSocket)' });

export function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max) + '...';
}
