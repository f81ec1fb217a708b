import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureLines as readFixture } from '../helpers/fixture.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildJsonSchemaFiles,
  coreToNodeEnvelopeSchema,
  nodeToCoreEnvelopeSchema,
} from '../../src/protocol/index.js';
import { quoteNodeIdIntegers } from '../../src/protocol/u64.js';

const schemasDir = join(import.meta.dirname, '..', '..', 'schemas');
const fixtureLines = readFixture();
const isCoreLine = (l: string) => l.includes('"RegistrationAck"') || l.includes('"NodeCommand"');

type Schema = Record<string, unknown>;

// Just enough of JSON Schema 2020-12 for the keywords the generator emits; an unknown keyword
// fails the test so this checker cannot silently pass schemas it does not understand.
const KNOWN = new Set(['$schema', '$id', 'title', 'description', 'default', 'type', 'properties', 'required', 'additionalProperties', 'propertyNames', 'anyOf', 'oneOf', 'enum', 'const', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'minProperties', 'maxProperties']);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function errors(schema: Schema, value: unknown, path = '$'): string[] {
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) return [`${path}: checker does not know keyword ${k}`];
  const out: string[] = [];
  if (schema.anyOf || schema.oneOf) {
    const branches = (schema.anyOf ?? schema.oneOf) as Schema[];
    const passing = branches.filter((b) => errors(b, value, path).length === 0).length;
    if (schema.anyOf ? passing === 0 : passing !== 1) out.push(`${path}: matches ${passing} branches`);
  }
  if (schema.type !== undefined) {
    const types = ([] as string[]).concat(schema.type as string);
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return [...out, `${path}: ${t} is not ${types.join('|')}`];
  }
  if ('const' in schema && value !== schema.const) out.push(`${path}: not const ${String(schema.const)}`);
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) out.push(`${path}: not in enum`);
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) out.push(`${path}: below minimum`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) out.push(`${path}: above maximum`);
  }
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) out.push(`${path}: too short`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) out.push(`${path}: too long`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) out.push(`${path}: pattern`);
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    const keys = Object.keys(obj);
    for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) out.push(`${path}: missing ${r}`);
    if (typeof schema.minProperties === 'number' && keys.length < schema.minProperties) out.push(`${path}: too few properties`);
    if (typeof schema.maxProperties === 'number' && keys.length > schema.maxProperties) out.push(`${path}: too many properties`);
    for (const k of keys) {
      if (props[k]) out.push(...errors(props[k], obj[k], `${path}.${k}`));
      else if (schema.additionalProperties === false) out.push(`${path}: unexpected ${k}`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') out.push(...errors(schema.additionalProperties as Schema, obj[k], `${path}.${k}`));
      if (schema.propertyNames) out.push(...errors(schema.propertyNames as Schema, k, `${path}[key ${k}]`));
    }
  }
  return out;
}

function loadSchema(name: string): Schema {
  return JSON.parse(readFileSync(join(schemasDir, name), 'utf8')) as Schema;
}

describe('generated JSON Schemas', () => {
  it('schemas/ is up to date (run npm run schemas:generate)', () => {
    const files = buildJsonSchemaFiles();
    assert.deepEqual(Object.keys(files).sort(), ['core-to-node.schema.json', 'node-command.schema.json', 'node-to-core.schema.json']);
    for (const [name, content] of Object.entries(files)) {
      assert.equal(readFileSync(join(schemasDir, name), 'utf8'), content, `schemas/${name} is stale`);
    }
  });

  it('describes node_id as a bare integer 0..18446744073709551615', () => {
    for (const name of ['node-to-core.schema.json', 'core-to-node.schema.json']) {
      const text = readFileSync(join(schemasDir, name), 'utf8');
      const nodeIdBlocks = text.match(/"node_id": \{[^}]*\}/g) ?? [];
      assert.ok(nodeIdBlocks.length >= 2, name);
      for (const block of nodeIdBlocks) {
        assert.match(block, /"type": "integer"/);
        assert.match(block, /"minimum": 0,/);
        assert.match(block, /"maximum": 18446744073709551615,/);
      }
    }
  });

  it('names every variant, both directions', () => {
    const n2c = loadSchema('node-to-core.schema.json');
    const variants = ((n2c.properties as Record<string, Schema>).message!.anyOf as Schema[]).map((b) =>
      b.const ?? Object.keys(b.properties as object)[0],
    );
    assert.deepEqual(variants, ['NodeRegistration', 'NodeStatusUpdate', 'PotStatusUpdate', 'PotEvent', 'NodeEvent', 'NodeDrop', 'NodeDrop']);
    const c2n = loadSchema('core-to-node.schema.json');
    const coreVariants = ((c2n.properties as Record<string, Schema>).message!.anyOf as Schema[]).map((b) => Object.keys(b.properties as object)[0]);
    assert.deepEqual(coreVariants, ['RegistrationAck', 'NodeCommand']);
    assert.equal(loadSchema('node-command.schema.json').maxProperties, 1);
  });

  it('every fixture line validates against the generated JSON Schema of its direction', () => {
    const n2c = loadSchema('node-to-core.schema.json');
    const c2n = loadSchema('core-to-node.schema.json');
    for (const line of fixtureLines) {
      const schema = isCoreLine(line) ? c2n : n2c;
      assert.deepEqual(errors(schema, JSON.parse(line)), [], line);
      assert.notDeepEqual(errors(isCoreLine(line) ? n2c : c2n, JSON.parse(line)), [], `wrong direction accepted: ${line}`);
    }
  });

  it('every fixture line validates against the zod envelope schema of its direction', () => {
    for (const line of fixtureLines) {
      const quoted = quoteNodeIdIntegers(line);
      assert.equal(typeof quoted, 'string');
      const value = JSON.parse(quoted as string);
      const schema = isCoreLine(line) ? coreToNodeEnvelopeSchema : nodeToCoreEnvelopeSchema;
      const r = schema.safeParse(value);
      assert.ok(r.success, `${line}: ${r.error?.message}`);
    }
  });

  it('the checker is able to reject wrong lines', () => {
    const n2c = loadSchema('node-to-core.schema.json');
    const c2n = loadSchema('core-to-node.schema.json');
    const bad = [
      '{"version":1,"message":{"NodeDrop":{}}}',
      '{"version":2,"message":{"NodeStatusUpdate":{"node_id":1,"status":"Bogus"}}}',
      '{"version":2,"message":{"NodeStatusUpdate":{"node_id":-1,"status":"Running"}}}',
      '{"version":2,"message":{"NodeStatusUpdate":{"node_id":"1","status":"Running"}}}',
      '{"version":2,"message":{"NodeRegistration":{"node_id":1,"node_name":"n","address":"a","port":65536,"node_type":"Full"}}}',
      '{"version":2,"message":{"NodeDrop":{},"NodeEvent":"Started"}}',
    ];
    for (const line of bad) assert.notDeepEqual(errors(n2c, JSON.parse(line)), [], line);
    const badCore = [
      '{"version":2,"message":{"NodeCommand":{"node_id":1,"command":"Restart"}}}',
      '{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"Restart":{},"StopPot":"a"}}}}',
      '{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"InstallPot":{"pot_id":"a","honeypot_type":"b","auto_start":true,"config":{"x":1}}}}}}',
      '{"version":2,"message":{"RegistrationAck":{"node_id":1}}}',
    ];
    for (const line of badCore) assert.notDeepEqual(errors(c2n, JSON.parse(line)), [], line);
  });
});
