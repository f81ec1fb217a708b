// Talking to the child processes a bench forks (simulated nodes, subscribers): their IPC messages.
import type { ChildProcess } from 'node:child_process';

/** The child's next IPC message of `type`. */
export function nextMessage<T>(proc: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { type: string }) => {
      if (m.type === type) {
        proc.off('message', on);
        resolve(m as T);
      }
    };
    proc.on('message', on);
  });
}
