// Writes the JSON Schemas of the HoneyBee v2 wire (generated from src/protocol's zod schemas)
// into schemas/. test/protocol/json-schema.test.ts fails when the committed files are stale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildJsonSchemaFiles } from '../src/protocol/index.js';

const outDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'schemas');
mkdirSync(outDir, { recursive: true });
for (const [name, content] of Object.entries(buildJsonSchemaFiles())) {
  writeFileSync(join(outDir, name), content);
  process.stdout.write(`wrote schemas/${name}\n`);
}
