import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureLines as readFixture } from '../helpers/fixture.js';
import { quoteInexactNumbers } from '../../src/protocol/index.js';
import {
  decodeCoreMessage,
  encodeCoreMessage,
  encodeNodeCommand,
  encodeNodeMessage,
  encodeRegistrationAck,
  isPotEventShaped,
  nodeCommandSchema,
  parseNodeMessage,
  type NodeMessage,
  type PotStatusUpdateMsg,
} from '../../src/protocol/index.js';

const fixtureLines = readFixture();

const A = '1414008881705812362';
const B = '12891250069694539331';
const C = '14785549535896761747';
const D = '14777866485451059876';

// What every fixture line must become. 'core' lines are core -> node and go through decodeCoreMessage.
const expected: Array<{ node: NodeMessage } | { core: unknown }> = [
  { node: { type: 'NodeRegistration', node_id: A, node_name: 'hb-test-node', address: '0.0.0.0', port: 8080, node_type: 'Full', totp_code: '036866' } },
  { node: { type: 'NodeRegistration', node_id: B, node_name: 'hb-test-node', address: '0.0.0.0', port: 8080, node_type: 'Full', totp_code: '789426' } },
  { node: { type: 'NodeRegistration', node_id: A, node_name: 'hb-test-node', address: '0.0.0.0', port: 8080, node_type: 'Full' } },
  { core: { type: 'RegistrationAck', node_id: A, accepted: true, message: 'Registration successful', totp_key: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' } },
  { core: { type: 'RegistrationAck', node_id: C, accepted: false, message: 'TOTP code invalid' } },
  { node: { type: 'NodeStatusUpdate', node_id: A, status: 'Running' } },
  {
    core: {
      type: 'NodeCommand',
      node_id: C,
      command: { InstallPot: { pot_id: 'cowrie-01', honeypot_type: 'cowrie', git_url: null, git_branch: null, config: { ssh_port: '2222' }, auto_start: true } },
    },
  },
  { node: { type: 'PotStatusUpdate', node_id: A, pot_id: 'pot-01', pot_type: 'testpot', status: 'Installing', message: 'Status: Installing - Installing from HoneyBee PotStore...' } },
  { node: { type: 'PotStatusUpdate', node_id: A, pot_id: 'pot-01', pot_type: 'testpot', status: 'Stopped', message: 'Status: Stopped - Installation complete' } },
  { node: { type: 'PotStatusUpdate', node_id: A, pot_id: 'pot-01', pot_type: 'testpot', status: 'Running', message: 'Status: Running - testpot honeypot started' } },
  { node: { type: 'PotStatusUpdate', node_id: D, pot_id: 'pot-01', pot_type: 'testpot', status: 'Failed', message: 'Status: Failed - Git clone failed: exit status 128' } },
  { core: { type: 'NodeCommand', node_id: A, command: { DeployPot: 'pot-01' } } },
  { core: { type: 'NodeCommand', node_id: A, command: { StopPot: 'pot-01' } } },
  { node: { type: 'PotStatusUpdate', node_id: A, pot_id: 'pot-01', pot_type: 'testpot', status: 'Stopped', message: 'Status: Stopped - Honeypot stopped' } },
  { core: { type: 'NodeCommand', node_id: A, command: { GetPotStatus: 'pot-01' } } },
  { node: { type: 'PotStatusUpdate', node_id: A, pot_id: 'pot-01', pot_type: 'testpot', status: 'Running' } },
  { core: { type: 'NodeCommand', node_id: A, command: { GetInstalledPots: {} } } },
  { core: { type: 'NodeCommand', node_id: A, command: { Restart: {} } } },
  { node: { type: 'NodeEvent', event: 'Started' } },
  { node: { type: 'NodeEvent', event: 'Error', message: 'Failed to get pot status: pot nope not found' } },
  { node: { type: 'PotStatusUpdate', node_id: A, pot_id: 'pot-01', pot_type: '', status: '', message: 'login attempt [root/123456] failed' } },
  { node: { type: 'PotStatusUpdate', node_id: A, pot_id: 'pot-01', pot_type: '', status: '', message: 'CMD: uname -a; echo <x> & y' } },
  { node: { type: 'PotStatusUpdate', node_id: A, pot_id: 'pot-01', pot_type: 'testpot', status: '' } },
  { node: { type: 'NodeDrop' } },
];

function envelope(variant: string, body: string): string {
  return `{"version":2,"message":{"${variant}":${body}}}`;
}

function mustParse(text: string): NodeMessage {
  const r = parseNodeMessage(text);
  assert.ok(r.ok, `expected ok for ${text}: ${r.ok ? '' : r.error}`);
  return r.message;
}

function mustFail(text: string, reason: string, pattern: RegExp): void {
  const r = parseNodeMessage(text);
  assert.equal(r.ok, false, `expected failure for ${text}`);
  if (r.ok) return;
  assert.equal(r.reason, reason, r.error);
  assert.match(r.error, pattern);
}

describe('fixture replay', () => {
  it('covers every fixture line', () => {
    assert.equal(fixtureLines.length, expected.length);
  });

  fixtureLines.forEach((line, i) => {
    const want = expected[i]!;
    if ('node' in want) {
      it(`line ${i + 1}: node -> core ${want.node.type} parses and re-encodes byte-identical`, () => {
        assert.deepEqual(mustParse(line), want.node);
        assert.equal(encodeNodeMessage(want.node), line);
        assert.equal(decodeCoreMessage(line).ok, false, 'a node message is not a core message');
      });
    } else {
      it(`line ${i + 1}: core -> node decodes and re-encodes byte-identical`, () => {
        const r = decodeCoreMessage(line);
        assert.ok(r.ok, r.ok ? '' : r.error);
        assert.deepEqual(r.message, want.core);
        assert.equal(encodeCoreMessage(r.message), line);
        const n = parseNodeMessage(line);
        assert.equal(n.ok, false);
        if (!n.ok) assert.match(n.error, /core -> node message/);
      });
    }
  });

  it('encodeRegistrationAck and encodeNodeCommand write the fixture lines from plain values', () => {
    assert.equal(
      encodeRegistrationAck({ node_id: A, accepted: true, message: 'Registration successful', totp_key: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' }),
      fixtureLines[3],
    );
    assert.equal(encodeRegistrationAck({ node_id: C, accepted: false, message: 'TOTP code invalid' }), fixtureLines[4]);
    // git_url/git_branch absent -> null, exactly like the real core
    assert.equal(
      encodeNodeCommand(C, { InstallPot: { pot_id: 'cowrie-01', honeypot_type: 'cowrie', config: { ssh_port: '2222' }, auto_start: true } }),
      fixtureLines[6],
    );
    assert.equal(encodeNodeCommand(A, { GetInstalledPots: {} }), fixtureLines[16]);
    assert.equal(encodeNodeCommand(A, { Restart: {} }), fixtureLines[17]);
  });
});

describe('node_id precision', () => {
  const ids = ['0', '1', '9007199254740993', B, '9223372036854775808', '18446744073709551614', '18446744073709551615'];
  for (const id of ids) {
    it(`round-trips ${id} exactly`, () => {
      const line = envelope('NodeStatusUpdate', `{"node_id":${id},"status":"Running"}`);
      const m = mustParse(line);
      assert.equal(m.type === 'NodeStatusUpdate' && m.node_id, id);
      assert.equal(encodeNodeMessage(m), line);
      const ack = encodeRegistrationAck({ node_id: id, accepted: true });
      assert.equal(ack, `{"version":2,"message":{"RegistrationAck":{"node_id":${id},"accepted":true}}}`);
      const back = decodeCoreMessage(ack);
      assert.ok(back.ok && back.message.node_id === id);
      const cmd = encodeNodeCommand(id, { DeployPot: 'p' });
      assert.ok(cmd.includes(`"node_id":${id},`));
    });
  }

  it('tolerates whitespace around the node_id value', () => {
    const m = mustParse(`{ "version" : 2 , "message" : { "NodeStatusUpdate" : { "node_id" :\n\t${B} , "status" : "Running" } } }`);
    assert.equal(m.type === 'NodeStatusUpdate' && m.node_id, B);
  });

  it('rejects out-of-range, negative, fractional, exponent and string node_ids precisely', () => {
    const line = (id: string) => envelope('NodeStatusUpdate', `{"node_id":${id},"status":"Running"}`);
    mustFail(line('18446744073709551616'), 'schema', /node_id: 18446744073709551616 is out of u64 range/);
    mustFail(line('99999999999999999999999'), 'schema', /out of u64 range/);
    mustFail(line('-1'), 'schema', /node_id: -1 is negative/);
    mustFail(line('1.5'), 'schema', /node_id: 1\.5 is not an integer/);
    mustFail(line('1e3'), 'schema', /not an integer/);
    mustFail(line('"123"'), 'schema', /node_id: must be a bare JSON integer \(u64\), not a string/);
    mustFail(line('null'), 'schema', /node_id: node_id must be a bare JSON integer/);
    mustFail(line('true'), 'schema', /node_id must be a bare JSON integer/);
    mustFail(line('01'), 'json', /invalid JSON/);
    mustFail(line('-'), 'json', /invalid JSON/);
    mustFail(envelope('NodeStatusUpdate', '{"status":"Running"}'), 'schema', /node_id/);
  });

  it('leaves "node_id" inside strings and nested data alone', () => {
    const tricky = '\\"node_id\\":18446744073709551615, \\\\\\"node_id\\\\\\":5';
    const m = mustParse(
      envelope(
        'PotEvent',
        `{"node_id":${B},"pot_id":"p\\"node_id\\":1","pot_type":"cowrie","event_type":"x","timestamp":"2024-01-01T00:00:00Z",` +
          `"data":{"node_id":7,"nested":{"node_id":8},"list":[{"node_id":9}],"text":"${tricky}"}}`,
      ),
    );
    assert.equal(m.type, 'PotEvent');
    if (m.type !== 'PotEvent') return;
    assert.equal(m.node_id, B);
    assert.equal(m.pot_id, 'p"node_id":1');
    assert.deepEqual(m.data, { node_id: 7, nested: { node_id: 8 }, list: [{ node_id: 9 }], text: '"node_id":18446744073709551615, \\"node_id\\":5' });
  });

  it('a key that only ends in node_id is not node_id', () => {
    const m = mustParse(envelope('NodeStatusUpdate', `{"xnode_id":5,"node_id":${B},"status":"Running"}`));
    assert.equal(m.type === 'NodeStatusUpdate' && m.node_id, B);
  });
});

describe('envelope and version errors', () => {
  it('rejects other protocol versions with a precise error', () => {
    mustFail('{"version":1,"message":{"NodeDrop":{}}}', 'version', /unsupported protocol version 1: only version 2/);
    mustFail('{"version":3,"message":{"NodeDrop":{}}}', 'version', /version 3/);
    mustFail('{"version":"2","message":{"NodeDrop":{}}}', 'version', /version "2"/);
    mustFail('{"version":2.5,"message":{"NodeDrop":{}}}', 'version', /version 2\.5/);
  });

  it('rejects broken envelopes', () => {
    mustFail('', 'json', /invalid JSON/);
    mustFail('{"version":2,', 'json', /invalid JSON/);
    mustFail('[1,2]', 'envelope', /must be a JSON object/);
    mustFail('null', 'envelope', /must be a JSON object/);
    mustFail('"NodeDrop"', 'envelope', /must be a JSON object/);
    mustFail('{"message":{"NodeDrop":{}}}', 'envelope', /no "version"/);
    mustFail('{"version":2}', 'envelope', /no "message"/);
    mustFail('{"version":2,"message":[]}', 'envelope', /one variant key/);
    mustFail('{"version":2,"message":{}}', 'envelope', /exactly one variant key, got 0/);
    mustFail('{"version":2,"message":{"NodeDrop":{},"NodeEvent":"Started"}}', 'envelope', /exactly one variant key, got 2 \("NodeDrop", "NodeEvent"\)/);
    mustFail('{"version":2,"message":{"Bogus":{}}}', 'schema', /unknown message variant "Bogus"/);
    mustFail('{"version":2,"message":"Bogus"}', 'schema', /unknown message variant/);
    mustFail('{"version":2,"message":"NodeEvent"}', 'schema', /NodeEvent: needs a body/);
  });

  it('never throws on non-string input from careless JS callers', () => {
    for (const bad of [undefined, null, 5, {}, Buffer.from('{}')]) {
      const r = parseNodeMessage(bad as unknown as string);
      assert.equal(r.ok, false);
      const c = decodeCoreMessage(bad as unknown as string);
      assert.equal(c.ok, false);
    }
  });
});

describe('node -> core variants', () => {
  it('NodeRegistration validates port, node_type and name', () => {
    const reg = (o: string) => envelope('NodeRegistration', `{"node_id":1,"node_name":"n","address":"a","port":8080,"node_type":"Full"${o}}`);
    assert.equal(mustParse(reg(',"totp_code":null')).type, 'NodeRegistration');
    assert.equal('totp_code' in mustParse(reg(',"totp_code":null')), false);
    mustFail(envelope('NodeRegistration', '{"node_id":1,"node_name":"n","address":"a","port":70000,"node_type":"Full"}'), 'schema', /NodeRegistration\.port/);
    mustFail(envelope('NodeRegistration', '{"node_id":1,"node_name":"n","address":"a","port":1,"node_type":"Half"}'), 'schema', /node_type/);
    mustFail(envelope('NodeRegistration', '{"node_id":1,"node_name":"","address":"a","port":1,"node_type":"Full"}'), 'schema', /node_name/);
    mustFail(envelope('NodeRegistration', '{"node_id":1,"node_name":"a\\nb","address":"a","port":1,"node_type":"Full"}'), 'schema', /control characters/);
  });

  it('unknown extra fields are ignored, like serde and Go do', () => {
    const m = mustParse(envelope('NodeStatusUpdate', '{"node_id":1,"status":"Stopped","uptime":5}'));
    assert.deepEqual(m, { type: 'NodeStatusUpdate', node_id: '1', status: 'Stopped' });
  });

  it('PotStatusUpdate with empty status is event-shaped; real statuses are not', () => {
    const ev = mustParse(fixtureLines[20]!) as PotStatusUpdateMsg;
    assert.equal(isPotEventShaped(ev), true);
    const st = mustParse(fixtureLines[9]!) as PotStatusUpdateMsg;
    assert.equal(isPotEventShaped(st), false);
    mustFail(envelope('PotStatusUpdate', '{"node_id":1,"pot_id":"p","pot_type":"","status":"Exploded"}'), 'schema', /status/);
    const noType = mustParse(envelope('PotStatusUpdate', '{"node_id":1,"pot_id":"p","status":""}'));
    assert.equal(noType.type === 'PotStatusUpdate' && noType.pot_type, '');
  });

  it('PotEvent (documented form) keeps its data object', () => {
    const data = { eventid: 'cowrie.login.failed', username: 'root', password: '123456', src_port: 40000, ok: false };
    const m = mustParse(
      envelope('PotEvent', `{"node_id":${B},"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2024-05-01T10:00:00.123Z","data":${JSON.stringify(data)}}`),
    );
    // the compact Go form takes the hot path, which also keeps data's JSON text as received
    assert.deepEqual(m, {
      type: 'PotEvent', node_id: B, pot_id: 'cowrie-01', pot_type: 'cowrie', event_type: 'cowrie.login.failed', timestamp: '2024-05-01T10:00:00.123Z', data,
      dataJson: JSON.stringify(data),
    });
    mustFail(envelope('PotEvent', '{"node_id":1,"pot_id":"p","pot_type":"c","event_type":"e","timestamp":"t","data":[1]}'), 'schema', /PotEvent\.data/);
    const nullData = mustParse(envelope('PotEvent', '{"node_id":1,"pot_id":"p","pot_type":"c","event_type":"e","timestamp":"t","data":null}'));
    assert.deepEqual(nullData.type === 'PotEvent' && nullData.data, {});
  });

  it('NodeEvent: real typed form and both serde forms', () => {
    assert.deepEqual(mustParse(envelope('NodeEvent', '{"type":"Error","message":"m","description":"d"}')), { type: 'NodeEvent', event: 'Error', message: 'm', description: 'd' });
    assert.deepEqual(mustParse(envelope('NodeEvent', '{"type":"Alarm","message":null}')), { type: 'NodeEvent', event: 'Alarm' });
    assert.deepEqual(mustParse(envelope('NodeEvent', '"Started"')), { type: 'NodeEvent', event: 'Started' });
    assert.deepEqual(mustParse(envelope('NodeEvent', '{"Error":{"message":"disk full"}}')), { type: 'NodeEvent', event: 'Error', message: 'disk full' });
    assert.deepEqual(mustParse(envelope('NodeEvent', '{"Stopped":null}')), { type: 'NodeEvent', event: 'Stopped' });
    assert.deepEqual(mustParse(envelope('NodeEvent', '{"Stopped":{}}')), { type: 'NodeEvent', event: 'Stopped' });
    mustFail(envelope('NodeEvent', '{"Error":{"message":"a"},"Alarm":{}}'), 'schema', /NodeEvent/);
    mustFail(envelope('NodeEvent', '{"Error":"oops"}'), 'schema', /NodeEvent\.Error/);
    mustFail(envelope('NodeEvent', '{"type":5}'), 'schema', /NodeEvent\.type/);
    mustFail(envelope('NodeEvent', '""'), 'schema', /NodeEvent/);
    mustFail(envelope('NodeEvent', '7'), 'schema', /NodeEvent/);
  });

  it('NodeDrop: {}, null and the bare string', () => {
    for (const t of ['{"version":2,"message":{"NodeDrop":{}}}', '{"version":2,"message":{"NodeDrop":null}}', '{"version":2,"message":"NodeDrop"}']) {
      assert.deepEqual(mustParse(t), { type: 'NodeDrop' });
    }
    mustFail('{"version":2,"message":{"NodeDrop":5}}', 'schema', /NodeDrop/);
    assert.equal(encodeNodeMessage({ type: 'NodeDrop' }, { nodeDropForm: 'string' }), '{"version":2,"message":"NodeDrop"}');
    assert.equal(encodeNodeMessage({ type: 'NodeDrop' }, { nodeDropForm: 'null' }), '{"version":2,"message":{"NodeDrop":null}}');
  });

  it('encodeNodeMessage serde NodeEvent forms parse back to the same message', () => {
    for (const m of [
      { type: 'NodeEvent', event: 'Started' },
      { type: 'NodeEvent', event: 'Error', message: 'm', description: 'd' },
    ] as NodeMessage[]) {
      const line = encodeNodeMessage(m, { nodeEventForm: 'serde' });
      assert.deepEqual(mustParse(line), m);
    }
    assert.equal(encodeNodeMessage({ type: 'NodeEvent', event: 'Started' }, { nodeEventForm: 'serde' }), '{"version":2,"message":{"NodeEvent":"Started"}}');
  });
});

describe('core -> node encoding', () => {
  it('unit commands are always {"Name":{}}', () => {
    for (const name of ['Restart', 'UpdateConfig', 'GetInstalledPots'] as const) {
      const line = encodeNodeCommand('5', { [name]: {} } as never);
      assert.equal(line, `{"version":2,"message":{"NodeCommand":{"node_id":5,"command":{"${name}":{}}}}}`);
    }
    assert.throws(() => encodeNodeCommand('5', 'Restart' as never), /unit commands are never bare strings/);
  });

  it('pot commands carry the pot_id string', () => {
    for (const name of ['DeployPot', 'StopPot', 'RestartPot', 'GetPotStatus', 'GetPotInfo', 'GetPotLogs', 'GetPotMetrics'] as const) {
      const line = encodeNodeCommand('5', { [name]: 'pot "1"' } as never);
      assert.equal(line, `{"version":2,"message":{"NodeCommand":{"node_id":5,"command":{"${name}":"pot \\"1\\""}}}}`);
      const back = decodeCoreMessage(line);
      assert.ok(back.ok);
      assert.deepEqual(back.message, { type: 'NodeCommand', node_id: '5', command: { [name]: 'pot "1"' } });
    }
  });

  it('refuses to encode what a node would choke on', () => {
    assert.throws(() => encodeNodeCommand('-1', { Restart: {} }), /negative/);
    assert.throws(() => encodeNodeCommand('18446744073709551616', { Restart: {} }), /out of u64 range/);
    assert.throws(() => encodeNodeCommand(5 as never, { Restart: {} }), /decimal string/);
    assert.throws(() => encodeNodeCommand('5', { DeployPot: '' }), /pot_id must not be empty/);
    assert.throws(() => encodeNodeCommand('5', { DeployPot: 'a', StopPot: 'b' } as never), /exactly one variant, got DeployPot, StopPot/);
    assert.throws(() => encodeNodeCommand('5', { Reboot: {} } as never), /Unrecognized key/);
    assert.throws(() => encodeNodeCommand('5', { Restart: { now: true } } as never), /Restart/);
    assert.throws(
      () => encodeNodeCommand('5', { InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', auto_start: true, config: { port: 2222 } } } as never),
      /config values must be strings/,
    );
    assert.throws(() => encodeRegistrationAck({ node_id: '5', accepted: true, totp_key: 'jbswy3dpehpk3pxpjbswy3dpehpk3pxp' }), /totp_key/);
    assert.throws(() => encodeRegistrationAck({ node_id: '5', accepted: true, totp_key: 'JBSWY3DPEHPK3PXP' }), /totp_key/);
  });

  it('nodeCommandSchema validates operator input with field-level errors', () => {
    const ok = nodeCommandSchema.safeParse({ InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', git_url: 'https://example.invalid/x.git', auto_start: false } });
    assert.equal(ok.success, true);
    const bad = nodeCommandSchema.safeParse({ InstallPot: { pot_id: 'p', honeypot_type: 'cowrie' } });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error?.issues.map((i) => i.path.join('.')), ['InstallPot.auto_start']);
    const typo = nodeCommandSchema.safeParse({ InstallPot: { pot_id: 'p', honeypot_type: 'cowrie', auto_start: true, autostart: true } });
    assert.equal(typo.success, false);
    assert.equal(nodeCommandSchema.safeParse({}).success, false);
    assert.equal(nodeCommandSchema.safeParse('GetInstalledPots').success, false);
  });

  it('decodeCoreMessage drops unit commands in string form like a node does', () => {
    const r = decodeCoreMessage('{"version":2,"message":{"NodeCommand":{"node_id":5,"command":"Restart"}}}');
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error, /never bare strings/);
  });

  it('escapes like Go for node lines and like serde for core lines', () => {
    const line = encodeNodeMessage({ type: 'PotStatusUpdate', node_id: '1', pot_id: 'p', pot_type: '', status: '', message: 'a<b>&c\u2028' });
    assert.equal(line, '{"version":2,"message":{"PotStatusUpdate":{"node_id":1,"pot_id":"p","pot_type":"","status":"","message":"a\\u003cb\\u003e\\u0026c\\u2028"}}}');
    assert.equal(encodeRegistrationAck({ node_id: '1', accepted: false, message: '<x>' }), '{"version":2,"message":{"RegistrationAck":{"node_id":1,"accepted":false,"message":"<x>"}}}');
  });
});

describe('hostile shapes', () => {
  it('refuses nesting deeper than 64 levels before parsing (later JSON.stringify would overflow)', () => {
    const body = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
    const line = (depth: number) => envelope('PotEvent', `{"node_id":1,"pot_id":"p","pot_type":"c","event_type":"e","timestamp":"t","data":{"x":${body(depth)}}}`);
    assert.equal(mustParse(line(60)).type, 'PotEvent'); // envelope, message, body, data = 4 levels, + 60 = 64
    mustFail(line(61), 'json', /nested deeper than 64 levels/);
    mustFail(line(200_000), 'json', /nested deeper than 64 levels/);
    // brackets inside strings do not count
    assert.equal(mustParse(envelope('NodeEvent', `{"type":"Alarm","message":"${'['.repeat(1000)}"}`)).type, 'NodeEvent');
  });

  it('prototype keys never reach the normalised message', () => {
    const m = mustParse(envelope('PotEvent', '{"node_id":1,"pot_id":"p","pot_type":"c","event_type":"e","timestamp":"t","data":{"__proto__":{"polluted":1},"a":1}}'));
    assert.ok(m.type === 'PotEvent');
    if (m.type !== 'PotEvent') return;
    assert.equal(Object.getPrototypeOf(m.data), Object.prototype);
    assert.equal((m.data as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    mustFail(envelope('NodeEvent', '{"__proto__":{"message":"x"}}'), 'schema', /NodeEvent/);
    mustFail(envelope('NodeEvent', '{"type":"__proto__"}'), 'schema', /event name must start with a letter/);
  });
});

describe('PotEvent data is kept as the node sent it', () => {
  const line = (data: string) =>
    `{"version":2,"message":{"PotEvent":{"node_id":18446744073709551615,"pot_id":"p","pot_type":"cowrie","event_type":"x","timestamp":"2024-01-01T00:00:00Z","data":${data}}}}`;
  const dataOf = (data: string) => {
    const r = parseNodeMessage(line(data));
    assert.ok(r.ok, JSON.stringify(r));
    return (r.message as { data: Record<string, unknown> }).data;
  };

  it('turns numbers JSON.parse would alter into their exact text', () => {
    const data = dataOf('{"big":123456789012345678901,"neg":-9007199254740993,"safe":9007199254740991,"inf":1e999,"ninf":-1e400,"tiny":1e-999,"zero":0.0e-999,"f":1.25e2,"in":[1, 99999999999999999999]}');
    assert.deepEqual(data, { big: '123456789012345678901', neg: '-9007199254740993', safe: 9007199254740991, inf: '1e999', ninf: '-1e400', tiny: '1e-999', zero: 0, f: 125, in: [1, '99999999999999999999'] });
  });

  it('keeps __proto__ keys as keys and never changes prototypes', () => {
    const data = dataOf('{"__proto__":{"polluted":true},"a":{"__proto__":1}}');
    assert.deepEqual(Object.keys(data), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(data), Object.prototype);
    assert.equal(JSON.stringify(data), '{"__proto__":{"polluted":true},"a":{"__proto__":1}}');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('refuses an overflowing number where the schema wants a number', () => {
    const r = parseNodeMessage('{"version":2,"message":{"NodeRegistration":{"node_id":1,"node_name":"n","address":"1.2.3.4","port":1e999,"node_type":"Full"}}}');
    assert.equal(r.ok, false);
  });

  it('reads stored JSON without altering numbers (quoteInexactNumbers)', () => {
    const text = '{"a":123456789012345678901,"b":[1e999,-1e-999],"c":"123456789012345678901 1e999","d":1.5,"node_id":18446744073709551615}';
    assert.equal(
      quoteInexactNumbers(text),
      '{"a":"123456789012345678901","b":["1e999","-1e-999"],"c":"123456789012345678901 1e999","d":1.5,"node_id":"18446744073709551615"}',
    );
    assert.equal(quoteInexactNumbers('{"x":1}'), '{"x":1}');
  });
});
