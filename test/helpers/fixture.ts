// Real-node fixtures live in shared/ beside the repository (CI clones the repo next to it); copies
// in test/fixtures keep the tests runnable in a clone without shared/.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Lines the real node sent and accepted on the wire (registration, commands, answers). */
export const WIRE_FIXTURE = 'honeybee-node-wire.ndjson';
/** One whole real session, node -> core, in order: a real cowrie attacked over telnet behind the real node. */
export const COWRIE_SESSION_FIXTURE = 'honeybee-node-cowrie-session.ndjson';

/** Path of a fixture: the shared copy when present, else the in-repo one. */
export function fixturePathOf(name: string): string {
  const candidates = [
    join(import.meta.dirname, '..', '..', '..', 'shared', 'fixtures', name),
    join(import.meta.dirname, '..', 'fixtures', name),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[candidates.length - 1]!;
}

/** The non-empty lines of a fixture (default: the wire fixture). */
export function fixtureLines(name = WIRE_FIXTURE): string[] {
  return readFileSync(fixturePathOf(name), 'utf8').split('\n').filter((l) => l.length > 0);
}

export const fixturePath = fixturePathOf(WIRE_FIXTURE);
