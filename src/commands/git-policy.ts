// InstallPot with a git_url makes a node clone and run code from that URL, so which URLs an operator
// may hand out is a security decision: only URLs on a configured allow-list pass, and the default
// (empty list) refuses every git_url.
//
// URLs are compared parsed, never as text: `https://github.com/org/../evil` starts with
// `https://github.com/org/` but git fetches github.com/evil. So a URL is first reduced to
// (scheme, user, host, port, path segments); anything that git or a shell could read differently
// from how we read it (dot segments, percent-encoding, backslashes, credentials, query strings,
// fragments, non-ASCII) is refused outright, whatever the rules say.
import type { NodeCommandBody } from '../protocol/index.js';
import { CommandError } from './types.js';

/** A URL prefix (compared parsed, on `/` boundaries) or a regular expression the whole URL must match. */
export type GitUrlRule = string | RegExp;

const MAX_URL_LENGTH = 2048;
const MAX_BRANCH_BYTES = 255;

// A value starting with '-' would be parsed by `git clone` as an option (--upload-pack=... runs
// commands); whitespace and control characters have no business in a URL or branch name.
const UNSAFE = /^-|[\s\u0000-\u001f\u007f]/;
/** Characters whose meaning differs between readers of a URL (git, curl, ssh, a shell). */
const AMBIGUOUS = /[%\\?#\u0080-\uffff]/;
/** Shell metacharacters: no repository needs them, and a node may hand the URL to a shell. */
const SHELL = /[;$`'"|&<>(){}*!]/;
const SCHEMES = new Set(['https', 'http', 'ssh', 'git', 'file']);
const DEFAULT_PORTS: Record<string, string> = { https: '443', http: '80', ssh: '22', git: '9418' };

/** A git URL reduced to what identifies the repository. `scp` is the `[user@]host:path` form. */
export interface ParsedGitUrl {
  scheme: string;
  user: string;
  host: string;
  port: string;
  /** Path as written (case kept), always without dot segments or empty inner segments. */
  path: string;
}

/** Parses a git URL or returns why it is refused. */
export function parseGitUrl(text: string): ParsedGitUrl | { error: string } {
  if (text.length === 0 || text.length > MAX_URL_LENGTH) return { error: `must be 1..${MAX_URL_LENGTH} characters` };
  if (UNSAFE.test(text)) return { error: 'must not start with "-" or contain whitespace or control characters' };
  if (AMBIGUOUS.test(text)) {
    return { error: 'must not contain percent-encoding, backslashes, query strings, fragments or non-ASCII characters' };
  }
  if (SHELL.test(text)) return { error: 'must not contain shell metacharacters' };
  let scheme: string;
  let authority: string;
  let path: string;
  const url = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/]*)(.*)$/.exec(text);
  if (url) {
    scheme = url[1]!.toLowerCase();
    authority = url[2]!;
    path = url[3]!;
    if (!SCHEMES.has(scheme)) return { error: `scheme ${scheme} is not one of ${[...SCHEMES].join(', ')}` };
    if (!path.startsWith('/')) return { error: 'needs a repository path' };
  } else {
    // scp-like syntax: [user@]host:path, recognised by git only when no slash precedes the colon.
    const scp = /^([^/:]+):(.*)$/.exec(text);
    if (!scp) return { error: 'is neither scheme://host/path nor [user@]host:path' };
    scheme = 'scp';
    authority = scp[1]!;
    path = scp[2]!;
    if (path === '') return { error: 'needs a repository path' };
  }
  let user = '';
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    user = authority.slice(0, at);
    authority = authority.slice(at + 1);
    if (user.includes(':') || user.includes('@')) return { error: 'must not carry credentials' };
    if (scheme !== 'ssh' && scheme !== 'scp') return { error: 'must not carry credentials' };
    if (!/^[A-Za-z0-9._-]+$/.test(user)) return { error: 'has an invalid user name' };
  }
  const hostPort = /^([A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/.exec(authority);
  if (!hostPort) return { error: 'has an invalid host' };
  const host = hostPort[1]!.toLowerCase();
  let port = hostPort[2] ?? '';
  if (scheme === 'scp' && port !== '') return { error: 'has an invalid host' };
  if (port !== '') port = String(Number(port));
  if (port === DEFAULT_PORTS[scheme]) port = '';
  if (scheme === 'file' ? host !== '' && host !== 'localhost' : host === '') return { error: 'has an invalid host' };
  if (host.endsWith('.') || host.startsWith('.') || host.includes('..')) return { error: 'has an invalid host' };
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '.' || s === '..') return { error: 'must not contain "." or ".." path segments' };
    const leading = i === 0 && scheme !== 'scp';
    const trailing = i === segments.length - 1;
    if (s === '' && !leading && !trailing) return { error: 'must not contain empty path segments ("//")' };
  }
  return { scheme, user, host: scheme === 'file' ? '' : host, port, path };
}

/** True when `url`'s path is `rule`'s path or lies below it (a `/` boundary, never a name prefix). */
function pathWithin(url: string, rule: string): boolean {
  if (rule.endsWith('/')) return url.startsWith(rule);
  return url === rule || url.startsWith(rule + '/');
}

/**
 * Reads a rule from configuration text: `/source/flags` is a regular expression, anything else a
 * URL prefix. Throws when a prefix is not a URL this policy could ever admit.
 */
export function parseGitUrlRule(text: string): GitUrlRule {
  const trimmed = text.trim();
  const m = /^\/(.+)\/([a-z]*)$/.exec(trimmed);
  if (m) return new RegExp(m[1]!, m[2]);
  const parsed = parseGitUrl(trimmed);
  if ('error' in parsed) throw new Error(`git URL allow-list entry ${JSON.stringify(trimmed)} ${parsed.error}`);
  return trimmed;
}

/** Compiles the rules once; the returned test is what every InstallPot is checked against. */
export function compileGitPolicy(rules: readonly GitUrlRule[]): (url: string) => boolean {
  const prefixes = rules
    .filter((r): r is string => typeof r === 'string' && r.length > 0)
    .map((r) => {
      const parsed = parseGitUrl(r);
      if ('error' in parsed) throw new Error(`git URL allow-list entry ${JSON.stringify(r)} ${parsed.error}`);
      return parsed;
    });
  // Anchored on both ends so /https:\/\/git\.example\.org\/.*/ cannot be satisfied by a substring,
  // and without g/y flags so no lastIndex is carried between calls.
  const patterns = rules
    .filter((r): r is RegExp => r instanceof RegExp)
    .map((r) => new RegExp(`^(?:${r.source})$`, r.flags.replace(/[gy]/g, '')));
  return (text) => {
    const url = parseGitUrl(text);
    if ('error' in url) return false;
    const byPrefix = prefixes.some(
      (p) => p.scheme === url.scheme && p.user === url.user && p.host === url.host && p.port === url.port && pathWithin(url.path, p.path),
    );
    return byPrefix || patterns.some((re) => re.test(text));
  };
}

/**
 * Why `name` is not a branch name git would accept (`git check-ref-format --branch` rules), or
 * undefined. On top of git's rules only `[A-Za-z0-9._/+-]` is allowed: nodes may pass the name
 * through a shell, and git itself accepts `$(id)`.
 */
export function gitBranchProblem(name: string): string | undefined {
  if (name === '' || Buffer.byteLength(name) > MAX_BRANCH_BYTES) return `must be 1..${MAX_BRANCH_BYTES} bytes`;
  if (!/^[A-Za-z0-9._/+-]+$/.test(name)) return 'may only contain letters, digits and . _ / + -';
  if (name.startsWith('-')) return 'must not start with "-"';
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'must not start or end with "/" or contain "//"';
  if (name.includes('..')) return 'must not contain ".."';
  if (name.endsWith('.')) return 'must not end with "."';
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return 'no component may start with "."';
    if (part.endsWith('.lock')) return 'no component may end with ".lock"';
  }
  return undefined;
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
      const parsed = parseGitUrl(url);
      const why = 'error' in parsed ? `: it ${parsed.error}` : '';
      throw new CommandError(
        400,
        'git_url_not_allowed',
        `InstallPot.git_url ${JSON.stringify(url.slice(0, 200))} does not match the configured git URL allow-list${why}`,
      );
    }
  }
  if (branch !== undefined && branch !== null) {
    const problem = gitBranchProblem(branch);
    if (problem !== undefined) {
      throw new CommandError(400, 'bad_git_branch', `InstallPot.git_branch is not a valid git branch name: it ${problem}`);
    }
  }
}
