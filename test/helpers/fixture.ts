// The real-node wire fixture lives in shared/ beside the repository (CI clones the repo next to
// it); a copy in test/fixtures keeps the tests runnable in a clone without shared/.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const NAME = 'honeybee-node-wire.ndjson';
const candidates = [
  join(import.meta.dirname, '..', '..', '..', 'shared', 'fixtures', NAME),
  join(import.meta.dirname, '..', 'fixtures', NAME),
];

export const fixturePath = candidates.find((p) => existsSync(p)) ?? candidates[candidates.length - 1]!;

export function fixtureLines(): string[] {
  return readFileSync(fixturePath, 'utf8').split('\n').filter((l) => l.length > 0);
}
