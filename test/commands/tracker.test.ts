// Every outcome branch of the answer tracker, the command state machine's judge of what a node's
// messages mean for its one command in flight. Pure logic with real timers (short ones).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnswerTracker, judgePotStatus, type Flight } from '../../src/commands/tracker.js';
import type { CommandKind, CommandResult } from '../../src/commands/types.js';

interface Outcome {
  id: string;
  status: 'succeeded' | 'failed';
  result: CommandResult;
}

function setup(timing = { quietPeriodMs: 30, updateConfigGraceMs: 30 }) {
  const settled: Outcome[] = [];
  const progress: { id: string; result: CommandResult }[] = [];
  const tracker = new AnswerTracker(
    {
      settle: (f, status, result) => settled.push({ id: f.id, status, result }),
      progress: (f, result) => progress.push({ id: f.id, result }),
    },
    timing,
  );
  const track = (id: string, kind: CommandKind, extra: Partial<Omit<Flight, 'pots'>> = {}) =>
    tracker.track({ id, node: 'n1', kind, potId: 'p1', autoStart: true, sentAt: Date.now(), deadline: Date.now() + 60_000, nodeId: '7', ...extra });
  return { tracker, settled, progress, track };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const pot = (status: string, potId = 'p1', message?: string) => ({ nodeName: 'n1', potId, potType: 'cowrie', status, ...(message ? { message } : {}) });

describe('judgePotStatus', () => {
  it('gives every kind its verdict for every status', () => {
    const table: [CommandKind, boolean, string, string][] = [
      ['InstallPot', true, 'Failed', 'failed'],
      ['InstallPot', true, 'Running', 'succeeded'],
      ['InstallPot', true, 'Stopped', 'progress'],
      ['InstallPot', false, 'Stopped', 'succeeded'],
      ['InstallPot', false, 'Installing', 'progress'],
      ['DeployPot', true, 'Running', 'succeeded'],
      ['DeployPot', true, 'Failed', 'failed'],
      ['DeployPot', true, 'Stopped', 'progress'],
      ['RestartPot', true, 'Running', 'succeeded'],
      ['RestartPot', true, 'Failed', 'failed'],
      ['RestartPot', true, 'Starting', 'progress'],
      ['StopPot', true, 'Stopped', 'succeeded'],
      ['StopPot', true, 'Failed', 'failed'],
      ['StopPot', true, 'Running', 'progress'],
      ['GetPotStatus', true, 'Failed', 'succeeded'],
      ['GetPotInfo', true, 'Stopped', 'succeeded'],
      ['GetPotLogs', true, 'Running', 'succeeded'],
      ['GetPotMetrics', true, 'Installing', 'succeeded'],
      ['Restart', true, 'Running', 'ignore'],
      ['UpdateConfig', true, 'Running', 'ignore'],
      ['GetInstalledPots', true, 'Running', 'ignore'],
    ];
    for (const [kind, autoStart, status, want] of table) assert.equal(judgePotStatus(kind, autoStart, status), want, `${kind} auto_start=${autoStart} ${status}`);
  });
});

describe('AnswerTracker outcomes', () => {
  it('pot status of its own pot: success, failure with reason pot_failed, progress remembered for the timeout message', async () => {
    const { tracker, settled, progress, track } = setup();
    track('a', 'DeployPot');
    tracker.potStatus(pot('Running', 'other-pot'));
    tracker.potStatus({ ...pot(''), status: '' });
    tracker.potStatus(pot('Running', 'p1', 'ok'));
    assert.deepEqual(settled, [{ id: 'a', status: 'succeeded', result: { potStatus: 'Running', message: 'ok' } }]);
    assert.equal(tracker.size, 0);

    track('b', 'InstallPot');
    tracker.potStatus(pot('Installing', 'p1', 'cloning'));
    assert.deepEqual(progress.at(-1), { id: 'b', result: { potStatus: 'Installing', message: 'cloning' } });
    assert.deepEqual(tracker.get('n1')!.lastStatus, { status: 'Installing', message: 'cloning' });
    tracker.potStatus(pot('Failed', 'p1', 'Git clone failed'));
    assert.deepEqual(settled.at(-1), { id: 'b', status: 'failed', result: { potStatus: 'Failed', message: 'Git clone failed', reason: 'pot_failed' } });

    // A command without a pot ignores pot updates.
    track('c', 'Restart', { potId: null });
    tracker.potStatus(pot('Failed'));
    assert.equal(settled.length, 2);
    assert.equal(tracker.size, 1);
  });

  it('NodeEvent Error fails the command (message, else description, else a default); other events and nodes are ignored', () => {
    const { tracker, settled, track } = setup();
    tracker.nodeEvent({ nodeName: 'n1', event: 'Error', message: 'nothing in flight' });
    track('a', 'UpdateConfig');
    tracker.nodeEvent({ nodeName: 'n1', event: 'Started', message: 'x' });
    tracker.nodeEvent({ nodeName: 'n2', event: 'Error', message: 'other node' });
    assert.equal(settled.length, 0);
    tracker.nodeEvent({ nodeName: 'n1', event: 'Error', message: 'bad config' });
    track('b', 'Restart');
    tracker.nodeEvent({ nodeName: 'n1', event: 'Error', message: '', description: 'from description' });
    track('c', 'Restart');
    tracker.nodeEvent({ nodeName: 'n1', event: 'Error' });
    assert.deepEqual(settled, [
      { id: 'a', status: 'failed', result: { reason: 'node_error', message: 'bad config' } },
      { id: 'b', status: 'failed', result: { reason: 'node_error', message: 'from description' } },
      { id: 'c', status: 'failed', result: { reason: 'node_error', message: 'node reported an error' } },
    ]);
  });

  it('re-registration: Restart succeeds; a new node_id fails as node_restarted; the same one keeps waiting; an unknown one is adopted', () => {
    const { tracker, settled, track } = setup();
    track('r', 'Restart');
    tracker.online({ nodeName: 'n1', nodeId: '8' });
    assert.deepEqual(settled.at(-1), { id: 'r', status: 'succeeded', result: { message: 'node re-registered after the restart' } });

    track('s', 'GetPotStatus');
    tracker.online({ nodeName: 'n1', nodeId: '7' });
    assert.equal(settled.length, 1, 'same process reconnected: still waiting');
    tracker.online({ nodeName: 'n2', nodeId: '9' });
    assert.equal(settled.length, 1);
    tracker.online({ nodeName: 'n1', nodeId: '8' });
    assert.equal(settled.at(-1)!.result.reason, 'node_restarted');
    assert.equal(settled.at(-1)!.status, 'failed');

    track('u', 'GetPotStatus', { nodeId: undefined });
    tracker.online({ nodeName: 'n1', nodeId: '10' });
    assert.equal(tracker.get('n1')!.nodeId, '10', 'recovered after a core restart: the first session is adopted');
    tracker.online({ nodeName: 'n1', nodeId: '11' });
    assert.equal(settled.at(-1)!.id, 'u');
    assert.equal(settled.at(-1)!.result.reason, 'node_restarted');
  });

  it('deadline: timeout with the last pot status; GetInstalledPots succeeds with what it collected', async () => {
    const { tracker, settled, track } = setup({ quietPeriodMs: 60_000, updateConfigGraceMs: 60_000 });
    const now = Date.now();
    track('t', 'InstallPot', { sentAt: now, deadline: now + 40 });
    tracker.potStatus(pot('Installing', 'p1', 'cloning'));
    await until(() => settled.length === 1, 'the deadline');
    assert.deepEqual(settled[0], {
      id: 't',
      status: 'failed',
      result: { reason: 'timeout', message: 'no answer from the node within 0 s (last pot status Installing: cloning)', potStatus: 'Installing' },
    });

    track('q', 'GetPotStatus', { sentAt: now, deadline: now + 2_000 });
    assert.equal(tracker.timeoutNow('other-id', 'n1'), false);
    assert.equal(tracker.timeoutNow('q', 'n9'), false);
    assert.equal(tracker.timeoutNow('q', 'n1'), true);
    assert.deepEqual(settled[1], { id: 'q', status: 'failed', result: { reason: 'timeout', message: 'no answer from the node within 2 s' } });

    track('g', 'GetInstalledPots', { potId: null });
    tracker.potStatus(pot('Running', 'a'));
    tracker.potStatus(pot('Stopped', 'b', 'idle'));
    assert.equal(tracker.timeoutNow('g', 'n1'), true);
    assert.deepEqual(settled[2], {
      id: 'g',
      status: 'succeeded',
      result: { pots: [{ potId: 'a', potType: 'cowrie', status: 'Running' }, { potId: 'b', potType: 'cowrie', status: 'Stopped', message: 'idle' }] },
    });
  });

  it('quiet period ends GetInstalledPots (each report re-arms it); the grace period ends UpdateConfig', async () => {
    const { tracker, settled, progress, track } = setup({ quietPeriodMs: 80, updateConfigGraceMs: 40 });
    track('g', 'GetInstalledPots', { potId: null });
    tracker.potStatus(pot('Running', 'a'));
    assert.deepEqual(progress.at(-1), { id: 'g', result: { pots: [{ potId: 'a', potType: 'cowrie', status: 'Running' }] } });
    await until(() => settled.length === 1, 'the quiet period');
    assert.deepEqual(settled[0], { id: 'g', status: 'succeeded', result: { pots: [{ potId: 'a', potType: 'cowrie', status: 'Running' }] } });

    track('u', 'UpdateConfig', { potId: null });
    await until(() => settled.length === 2, 'the grace period');
    assert.deepEqual(settled[1], { id: 'u', status: 'succeeded', result: { message: 'no error reported within the grace period' } });
  });

  it('tracking: the same id twice is one flight; a new id replaces the old one and its timers; forget and clearAll stop everything', async () => {
    const { tracker, settled, track } = setup({ quietPeriodMs: 20, updateConfigGraceMs: 20 });
    const now = Date.now();
    track('a', 'GetPotStatus', { deadline: now + 30 });
    track('a', 'GetPotStatus', { deadline: now + 60_000 });
    assert.equal(tracker.get('n1')!.deadline, now + 30, 'the second track of the same id is ignored');
    track('b', 'GetPotStatus', { deadline: now + 60_000 });
    assert.equal(tracker.get('n1')!.id, 'b');
    track('c', 'UpdateConfig', { potId: null, deadline: now + 60_000 });
    tracker.forget('b', 'n1');
    assert.equal(tracker.get('n1')!.id, 'c', 'forget of another id changes nothing');
    tracker.forget('c', 'n1');
    assert.equal(tracker.size, 0);
    track('d', 'GetInstalledPots', { potId: null });
    tracker.clearAll();
    assert.equal(tracker.size, 0);
    // Long enough for every timer above (30 ms deadline, 20 ms quiet/grace) to have fired if left armed.
    const start = Date.now();
    await until(() => Date.now() - start > 150, 'the cleared timers to pass');
    assert.deepEqual(settled, []);
  });

  it('timers only for the kinds that use them; grace counted from sentAt; empty statuses and ignored verdicts change nothing', async () => {
    const { tracker, settled, progress, track } = setup({ quietPeriodMs: 20, updateConfigGraceMs: 20 });
    // GetInstalledPots with no report at all completes empty after the quiet period.
    track('g', 'GetInstalledPots', { potId: null });
    tracker.potStatus({ ...pot('', 'x'), status: '' });
    await until(() => settled.length === 1, 'the empty inventory');
    assert.deepEqual(settled[0], { id: 'g', status: 'succeeded', result: { pots: [] } });
    assert.equal(progress.length, 0, 'an empty status is no report');

    // A pot query has neither a quiet period nor a grace period: it waits for its answer.
    track('q', 'GetPotStatus');
    // An UpdateConfig sent 1 s ago with a 60 s grace still has 59 s to go.
    const slow = setup({ quietPeriodMs: 20, updateConfigGraceMs: 60_000 });
    slow.track('u', 'UpdateConfig', { potId: null, sentAt: Date.now() - 1000 });
    // A Restart that somehow names a pot ignores that pot's updates (no progress either).
    const other = setup();
    other.track('r', 'Restart');
    other.tracker.potStatus(pot('Running'));
    assert.deepEqual(other.progress, []);
    assert.deepEqual(other.settled, []);
    const start = Date.now();
    await until(() => Date.now() - start > 200, 'ten quiet/grace periods to pass');
    assert.equal(settled.length, 1, 'the pot query did not settle by a timer');
    assert.deepEqual(slow.settled, [], 'grace counts from sentAt, not from now or zero');
    tracker.clearAll();
    slow.tracker.clearAll();
    other.tracker.clearAll();
  });

  it('messages: node restarted, and a timeout whose last pot status had no message', async () => {
    const { tracker, settled, track } = setup();
    track('n', 'GetPotStatus');
    tracker.online({ nodeName: 'n1', nodeId: '99' });
    assert.equal(settled[0]!.result.message, 'the node process restarted while the command was in flight; its outcome is unknown');
    const now = Date.now();
    track('t', 'DeployPot', { sentAt: now - 5_000, deadline: now + 60_000 });
    tracker.potStatus(pot('Starting'));
    assert.equal(tracker.timeoutNow('t', 'n1'), true);
    assert.equal(settled[1]!.result.message, 'no answer from the node within 65 s (last pot status Starting)');
    assert.equal(settled[1]!.result.potStatus, 'Starting');
  });
});
