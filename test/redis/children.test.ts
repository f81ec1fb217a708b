// A test process that dies, even by SIGKILL, takes its redis-servers with it (test/helpers/children.ts).
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function untilGone(pid: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new Error(`redis-server ${pid} outlived its test process`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  describe(`test process killed with ${signal}`, () => {
    it('its private redis-server dies too', async () => {
      const holder = fork(fileURLToPath(new URL('./redis-holder.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: 'ignore' });
      try {
        const [msg] = (await once(holder, 'message', { signal: AbortSignal.timeout(20_000) })) as [{ pid: number }];
        assert.ok(alive(msg.pid), 'redis-server runs while its test process lives');
        holder.kill(signal);
        await untilGone(msg.pid);
      } finally {
        if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
      }
    });
  });
}
