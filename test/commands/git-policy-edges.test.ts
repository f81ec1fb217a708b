// Edges of the git URL policy found by mutation testing (npm run test:mutation git-policy): the
// rule parser's anchors and flags, empty rules, hyphens inside URLs, and the exact errors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkGitPolicy, compileGitPolicy, parseGitUrlRule } from '../../src/commands/git-policy.js';

const install = (git_url?: string, git_branch?: string) =>
  ({ InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', auto_start: true, git_url, git_branch } }) as Parameters<typeof checkGitPolicy>[0];

describe('git URL policy edges', () => {
  it('a rule is a regex only when the whole text is /source/flags (after trimming)', () => {
    const bare = parseGitUrlRule('/^https:\\/\\/x\\/.*$/');
    assert.ok(bare instanceof RegExp, 'no flags');
    assert.equal(bare.flags, '');
    const multi = parseGitUrlRule('/x/im');
    assert.ok(multi instanceof RegExp);
    assert.equal(multi.flags, 'im');
    const padded = parseGitUrlRule('   /x/i   ');
    assert.ok(padded instanceof RegExp, 'surrounding blanks are not part of the rule');
    // Text that merely starts like a regex is not one: as a prefix it is no URL, and is refused.
    assert.throws(() => parseGitUrlRule('/srv/git/x-y'), /neither scheme:\/\/host\/path nor \[user@\]host:path/);
    assert.equal(parseGitUrlRule('file:///srv/git/x-y'), 'file:///srv/git/x-y');
  });

  it('an empty prefix admits nothing; a hyphen inside a URL is fine, only a leading one is refused', () => {
    assert.equal(compileGitPolicy([''])('https://anything.example/x.git'), false);
    const allowed = compileGitPolicy(['https://git.example.org/honeypots/']);
    assert.equal(allowed('https://git.example.org/honeypots/my-pot.git'), true);
    assert.equal(allowed('-https://git.example.org/honeypots/x'), false);
  });

  it('refusals carry their code, and the URL in the message is cut at 200 characters', () => {
    const allowed = compileGitPolicy(['https://git.example.org/']);
    const long = `https://evil.example/${'a'.repeat(400)}`;
    assert.throws(
      () => checkGitPolicy(install(long), allowed),
      (err: { statusCode: number; code: string; message: string }) =>
        err.statusCode === 400 && err.code === 'git_url_not_allowed' && err.message.includes(long.slice(0, 200)) && !err.message.includes(long.slice(0, 201)),
    );
    assert.throws(() => checkGitPolicy(install(undefined, ''), allowed), { statusCode: 400, code: 'bad_git_branch' });
    assert.throws(() => checkGitPolicy(install(undefined, '--upload-pack=x'), allowed), { code: 'bad_git_branch' });
    assert.doesNotThrow(() => checkGitPolicy(install('https://git.example.org/a.git', 'feature/x-1'), allowed));
  });
});
