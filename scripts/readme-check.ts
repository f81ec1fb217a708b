// Runs the shell blocks of README.md, in order, in a fresh copy of the repository, the way a new
// user would type them: one bash session (variables carry over from block to block), failing on
// the first command that fails. `node --import tsx scripts/readme-check.ts [--fresh] [--keep]`.
//
// What it changes, so that it can run anywhere (CI, a laptop, next to other tests):
// - The copy holds the files git knows (tracked, plus new files not ignored): a fresh clone of the
//   working tree. node_modules is linked from this checkout, and `npm ci` is skipped, unless
//   --fresh is given (then `npm ci` runs for real, about two minutes).
// - The README's ports (8080 API, 9001 nodes, 10000 hpfeeds) are replaced in the commands by free
//   ports, which the core gets from API_PORT / NODE_TCP_PORT / HPFEEDS_ENDPOINTS; it listens on
//   127.0.0.1 only. A global install (npm link) goes to a prefix inside the copy.
//
// Directives, in HTML comments right above a ```sh block (invisible on GitHub):
//   <!-- check: skip REASON -->        not run (needs Docker, systemd, or is the test suite itself)
//   <!-- check: background NAME -->    run in the background (a server, a subscriber); its output
//                                      goes to $CHECK_DIR/NAME.log; stopped (SIGTERM) at the end
//   <!-- check: before COMMAND -->     wait (up to 120 s; 900 s with --fresh) until COMMAND
//                                      succeeds, then run the block
//   <!-- check: after COMMAND -->      after the block, wait (as long) until COMMAND succeeds
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ReadmeBlock {
  line: number;
  code: string;
  skip?: string;
  background?: string;
  before: string[];
  after: string[];
}

