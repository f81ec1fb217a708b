// Outputs in the composed core: OUTPUTS_FILE is validated at start, committed events reach every
// output, and a network output's backlog left at shutdown is delivered after the next start.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildCore, type Core } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { StartupError } from '../../src/startup.js';
import { potEvent } from '../events/helpers.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { startTestRsyslog, type TestRsyslog } from '../helpers/rsyslog.js';
import { tempDir } from '../helpers/tmp.js';
import { parseCef } from './cef-parser.js';
import { waitFor } from './helpers.js';

const tmp = tempDir('apiary-outputs-core-');
let redis: TestRedis;
let rs: TestRsyslog;
before(async () => {
  [redis, rs] = await Promise.all([startTestRedis({ appendOnly: false }), startTestRsyslog()]);
});
after(async () => {
  await rs?.dispose();
  await redis?.dispose();
  tmp.cleanup();
});

function config(dataDir: string, env: Record<string, string>) {
  return loadConfig(
    ['--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'],
    { APIARY_DATA_DIR: dataDir, LOG_LEVEL: 'silent', REDIS_URL: redis.url, ...env },
  );
}

const command = (i: number) =>
  potEvent('node-x', { event_type: 'cowrie.command.input', data: { eventid: 'cowrie.command.input', session: 'sx', src_ip: '198.51.100.4', input: `echo ${i} a=b|c\\d` } });
const seqs = () => rs.lines().filter((l) => l.appName === 'apiary-core').map((l) => Number(/"echo (\d+) /.exec(l.msg)?.[1] ?? -1));
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('outputs in the core', () => {
  it('refuses to start on a bad outputs file, naming the file, the output and the field', async () => {
    const file = join(tmp.path, 'bad-outputs.json');
    writeFileSync(file, JSON.stringify([{ name: 'siem', type: 'syslog', host: 'x', transport: 'carrier-pigeon' }]));
    await assert.rejects(buildCore(config(join(tmp.path, 'bad'), { OUTPUTS_FILE: file })), (err: Error) => {
      assert.ok(err instanceof StartupError);
      assert.match(err.message, /bad-outputs\.json: outputs\[0\]\.transport \(siem\): .*OUTPUTS_FILE \/ --outputs-file/);
      return true;
    });
  });

  it('writes committed events to its outputs and delivers a backlog left at shutdown after restart', async () => {
    const dataDir = join(tmp.path, 'data');
    const file = join(tmp.path, 'outputs.json');
    const cefFile = join(tmp.path, 'attacks.cef');
    writeFileSync(
      file,
      JSON.stringify({
        outputs: [
          { name: 'cef-file', type: 'file', path: cefFile, format: 'cef', filter: { channels: ['cowrie.events'] } },
          { name: 'siem', type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: rs.tcpPort, appName: 'apiary-core', format: 'json', retry: { initialMs: 50, maxMs: 300 } },
        ],
      }),
    );
    let core: Core = await buildCore(config(dataDir, { OUTPUTS_FILE: file }));
    try {
      for (let i = 0; i < 10; i++) core.events.ingest(command(i));
      assert.equal(await core.events.flush(), true);
      await waitFor(() => seqs().length === 10, 10_000, 'syslog lines');
      assert.deepEqual(seqs(), range(0, 10));
      const cef = readFileSync(cefFile, 'utf8').trim().split('\n').map(parseCef);
      assert.equal(cef.length, 10);
      assert.equal(cef[0]!.vendor, 'Apiary');
      assert.equal(cef[3]!.ext.get('cs6'), 'echo 3 a=b|c\\d');
      assert.equal(cef[3]!.ext.get('src'), '198.51.100.4');
      const metrics = await core.registry.getSingleMetric('apiary_output_sent_total')!.get();
      assert.equal(metrics.values.find((v) => v.labels.output === 'siem')?.value, 10);

      await rs.stop();
      await new Promise((r) => setTimeout(r, 200));
      for (let i = 10; i < 30; i++) core.events.ingest(command(i));
      assert.equal(await core.events.flush(), true);
      await new Promise((r) => setTimeout(r, 300));
      await core.close();
      await rs.start();
      core = await buildCore(config(dataDir, { OUTPUTS_FILE: file }));
      await waitFor(() => seqs().length >= 30, 10_000, 'backlog delivered after the core restarted');
      assert.deepEqual(seqs(), range(0, 30));
    } finally {
      await core.close();
    }
  });
});
