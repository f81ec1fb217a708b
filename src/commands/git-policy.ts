// InstallPot with a git_url makes a node clone and run code from that URL, so which URLs an operator
// may hand out is a security decision: only URLs on a configured allow-list pass, and the default
// (empty list) refuses every git_url.
import type { NodeCommandBody } from '../protocol/index.js';
import { CommandError } from './types.js';

/** A URL prefix (compared as plain text) or a regular expression the whole URL must match. */
export type GitUrlRule = string | RegExp;

// A value starting with '-' would be parsed by `git clone` as an option (--upload-pack=... runs
// commands); whitespace and control characters have no business in a URL or branch name.
const UNSAFE = /^-|[\s\u0000-\u001f\u007f]/;

/**
 * Reads a rule from configuration text: `/source/flags` is a regular expression, anything else a
 * URL prefix (end it with '/' so https://github.com/acme/ does not also admit acme-evil).
 */
export function parseGitUrlRule(text: string): GitUrlRule {
  const m = /^\/(.+)\/([a-z]*)$/.exec(text.trim());
  return m ? new RegExp(m[1], m[2]) : text.trim();
}

/** Compiles the rules once; the returned test is what every InstallPot is checked against. */
export function compileGitPolicy(rules: readonly GitUrlRule[]): (url: string) => boolean {
  const prefixes = rules.filter((r): r is string => typeof r === 'string' && r.length > 0);
  // Anchored on both ends so /https:\/\/git\.example\.org\/.*/ cannot be satisfied by a substring,
  // and without g/y flags so no lastIndex is carried between calls.
  const patterns = rules
    .filter((r): r is RegExp => r instanceof RegExp)
    .map((r) => new RegExp(`^(?:${r.source})$`, r.flags.replace(/[gy]/g, '')));
  return (url) => {
    if (UNSAFE.test(url)) return false;
    return prefixes.some((p) => url.startsWith(p)) || patterns.some((re) => re.test(url));
  };
}

/** Throws a 400 CommandError when an InstallPot names a git source the policy does not allow. */
export function checkGitPolicy(command: NodeCommandBody, allowed: ((url: string) => boolean) | null): void {
  if (!('InstallPot' in command)) return;
  const { git_url: url, git_branch: branch } = command.InstallPot;
  if (url !== undefined && url !== null) {
    if (!allowed) {
      throw new CommandError(
        400,
        'git_url_not_allowed',
        'InstallPot.git_url is refused: no git URL allow-list is configured, so nodes may only install from their PotStore (omit git_url)',
      );
    }
    if (!allowed(url)) {
      throw new CommandError(
        400,
        'git_url_not_allowed',
        `InstallPot.git_url ${JSON.stringify(url.slice(0, 200))} does not match the configured git URL allow-list`,
      );
    }
  }
  if (branch !== undefined && branch !== null && (branch === '' || UNSAFE.test(branch))) {
    throw new CommandError(
      400,
      'bad_git_branch',
      'InstallPot.git_branch must be a non-empty branch name without whitespace or control characters and must not start with "-"',
    );
  }
}
