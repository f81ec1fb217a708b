// The composed core as `apiary serve` builds it, for tests that go through HTTP: every listener on
// 127.0.0.1 port 0, a temp data dir, and a private redis-server tracked by ./children.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCore, type Core, type CoreOptions } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { startTestRedis, type TestRedis } from './redis.js';
import { tempDir } from './tmp.js';

export interface TestCore {
  core: Core;
  base: string;
  dataDir: string;
  adminToken: string;
  redis: TestRedis;
  /** fetch against the API with an optional bearer token (or other headers: cookie, CSRF); JSON bodies are parsed. */
  api(method: string, path: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export async function startTestCore(opts: { args?: string[]; env?: Record<string, string>; core?: CoreOptions } = {}): Promise<TestCore> {
  const dir = tempDir('apiary-core-');
  const redis = await startTestRedis({ appendOnly: false });
  try {
    const config = loadConfig(
      [
        '--api-host', '127.0.0.1', '--api-port', '0',
        '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0',
        '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1',
        ...(opts.args ?? []),
      ],
      { APIARY_DATA_DIR: dir.path, LOG_LEVEL: 'silent', REDIS_URL: redis.url, ...opts.env },
    );
    const core = await buildCore(config, opts.core);
    const base = `http://127.0.0.1:${core.addresses.api.port}`;
    const adminToken = opts.env?.APIARY_ADMIN_TOKEN ?? readFileSync(join(dir.path, 'admin-token'), 'utf8').trim();
    return {
      core,
      base,
      dataDir: dir.path,
      adminToken,
      redis,
      async api(method, path, { token, body, headers } = {}) {
        const res = await fetch(`${base}${path}`, {
          method,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...headers,
          },
          body: body !== undefined ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          // not JSON (metrics)
        }
        return { status: res.status, body: parsed, headers: res.headers };
      },
      async close() {
        await core.close();
        await redis.dispose();
        dir.cleanup();
      },
    };
  } catch (err) {
    await redis.dispose();
    dir.cleanup();
    throw err;
  }
}

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
