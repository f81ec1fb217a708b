// The git URL allow-list on its own: what a prefix and a regex admit, and what is never admitted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseGitUrlRule } from '../../src/commands/index.js';
import { checkGitPolicy, compileGitPolicy } from '../../src/commands/git-policy.js';

describe('git URL policy', () => {
  it('parses configuration text into prefixes and regexes', () => {
    assert.equal(parseGitUrlRule(' https://git.example.org/pots/ '), 'https://git.example.org/pots/');
    const re = parseGitUrlRule('/https:\\/\\/github\\.com\\/acme\\/[a-z]+\\.git/i');
    assert.ok(re instanceof RegExp);
    assert.equal(re.flags, 'i');
  });

  it('anchors regexes on the whole URL and ignores g/y state', () => {
    const allowed = compileGitPolicy([/https:\/\/github\.com\/acme\/[a-z]+\.git/gy]);
    assert.equal(allowed('https://github.com/acme/pots.git'), true);
    assert.equal(allowed('https://github.com/acme/pots.git'), true, 'no lastIndex carried over');
    assert.equal(allowed('https://github.com/acme/pots.git.evil.example'), false);
    assert.equal(allowed('x https://github.com/acme/pots.git'), false);
  });

  it('never admits option-like or whitespace-carrying values, whatever the rules', () => {
    const allowed = compileGitPolicy(['', /.*/]);
    assert.equal(allowed('--upload-pack=sh'), false);
    assert.equal(allowed('https://a/b c'), false);
    assert.equal(allowed('https://a/b\nc'), false);
    assert.equal(allowed('https://a/b'), true);
  });

  it('refuses with 400 errors that say why', () => {
    const install = (git_url?: string | null, git_branch?: string | null) => ({
      InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', git_url, git_branch, auto_start: true },
    });
    assert.doesNotThrow(() => checkGitPolicy(install(null), null));
    assert.doesNotThrow(() => checkGitPolicy({ DeployPot: 'p' }, null));
    assert.throws(() => checkGitPolicy(install('https://a/b'), null), (e: Error & { statusCode?: number; code?: string }) => e.statusCode === 400 && e.code === 'git_url_not_allowed' && /no git URL allow-list/.test(e.message));
    const allowed = compileGitPolicy(['https://a/']);
    assert.doesNotThrow(() => checkGitPolicy(install('https://a/b', 'main'), allowed));
    assert.throws(() => checkGitPolicy(install('https://b/a'), allowed), /does not match/);
    assert.throws(() => checkGitPolicy(install('https://a/b', '-x'), allowed), /git_branch/);
  });
});
