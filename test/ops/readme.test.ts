// The README's every shell block runs as written, in order, in a fresh copy of the repository
// (scripts/readme-check.ts: free ports instead of 8080/9001/10000, node_modules linked instead of
// `npm ci`). A block that is not run must say why.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findLeftovers } from '../../src/redis/index.js';
import { readmeBlocks, runReadmeCheck } from '../../scripts/readme-check.js';
import { repoRoot } from '../helpers/processes.js';

describe('README', () => {
  it('every shell block is checked, or says why not', () => {
    const blocks = readmeBlocks(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
    assert.ok(blocks.length >= 10, `found ${blocks.length} shell blocks`);
    for (const b of blocks) if (b.skip !== undefined) assert.ok(b.skip.length > 10, `line ${b.line}: a skip needs a reason`);
    assert.ok(blocks.some((b) => /npm ci && npm start/.test(b.code) && b.background), 'the quick start runs the core');
  });

  it('every shell block runs as written in a fresh copy', { timeout: 300_000 }, async () => {
    const result = await runReadmeCheck({ keep: true });
    try {
      assert.equal(result.code, 0, result.output.slice(-6000));
      assert.match(result.output, /### every README block ran/);
      assert.match(result.output, /"role":"admin"|"name":/, 'the API answered the quick start');
      assert.deepEqual(await findLeftovers(join(result.workDir, 'data', 'redis')), [], 'the core stopped its redis-server');
    } finally {
      for (const left of await findLeftovers(join(result.workDir, 'data', 'redis'))) process.kill(left.pid, 'SIGKILL');
      rmSync(result.workDir, { recursive: true, force: true });
    }
  });
});
