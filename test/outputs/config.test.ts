import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { describeOutputs, loadOutputs, parseOutputs } from '../../src/outputs/index.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('apiary-outputs-config-');
after(() => tmp.cleanup());

describe('outputs config', () => {
  it('fills defaults', () => {
    const [o] = parseOutputs('[{"name":"s","type":"syslog","host":"127.0.0.1"}]', 'OUTPUTS');
    assert.equal(o!.type, 'syslog');
    if (o!.type !== 'syslog') return;
    assert.equal(o.transport, 'tcp');
    assert.equal(o.port, 514);
    assert.equal(o.format, 'json');
    assert.equal(o.backlog.maxBytes, 256 * 1024 * 1024);
    assert.equal(o.backlog.fsync, 'interval');
    assert.equal(o.retry.maxMs, 60_000);
  });

  it('names the file, the output and the bad field', () => {
    const file = join(tmp.path, 'outputs.json');
    writeFileSync(file, JSON.stringify({ outputs: [{ name: 'ok', type: 'file', path: '/tmp/x' }, { name: 'siem', type: 'syslog', host: 'h', port: 70000 }] }));
    assert.throws(() => loadOutputs(file, undefined), (err: Error) => {
      assert.match(err.message, /^outputs file .*outputs\.json: outputs\[1\]\.port \(siem\): /);
      return true;
    });
    assert.throws(() => parseOutputs('[{"name":"x","type":"nope"}]', 'OUTPUTS'), /OUTPUTS: outputs\[0\]\.type \(x\)/);
    assert.throws(() => parseOutputs('{', 'OUTPUTS'), /OUTPUTS: not JSON/);
    assert.throws(() => parseOutputs('[{"name":"e","type":"elasticsearch","url":"http://x","index":"i","format":"cef"}]', 'OUTPUTS'), /use json or raw_json/);
    assert.throws(() => parseOutputs('[{"name":"a","type":"file","path":"p"},{"name":"a","type":"file","path":"q"}]', 'OUTPUTS'), /two outputs are named a/);
    assert.throws(() => loadOutputs(join(tmp.path, 'missing.json'), undefined), /missing\.json: cannot read it: ENOENT/);
  });

  it('masks secrets when described', () => {
    const outs = parseOutputs(
      JSON.stringify([
        { name: 'hec', type: 'splunk_hec', url: 'https://splunk:8088', token: 'hec-secret-token' },
        { name: 'es', type: 'elasticsearch', url: 'https://user:urlpass@es:9200', index: 'apiary', password: 'espass', username: 'u' },
        { name: 'hook', type: 'webhook', url: 'https://hooks.example/x', headers: { 'x-api-key': 'hooksecret' } },
      ]),
      'OUTPUTS',
    );
    const text = JSON.stringify(describeOutputs(outs));
    for (const secret of ['hec-secret-token', 'urlpass', 'espass', 'hooksecret']) assert.ok(!text.includes(secret), `${secret} in ${text}`);
    assert.ok(text.includes('x-api-key'));
  });
});
