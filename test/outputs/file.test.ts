import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { normaliseEvent } from '../../src/analytics/index.js';
import { createOutputs, parseOutputs } from '../../src/outputs/index.js';
import { RotatingFile } from '../../src/outputs/file.js';
import { tempDir } from '../helpers/tmp.js';
import { parseCef } from './cef-parser.js';
import { commandEvent, seqOf } from './helpers.js';

const tmp = tempDir('apiary-outputs-file-');
after(() => tmp.cleanup());
const logger = pino({ level: 'silent' });

describe('file output', () => {
  it('writes each output in its own format, filtered, one line per record', async () => {
    const registry = new Registry();
    const outputs = createOutputs({
      outputs: parseOutputs(
        JSON.stringify({
          outputs: [
            { name: 'all-json', type: 'file', path: join(tmp.path, 'all.json'), format: 'json' },
            { name: 'cef-node-b', type: 'file', path: join(tmp.path, 'b.cef'), format: 'cef', filter: { nodes: ['node-b'] } },
            { name: 'raw', type: 'file', path: join(tmp.path, 'raw.log'), format: 'raw_json', filter: { channels: ['cowrie.events'] } },
            { name: 'splunk-other', type: 'file', path: join(tmp.path, 's.log'), format: 'splunk', filter: { potTypes: ['dionaea'] } },
          ],
        }),
        'test',
      ),
      dataDir: tmp.path,
      registry,
      logger,
      normalise: normaliseEvent,
      channelsFor: (potType) => [`${potType}.events`],
    });
    outputs.handle([commandEvent(1), commandEvent(2, { node: 'node-b' })]);
    outputs.handle([commandEvent(3)]);
    await outputs.close();
    const lines = (f: string) => readFileSync(join(tmp.path, f), 'utf8').split('\n').filter(Boolean);
    assert.deepEqual(lines('all.json').map((l) => seqOf(JSON.parse(l).command)), [1, 2, 3]);
    const cef = lines('b.cef');
    assert.equal(cef.length, 1);
    const c = parseCef(cef[0]!);
    assert.ok(c.prefix.startsWith('2026-12-01T02:00:00.002Z'), c.prefix);
    assert.equal(c.ext.get('cs6'), 'echo 2 a=b|c\\d');
    assert.equal(c.ext.get('dvchost'), 'node-b');
    assert.deepEqual(lines('raw.log').map((l) => JSON.parse(l).input), ['echo 1 a=b|c\\d', 'echo 2 a=b|c\\d', 'echo 3 a=b|c\\d']);
    assert.deepEqual(lines('raw.log')[0], commandEvent(1).dataJson);
    assert.equal(existsSync(join(tmp.path, 's.log')) ? lines('s.log').length : 0, 0);
    const sent = (await registry.getSingleMetric('apiary_output_sent_total')!.get()).values;
    assert.equal(sent.find((v) => v.labels.output === 'all-json')?.value, 3);
    assert.equal(sent.find((v) => v.labels.output === 'cef-node-b')?.value, 1);
  });

  it('rotates by size, keeping <path>.1 ... <path>.<keep>', () => {
    const path = join(tmp.path, 'size.log');
    const f = new RotatingFile(path, { by: 'size', maxBytes: 1024, keep: 2 });
    const line = Buffer.from(`${'x'.repeat(299)}\n`);
    for (let i = 0; i < 12; i++) f.write(line);
    f.close();
    const files = readdirSync(tmp.path).filter((x) => x.startsWith('size.log')).sort();
    assert.deepEqual(files, ['size.log', 'size.log.1', 'size.log.2']);
    for (const x of files) assert.ok(readFileSync(join(tmp.path, x)).length <= 1024);
  });

  it('rotates by time at the first write of a new UTC period, keeping the newest ones', () => {
    const path = join(tmp.path, 'time.log');
    let now = Date.UTC(2026, 10, 28, 23, 0, 0);
    const f = new RotatingFile(path, { by: 'time', every: 'day', keep: 2 }, () => now);
    for (let d = 0; d < 4; d++) {
      f.write(Buffer.from(`day ${d}\n`));
      now += 86_400_000;
    }
    f.close();
    const files = readdirSync(tmp.path).filter((x) => x.startsWith('time.log')).sort();
    assert.deepEqual(files, ['time.log', 'time.log.2026-11-29', 'time.log.2026-11-30']);
    assert.equal(readFileSync(join(tmp.path, 'time.log.2026-11-30'), 'utf8'), 'day 2\n');
    assert.equal(readFileSync(path, 'utf8'), 'day 3\n');
  });
});