export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i]!)) {
      if (/^```/.test(lines[i]!)) {
        // Skip over other fenced blocks (diagrams, synopses) so their content is not parsed.
        for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++);
      }
      continue;
    }
    const block: ReadmeBlock = { line: i + 1, code: '', before: [], after: [] };
    for (let j = i - 1; j >= 0; j--) {
      const m = /^<!-- check: (skip|background|before|after)\s*(.*?)\s*-->$/.exec(lines[j]!);
      if (!m) break;
      const [, kind, arg] = m;
      if (kind === 'skip') block.skip = arg || 'skipped';
      else if (kind === 'background') block.background = arg || `background-${i + 1}`;
      else block[kind as 'before' | 'after'].unshift(arg!);
    }
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    block.code = body.join('\n');
    blocks.push(block);
  }
  return blocks;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The bash script that runs the blocks; exported for the test to show what failed. */
export function scriptFor(blocks: ReadmeBlock[], ports: { api: number; node: number; hpfeeds: number }, fresh: boolean): string {
  const ported = (s: string) =>
    s.replace(/\b8080\b/g, String(ports.api)).replace(/\b9001\b/g, String(ports.node)).replace(/\b10000\b/g, String(ports.hpfeeds));
  const fast = (s: string) => (fresh ? s : s.replace(/\bnpm ci\b[^&;|\n]*/g, 'true'));
  const out = [
    'set -eo pipefail',
    'set -m', // background blocks get their own process group, so they can be stopped whole
    'bg_pids=()',
    'stop_bg() { for p in "${bg_pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done; for p in "${bg_pids[@]}"; do for i in $(seq 1 200); do kill -0 -- "-$p" 2>/dev/null || break; sleep 0.1; done; kill -KILL -- "-$p" 2>/dev/null || true; done; }',
    'trap stop_bg EXIT',
    'wait_for() { local what="$1"; for i in $(seq 1 $((CHECK_WAIT_SECONDS * 4))); do if ( eval "$what" ) >/dev/null 2>&1; then return 0; fi; sleep 0.25; done; echo "readme-check: timed out waiting for: $what" >&2; return 1; }',
  ];
  for (const b of blocks) {
    if (b.skip) {
      out.push(`echo ${shellQuote(`### README line ${b.line}: skipped (${b.skip})`)}`);
      continue;
    }
    for (const c of b.before) out.push(`wait_for ${shellQuote(ported(c))}`);
    const code = fast(ported(b.code));
    // A leading newline: curl's JSON answers end without one.
    out.push(`printf '\\n%s\\n' ${shellQuote(`### README line ${b.line}${b.background ? ` (background: ${b.background})` : ''}`)}`);
    if (b.background) {
      out.push(`( set -e\n${code}\n) > "$CHECK_DIR/${b.background}.log" 2>&1 &`, 'bg_pids+=($!)');
    } else {
      out.push(code);
    }
    for (const c of b.after) out.push(`wait_for ${shellQuote(ported(c))}`);
  }
  out.push('echo "### every README block ran"');
  return `${out.join('\n')}\n`;
}

export interface CheckResult {
  code: number;
  output: string;
  workDir: string;
}

/** Copies the repository, runs the README's blocks in the copy, and returns what happened. */
export async function runReadmeCheck(opts: { fresh?: boolean; keep?: boolean; log?: (s: string) => void } = {}): Promise<CheckResult> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const work = mkdtempSync(join(tmpdir(), 'apiary-readme-'));
  const checkDir = join(work, '.readme-check');
  mkdirSync(checkDir);
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean);
  for (const f of files) {
    try {
      cpSync(join(root, f), join(work, f), { recursive: true });
    } catch (err) {
      // A tracked file deleted in the working tree is not part of the checkout.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  if (!opts.fresh) symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));

  const ports = { api: await freePort(), node: await freePort(), hpfeeds: await freePort() };
  const blocks = readmeBlocks(readFileSync(join(root, 'README.md'), 'utf8'));
  const script = scriptFor(blocks, ports, opts.fresh ?? false);
  writeFileSync(join(checkDir, 'run.sh'), script);

  const env: Record<string, string | undefined> = {
    ...process.env,
    CHECK_DIR: checkDir,
    // A real `npm ci` (--fresh) compiles better-sqlite3 before the core can answer.
    CHECK_WAIT_SECONDS: opts.fresh ? '900' : '120',
    API_HOST: '127.0.0.1',
    API_PORT: String(ports.api),
    NODE_TCP_HOST: '127.0.0.1',
    NODE_TCP_PORT: String(ports.node),
    HPFEEDS_ENDPOINTS: `tcp:port=${ports.hpfeeds}:interface=127.0.0.1`,
    LOG_FORMAT: 'json',
    NPM_CONFIG_PREFIX: join(work, '.npm-global'),
    PATH: `${join(work, '.npm-global', 'bin')}:${process.env.PATH ?? ''}`,
    NO_COLOR: '1',
  };
  for (const k of ['APIARY_DATA_DIR', 'APIARY_DB', 'REDIS_URL', 'NODE_OPTIONS', 'npm_command', 'npm_lifecycle_event', 'ENROLLMENT_MODE']) delete env[k];

  const child = spawn('bash', [join(checkDir, 'run.sh')], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  process.on('exit', killGroup);
  let output = '';
  const take = (d: Buffer) => {
    output += d;
    opts.log?.(d.toString());
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const code = await new Promise<number>((res) => child.once('exit', (c, s) => res(c ?? (s ? 128 : 1))));
  process.off('exit', killGroup);
  if (code !== 0) {
    for (const b of blocks.filter((x) => x.background)) {
      try {
        output += `\n--- ${b.background}.log ---\n${readFileSync(join(checkDir, `${b.background}.log`), 'utf8').slice(-3000)}`;
      } catch {
        // It never started.
      }
    }
  }
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  return { code, output, workDir: work };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  let streamed = 0;
  const result = await runReadmeCheck({
    fresh: args.includes('--fresh'),
    keep: args.includes('--keep'),
    log: (s) => {
      streamed += s.length;
      process.stdout.write(s);
    },
  });
  // On failure the background blocks' logs are appended after the run.
  process.stdout.write(result.output.slice(streamed));
  if (args.includes('--keep')) process.stdout.write(`kept ${result.workDir}\n`);
  process.exitCode = result.code;
}
