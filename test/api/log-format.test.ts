// Log lines for a person at a terminal: one readable line per event; JSON everywhere else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logDestination, prettyLine } from '../../src/api/log-format.js';

const record = { level: 40, time: Date.UTC(2026, 0, 2, 3, 4, 5, 6), pid: 1, hostname: 'h', domain: 'redis', redisPid: 42, signal: 'SIGKILL', msg: 'private redis-server exited' };

describe('log format', () => {
  it('pretty: time, level, domain, message, then key=value, on one line', () => {
    const line = prettyLine(JSON.stringify(record));
    assert.match(line, /^\d\d:\d\d:\d\d\.006 WARN  \[redis\] private redis-server exited redisPid=42 signal=SIGKILL\n$/);
    assert.doesNotMatch(line, /hostname|pid=1 /);
  });

  it('keeps one line for multi-line messages, shows errors as type and message, quotes spaces', () => {
    const err = { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' };
    const line = prettyLine(JSON.stringify({ level: 50, time: 0, msg: 'two\nlines', err, where: 'a b' }));
    assert.equal(line.split('\n').length, 2, 'one line and its newline');
    assert.match(line, /ERROR two\\nlines err="Error: boom" where="a b"\n$/);
  });

  it('colours only on a terminal without NO_COLOR; not pretty on a pipe unless asked', () => {
    let written = '';
    const tty = { isTTY: true, write: (s: string) => (written += s) } as unknown as NodeJS.WriteStream;
    const pipe = { isTTY: false, write: (s: string) => (written += s) } as unknown as NodeJS.WriteStream;
    assert.equal(logDestination('auto', pipe), undefined, 'pino JSON on a pipe');
    assert.equal(logDestination('json', tty), undefined, 'LOG_FORMAT=json wins over a terminal');
    const saved = process.env.NO_COLOR;
    delete process.env.NO_COLOR;
    try {
      logDestination('auto', tty)!.write(JSON.stringify(record));
      assert.match(written, /\x1b\[33mWARN /);
      written = '';
      logDestination('pretty', pipe)!.write(JSON.stringify(record));
      assert.doesNotMatch(written, /\x1b\[/);
      assert.match(written, /WARN  \[redis\]/);
    } finally {
      if (saved !== undefined) process.env.NO_COLOR = saved;
    }
  });
});
