// Newline framing edge cases of the TCP transport.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter } from '../../src/nodes/line-splitter.js';

function splitter(max: number) {
  const lines: string[] = [];
  const oversized: number[] = [];
  const s = new LineSplitter(max, { line: (t) => lines.push(t), oversized: (n) => oversized.push(n) });
  return { s, lines, oversized };
}

describe('LineSplitter', () => {
  it('accepts a line of exactly the cap (with or without \\r) and drops one byte more', () => {
    const { s, lines, oversized } = splitter(10);
    s.push(Buffer.from('0123456789\n0123456789\r\n0123456789A\nok\n'));
    assert.deepEqual(lines, ['0123456789', '0123456789', 'ok']);
    assert.equal(oversized.length, 1);
  });

  it('drops a long unterminated line without buffering it, then resumes after its newline', () => {
    const { s, lines, oversized } = splitter(8);
    s.push(Buffer.from('aaaaa'));
    s.push(Buffer.from('bbbbbbbbbbbbbbbbbbbbbbbbbb'));
    assert.equal(s.pendingBytes, 0);
    s.push(Buffer.from('cccccccccccc'));
    assert.equal(oversized.length, 1, 'reported once per line');
    s.push(Buffer.from('cc\nnext\n'));
    assert.deepEqual(lines, ['next']);
  });

  it('reassembles a multi-byte character split across segments and skips blank lines', () => {
    const { s, lines } = splitter(100);
    const b = Buffer.from('\n\r\n  \ncaf\u00e9\n');
    const cut = b.indexOf(0xc3) + 1;
    s.push(b.subarray(0, cut));
    s.push(b.subarray(cut));
    assert.deepEqual(lines, ['caf\u00e9']);
  });
});
