import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { tuneScavenges } from '../../src/app/gc-tuning.js';

const scavengeChild = fileURLToPath(new URL('./fixtures/scavenge-child.ts', import.meta.url));
const pretenuringChild = fileURLToPath(new URL('./fixtures/pretenuring-child.ts', import.meta.url));

/**
 * The helper threads' share of each scavenge after the tuning, as V8 traces it
 * (`background.scavenge.parallel`, ms per scavenge): 0 when the main thread scavenges alone.
 */
async function helperMsPerScavenge(cpus: number): Promise<{ mode: string; helperMs: number[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--trace-gc-nvp', '--import', 'tsx', scavengeChild, String(cpus)], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const lines = stdout.split('\n');
  const marker = lines.findIndex((l) => l.startsWith('TUNED '));
  assert.ok(marker >= 0, 'the child printed its marker');
  const helperMs: number[] = [];
  for (const line of lines.slice(marker + 1)) {
    if (!/\bgc=s\b/.test(line)) continue;
    const m = /\bbackground\.scavenge\.parallel=([\d.]+)/.exec(line);
    if (m) helperMs.push(Number(m[1]));
  }
  return { mode: lines[marker]!.slice('TUNED '.length), helperMs };
}

describe('scavenge tuning (apiary serve, bench/events.ts)', () => {
  it('keeps V8\'s parallel scavenges above 2 cores and makes them serial at 2 or fewer', () => {
    // Only the choice: applying 'serial' here would change this test process.
    assert.equal(tuneScavenges(4), 'parallel');
    assert.equal(tuneScavenges(64), 'parallel');
  });

  // Serial scavenges still hand their one task to V8's job system, which the main thread joins; now
  // and then a helper thread picks the task up first (once in a CI run: one scavenge of 25 with
  // 0.43 ms of helper time). So "serial" is at most one scavenge in ten with helper time, against
  // nearly every one in parallel mode.
  const withHelper = (helperMs: number[]) => helperMs.filter((ms) => ms > 0).length;

  it('at 2 cores the helper threads take part in (almost) no scavenge after the tuning', async () => {
    const serial = await helperMsPerScavenge(2);
    assert.equal(serial.mode, 'serial');
    assert.ok(serial.helperMs.length >= 10, `scavenges traced: ${serial.helperMs.length}`);
    assert.ok(withHelper(serial.helperMs) <= serial.helperMs.length / 10, `helper ms per scavenge: ${serial.helperMs.join(', ')}`);
  });

  it('above 2 cores the helper threads take part in most scavenges (the trace tells the two apart)', async () => {
    const parallel = await helperMsPerScavenge(8);
    assert.equal(parallel.mode, 'parallel');
    assert.ok(parallel.helperMs.length >= 10, `scavenges traced: ${parallel.helperMs.length}`);
    assert.ok(withHelper(parallel.helperMs) > parallel.helperMs.length / 2, `helper ms per scavenge: ${parallel.helperMs.join(', ')}`);
  });
});

/** Whether an object from a site whose objects had all survived young collections still starts young. */
async function startsYoungAfterBacklog(tuning: 'stop' | 'keep'): Promise<boolean> {
  // V8 only decides to pretenure after a scavenge of a young generation at its largest size: a
  // fixed 1 MB semi-space makes every scavenge such a one, so the decision does not hang on how the
  // young generation happened to grow (in the core it grows to its largest within seconds).
  const v8Flags = ['--allow-natives-syntax', '--expose-gc', '--min-semi-space-size=1', '--max-semi-space-size=1'];
  const { stdout } = await promisify(execFile)(process.execPath, [...v8Flags, '--import', 'tsx', pretenuringChild, tuning]);
  const m = /^YOUNG (true|false) 2000000$/m.exec(stdout);
  assert.ok(m, `the child's answer: ${stdout}`);
  return m[1] === 'true';
}

describe('pretenuring tuning (apiary serve, bench/events.ts)', () => {
  it("with V8's default, a site whose objects survived a backlog allocates straight into the old generation", async () => {
    assert.equal(await startsYoungAfterBacklog('keep'), false);
  });

  it('after stopPretenuring the same site still allocates young, so the backlog leaves no lasting cost', async () => {
    assert.equal(await startsYoungAfterBacklog('stop'), true);
  });
});
