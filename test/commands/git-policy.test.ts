// The git URL allow-list on its own: what a prefix and a regex admit, and what is never admitted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseGitUrlRule } from '../../src/commands/index.js';
import { checkGitPolicy, compileGitPolicy, gitBranchProblem } from '../../src/commands/git-policy.js';

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

  it('compares parsed URLs: scheme and host exact, path prefix on a / boundary, no dot segments or encodings', () => {
    const allowed = compileGitPolicy(['https://github.com/org/', 'file:///srv/pots/repo.git', 'ssh://git@git.example.org/pots/']);
    const admitted = [
      'https://github.com/org/repo.git',
      'HTTPS://GitHub.com/org/repo',
      'https://github.com:443/org/repo.git',
      'file:///srv/pots/repo.git',
      'ssh://git@git.example.org/pots/cowrie.git',
      'ssh://git@git.example.org:22/pots/cowrie.git',
    ];
    for (const url of admitted) assert.equal(allowed(url), true, url);
    const refused = [
      'https://github.com/org/../evil/repo',
      'https://github.com/org/repo.git/../../../attacker/repo',
      'https://github.com/org/./repo',
      'https://github.com/org/%2e%2e/evil/repo',
      'https://github.com/org/%2E%2E/evil',
      'https://github.com/org%2f..%2fevil/repo',
      'https://github.com/org\\..\\evil/repo',
      'https://github.com/org//repo',
      'https://github.com/organisation/repo',
      'https://github.com/ORG/repo',
      'https://github.com.evil.example/org/repo',
      'https://github.com./org/repo',
      'https://evil@github.com/org/repo',
      'https://user:pass@github.com/org/repo',
      'https://github.com/org/repo?x=../../evil',
      'https://github.com/org/repo#frag',
      'http://github.com/org/repo',
      'https://github.com:8443/org/repo',
      'https://github.com/org/re\u0440o',
      'https://github.com/org/repo;id',
      'https://github.com/org/$(id)',
      'file:///srv/pots/repo.git.evil',
      'file:///srv/pots/repo.git/../other.git',
      'file:///srv/pots/repo.gi',
      'file://evil/srv/pots/repo.git',
      'ssh://root@git.example.org/pots/cowrie.git',
      'ssh://git:pw@git.example.org/pots/cowrie.git',
      'git@git.example.org:pots/cowrie.git',
      'ext::sh -c id',
      'github.com/org/repo',
    ];
    for (const url of refused) assert.equal(allowed(url), false, url);
  });

  it('refuses configuration entries that are not URLs', () => {
    assert.throws(() => parseGitUrlRule('github.com/org'), /allow-list entry/);
    assert.throws(() => parseGitUrlRule('https://github.com/org/../x/'), /allow-list entry/);
  });

  it('applies the URL refusals to regex rules too', () => {
    const allowed = compileGitPolicy([/https:\/\/github\.com\/org\/.*/]);
    assert.equal(allowed('https://github.com/org/repo.git'), true);
    assert.equal(allowed('https://github.com/org/../evil/repo'), false);
    assert.equal(allowed('https://github.com/org/%2e%2e/evil'), false);
    assert.equal(allowed('https://github.com/org/x?y'), false);
  });

  it('accepts only valid git branch names (check-ref-format rules, no shell metacharacters)', () => {
    for (const ok of ['main', 'release/1.2', 'feature/x_y-z', 'v1.0.0', 'a+b']) assert.equal(gitBranchProblem(ok), undefined, ok);
    const bad = ['$(id)', 'main;id', 'main id', '`id`', 'a|b', '-x', '--force', '.hidden', 'a/.b', 'a..b', 'a.lock', 'a/b.lock/c', 'a/', '/a', 'a//b', 'a.', '@{-1}', 'a~1', 'a^', 'a:b', 'a?', 'a*', 'a[', 'a\\b', '', 'x'.repeat(256), 'é'];
    for (const b of bad) assert.notEqual(gitBranchProblem(b), undefined, JSON.stringify(b));
    const allowed = compileGitPolicy(['https://a/']);
    assert.throws(
      () => checkGitPolicy({ InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', git_url: 'https://a/b', git_branch: 'main;id', auto_start: true } }, allowed),
      (e: Error & { code?: string }) => e.code === 'bad_git_branch' && /valid git branch name/.test(e.message),
    );
  });
});
