// JSON Schemas of the wire, generated from the zod schemas (scripts/generate-schemas.ts writes
// them to schemas/; a test fails when the files are stale). node_id is a string inside the core
// but an integer 0..2^64-1 on the wire, so its schema is swapped in here.
import { z } from 'zod';
import {
  coreToNodeEnvelopeSchema,
  NODE_ID_JSON_SCHEMA,
  nodeCommandSchema,
  nodeIdSchema,
  nodeToCoreEnvelopeSchema,
  versionSchema,
} from './schemas.js';
import { U64_MAX } from './u64.js';

const U64_MAX_PLACEHOLDER = '__APIARY_U64_MAX__';

function toJsonSchema(schema: z.ZodType, id: string): Record<string, unknown> {
  const json = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    override: (ctx) => {
      if (ctx.zodSchema === versionSchema) (ctx.jsonSchema as Record<string, unknown>).type = 'integer';
      if (ctx.zodSchema !== nodeIdSchema) return;
      const target = ctx.jsonSchema as Record<string, unknown>;
      for (const key of Object.keys(target)) delete target[key];
      Object.assign(target, NODE_ID_JSON_SCHEMA, { maximum: U64_MAX_PLACEHOLDER });
    },
  }) as Record<string, unknown>;
  return { $schema: json.$schema, $id: id, ...json };
}

/** Serialises a schema; the u64 maximum is written as the exact bare integer. */
function serialise(schema: Record<string, unknown>): string {
  return JSON.stringify(schema, null, 2).replaceAll(`"${U64_MAX_PLACEHOLDER}"`, U64_MAX) + '\n';
}

/** File name (relative to schemas/) -> file content. */
export function buildJsonSchemaFiles(): Record<string, string> {
  return {
    'node-to-core.schema.json': serialise(toJsonSchema(nodeToCoreEnvelopeSchema, 'https://apiary.local/schemas/node-to-core.schema.json')),
    'core-to-node.schema.json': serialise(toJsonSchema(coreToNodeEnvelopeSchema, 'https://apiary.local/schemas/core-to-node.schema.json')),
    'node-command.schema.json': serialise(toJsonSchema(nodeCommandSchema, 'https://apiary.local/schemas/node-command.schema.json')),
  };
}
