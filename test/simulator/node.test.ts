// The simulator against tiny throw-away cores written here (TCP, TLS, WebSocket): the real
// gateway is built elsewhere and must not be needed to test the node's side of the protocol.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  encodeNodeCommand,
  encodeRegistrationAck,
  generateNodeSecret,
  isValidNodeSecret,
  parseNodeMessage,
  verifyTotp,
  type NodeCommandBody,
  type NodeMessage,
  type NodeRegistrationMsg,
} from '../../src/protocol/index.js';
import { SimulatedNode, SECRET_FILE_NAME, runSimulatorCli, type SimulatedNodeOptions } from '../../src/simulator/index.js';
import { tempDir } from '../helpers/tmp.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls.js';

interface Received {
  conn: Conn;
  raw: string;
  msg: NodeMessage;
  at: number;
}

interface Conn {
  send(line: string): void;
  close(): void;
  closed: Promise<void>;
}

type Policy = (reg: NodeRegistrationMsg, conn: Conn) => string | undefined;

const acceptAll: Policy = (reg) => encodeRegistrationAck({ node_id: reg.node_id, accepted: true, message: 'Registration successful' });

/** A core reduced to what the node sees: reads lines, answers registrations by policy. */
class FakeCore {
  readonly received: Received[] = [];
  readonly rawLines: string[] = [];
  readonly conns: Conn[] = [];
  private waiters: Array<() => void> = [];
  policy: Policy = acceptAll;

  constructor(readonly port: number, private readonly shutdown: () => Promise<void>) {}

  static async tcp(opts: { tls?: TestCertificate } = {}): Promise<FakeCore> {
    let core!: FakeCore;
    const onSocket = (socket: Socket) => {
      socket.setEncoding('utf8');
      let buffered = '';
      let settle!: () => void;
      const conn: Conn = {
        send: (line) => socket.write(line + '\n'),
        close: () => socket.destroy(),
        closed: new Promise((r) => (settle = r)),
      };
      socket.on('close', () => settle());
      socket.on('error', () => {});
      core.conns.push(conn);
      socket.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          core.onLine(conn, line);
        }
      });
    };
    const server: Server = opts.tls
      ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.3' }, onSocket)
      : createServer(onSocket);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    core = new FakeCore(port, async () => {
      for (const c of core.conns) c.close();
      await new Promise<void>((r) => server.close(() => r()));
    });
    return core;
  }

  static async websocket(): Promise<FakeCore> {
    let core!: FakeCore;
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws/node' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws: WebSocket) => {
      let settle!: () => void;
      const conn: Conn = { send: (line) => ws.send(line), close: () => ws.terminate(), closed: new Promise((r) => (settle = r)) };
      ws.on('close', () => settle());
      core.conns.push(conn);
      ws.on('message', (data) => core.onLine(conn, data.toString()));
    });
    core = new FakeCore((wss.address() as { port: number }).port, async () => {
      for (const c of core.conns) c.close();
      await new Promise<void>((r) => wss.close(() => r()));
    });
    return core;
  }

  private onLine(conn: Conn, raw: string): void {
    this.rawLines.push(raw);
    const r = parseNodeMessage(raw);
    assert.ok(r.ok, `simulator sent an unparseable line: ${raw} (${r.ok ? '' : r.error})`);
    this.received.push({ conn, raw, msg: r.message, at: Date.now() });
    if (r.message.type === 'NodeRegistration') {
      const reply = this.policy(r.message, conn);
      if (reply !== undefined) conn.send(reply);
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Removes and returns the first received message matching `pred`, waiting for it if needed. */
  async take<T extends NodeMessage = NodeMessage>(pred: (m: NodeMessage) => boolean, timeoutMs = 10_000): Promise<Received & { msg: T }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((r) => pred(r.msg));
      if (i >= 0) return this.received.splice(i, 1)[0] as Received & { msg: T };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message within ${timeoutMs} ms; have ${this.received.map((r) => r.raw).join('\n')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  takeType<K extends NodeMessage['type']>(type: K, pred: (m: Extract<NodeMessage, { type: K }>) => boolean = () => true, timeoutMs?: number) {
    return this.take<Extract<NodeMessage, { type: K }>>((m) => m.type === type && pred(m as Extract<NodeMessage, { type: K }>), timeoutMs);
  }

  close(): Promise<void> {
    return this.shutdown();
  }
}

const TWO_POW_53 = 2n ** 53n;

describe('SimulatedNode over TCP', () => {
  let core: FakeCore;
  const dirs: Array<{ path: string; cleanup(): void }> = [];
  const nodes: SimulatedNode[] = [];

  function node(opts: Partial<SimulatedNodeOptions> & { name: string }): SimulatedNode {
    const dir = tempDir('apiary-sim-');
    dirs.push(dir);
    const n = new SimulatedNode({ port: core.port, secretDir: dir.path, reconnectDelayMs: 100, heartbeatMs: 60_000, ...opts });
    nodes.push(n);
    return n;
  }

  before(async () => {
    core = await FakeCore.tcp();
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await core.close();
    for (const d of dirs) d.cleanup();
  });

  it('registers with the real node line shape, a u64 node_id above 2^53 and a valid TOTP code', async () => {
    core.policy = acceptAll;
    const n = node({ name: 'shape-node' });
    n.start();
    const reg = await core.takeType('NodeRegistration', (m) => m.node_name === 'shape-node');
    assert.match(
      reg.raw,
      /^\{"version":2,"message":\{"NodeRegistration":\{"node_id":\d+,"node_name":"shape-node","address":"0\.0\.0\.0","port":8080,"node_type":"Full","totp_code":"\d{6}"\}\}\}$/,
    );
    assert.equal(reg.msg.node_id, n.nodeId);
    assert.ok(BigInt(reg.msg.node_id) > TWO_POW_53);
    const secret = readFileSync(n.secretPath!, 'utf8');
    assert.equal(isValidNodeSecret(secret), true, 'the node invented and stored its own secret');
    assert.equal(verifyTotp(secret, reg.msg.totp_code!, Date.now()).valid, true);
    await n.waitFor('registered');
    const status = await core.takeType('NodeStatusUpdate', (m) => m.node_id === n.nodeId);
    assert.equal(status.msg.status, 'Running');
    assert.equal(status.conn, reg.conn);
  });

  it('stores the totp_key of the ack and uses it for the next registration', async () => {
    const key = generateNodeSecret();
    let first = true;
    core.policy = (reg) => {
      if (reg.node_name !== 'key-node') return acceptAll(reg, undefined as never);
      const ack = encodeRegistrationAck({ node_id: reg.node_id, accepted: true, ...(first ? { totp_key: key } : {}) });
      first = false;
      return ack;
    };
    const n = node({ name: 'key-node' });
    const stored = n.waitFor('secret');
    n.start();
    const reg1 = await core.takeType('NodeRegistration', (m) => m.node_name === 'key-node');
    assert.deepEqual(await stored, [{ stored: true }]);
    assert.equal(readFileSync(join(n.secretPath!), 'utf8'), key);
    assert.equal(n.secret, key);
    // the core drops the connection: the node comes back with the same node_id and a code from the new key
    await core.takeType('NodeStatusUpdate', (m) => m.node_id === n.nodeId);
    reg1.conn.close();
    const reg2 = await core.takeType('NodeRegistration', (m) => m.node_name === 'key-node');
    assert.equal(reg2.msg.node_id, reg1.msg.node_id);
    assert.equal(verifyTotp(key, reg2.msg.totp_code!, Date.now()).valid, true);
    assert.ok(reg2.at - reg1.at >= 100, 'waited the reconnect delay');
  });

  it('replaces a malformed totp_key with its own secret, like the real node (lock-out)', async () => {
    core.policy = (reg) =>
      reg.node_name === 'badkey-node'
        ? `{"version":2,"message":{"RegistrationAck":{"node_id":${reg.node_id},"accepted":true,"totp_key":"jbswy3dpehpk3pxp"}}}`
        : acceptAll(reg, undefined as never);
    const n = node({ name: 'badkey-node' });
    const secretEvent = n.waitFor('secret');
    n.start();
    assert.deepEqual(await secretEvent, [{ stored: false }]);
    const onDisk = readFileSync(n.secretPath!, 'utf8');
    assert.equal(isValidNodeSecret(onDisk), true);
    assert.notEqual(onDisk, 'jbswy3dpehpk3pxp');
  });

  it('regenerates a malformed secret file at start and keeps a well-formed one', async () => {
    core.policy = acceptAll;
    const dir = tempDir('apiary-sim-');
    dirs.push(dir);
    writeFileSync(join(dir.path, SECRET_FILE_NAME), 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n'); // trailing newline: not exactly 32 chars
    const a = new SimulatedNode({ name: 'file-a', port: core.port, secretDir: dir.path });
    nodes.push(a);
    a.start();
    await a.waitFor('registered');
    const regenerated = readFileSync(join(dir.path, SECRET_FILE_NAME), 'utf8');
    assert.equal(isValidNodeSecret(regenerated), true);
    assert.notEqual(regenerated, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
    const provisioned = generateNodeSecret();
    const dir2 = tempDir('apiary-sim-');
    dirs.push(dir2);
    const b = new SimulatedNode({ name: 'file-b', port: core.port, secretDir: dir2.path, secret: provisioned });
    nodes.push(b);
    b.start();
    const reg = await core.takeType('NodeRegistration', (m) => m.node_name === 'file-b');
    assert.equal(verifyTotp(provisioned, reg.msg.totp_code!, Date.now()).valid, true);
    assert.equal(readFileSync(join(dir2.path, SECRET_FILE_NAME), 'utf8'), provisioned);
  });

  it('heartbeats NodeStatusUpdate{Running} every interval', async () => {
    core.policy = acceptAll;
    const n = node({ name: 'beat-node', heartbeatMs: 80 });
    n.start();
    await n.waitFor('registered');
    const t0 = Date.now();
    for (let i = 0; i < 4; i++) await core.takeType('NodeStatusUpdate', (m) => m.node_id === n.nodeId && m.status === 'Running');
    assert.ok(Date.now() - t0 >= 150, 'not faster than the interval');
    await n.stop();
  });

  it('reconnects after rejection with the fixed delay and re-registers', async () => {
    let rejections = 0;
    core.policy = (reg) => {
      if (reg.node_name !== 'retry-node') return acceptAll(reg, undefined as never);
      if (rejections < 2) {
        rejections++;
        return encodeRegistrationAck({ node_id: reg.node_id, accepted: false, message: 'TOTP code invalid' });
      }
      return acceptAll(reg, undefined as never);
    };
    // The node's clock is pinned inside one 30 s TOTP window, so the code-reuse check below always runs.
    const windowMid = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
    const n = node({ name: 'retry-node', reconnectDelayMs: 150, clock: () => windowMid });
    const rejected: string[] = [];
    n.on('rejected', (ack) => rejected.push(ack.message ?? ''));
    n.start();
    await n.waitFor('registered');
    assert.deepEqual(rejected, ['TOTP code invalid', 'TOTP code invalid']);
    const regs = [];
    for (let i = 0; i < 3; i++) regs.push(await core.takeType('NodeRegistration', (m) => m.node_name === 'retry-node'));
    assert.ok(regs[1]!.at - regs[0]!.at >= 140 && regs[2]!.at - regs[1]!.at >= 140, 'fixed reconnect delay');
    assert.notEqual(regs[0]!.conn, regs[1]!.conn, 'a new connection per attempt');
    // inside one 30 s window the node reuses the same code, like the real one
    assert.match(String(regs[0]!.msg.totp_code), /^\d{6}$/);
    assert.equal(regs[0]!.msg.totp_code, regs[2]!.msg.totp_code);
    assert.equal(n.stats.rejections, 2);
  });

  it('drops the connection when the first line is not the ack, and when no ack comes', async () => {
    core.policy = (reg, conn) => {
      if (reg.node_name === 'noack-node') return undefined;
      if (reg.node_name !== 'wrongfirst-node') return acceptAll(reg, conn);
      return encodeNodeCommand(reg.node_id, { GetInstalledPots: {} });
    };
    const a = node({ name: 'wrongfirst-node' });
    const err = a.waitFor('protocolError');
    a.start();
    assert.match((await err)[0], /expected RegistrationAck as the first line, got NodeCommand/);
    await a.waitFor('disconnected');
    await core.takeType('NodeRegistration', (m) => m.node_name === 'wrongfirst-node');
    await core.takeType('NodeRegistration', (m) => m.node_name === 'wrongfirst-node');
    await a.stop();

    const b = node({ name: 'noack-node', ackTimeoutMs: 150 });
    const timeout = b.waitFor('protocolError');
    b.start();
    assert.match((await timeout)[0], /no RegistrationAck within 150 ms/);
    await core.takeType('NodeRegistration', (m) => m.node_name === 'noack-node');
    await core.takeType('NodeRegistration', (m) => m.node_name === 'noack-node');
    await b.stop();
  });

  describe('command answers', () => {
    let n: SimulatedNode;
    let conn: Conn;
    const send = (command: NodeCommandBody) => conn.send(encodeNodeCommand(n.nodeId, command));
    const potUpdate = (potId: string) => core.takeType('PotStatusUpdate', (m) => m.node_id === n.nodeId && m.pot_id === potId);

    before(async () => {
      core.policy = acceptAll;
      n = node({ name: 'cmd-node', failures: {} });
      n.start();
      const reg = await core.takeType('NodeRegistration', (m) => m.node_name === 'cmd-node');
      conn = reg.conn;
      await n.waitFor('registered');
    });

    it('InstallPot -> Installing, Stopped "Installation complete", Running when auto_start', async () => {
      const seen = n.waitFor('command');
      send({ InstallPot: { pot_id: 'cowrie-01', honeypot_type: 'cowrie', config: { ssh_port: '2222' }, auto_start: true } });
      assert.ok('InstallPot' in (await seen)[0]);
      const steps = [await potUpdate('cowrie-01'), await potUpdate('cowrie-01'), await potUpdate('cowrie-01')].map((r) => [r.msg.status, r.msg.message, r.msg.pot_type]);
      assert.deepEqual(steps, [
        ['Installing', 'Status: Installing - Installing from HoneyBee PotStore...', 'cowrie'],
        ['Stopped', 'Status: Stopped - Installation complete', 'cowrie'],
        ['Running', 'Status: Running - cowrie honeypot started', 'cowrie'],
      ]);
    });

    it('InstallPot without auto_start stays Stopped', async () => {
      send({ InstallPot: { pot_id: 'dionaea-01', honeypot_type: 'dionaea', auto_start: false } });
      assert.equal((await potUpdate('dionaea-01')).msg.status, 'Installing');
      assert.equal((await potUpdate('dionaea-01')).msg.status, 'Stopped');
      send({ GetPotStatus: 'dionaea-01' });
      const status = await potUpdate('dionaea-01');
      assert.equal(status.msg.status, 'Stopped');
      assert.equal(status.msg.message, undefined);
    });

    it('StopPot, DeployPot, RestartPot, GetPotStatus', async () => {
      send({ StopPot: 'cowrie-01' });
      assert.deepEqual([(await potUpdate('cowrie-01')).msg.status], ['Stopped']);
      send({ DeployPot: 'cowrie-01' });
      const running = await potUpdate('cowrie-01');
      assert.equal(running.msg.status, 'Running');
      assert.equal(running.msg.message, 'Status: Running - cowrie honeypot started');
      send({ RestartPot: 'cowrie-01' });
      assert.equal((await potUpdate('cowrie-01')).msg.status, 'Running');
      send({ GetPotStatus: 'cowrie-01' });
      const status = await potUpdate('cowrie-01');
      assert.equal(status.raw, `{"version":2,"message":{"PotStatusUpdate":{"node_id":${n.nodeId},"pot_id":"cowrie-01","pot_type":"cowrie","status":"Running"}}}`);
    });

    it('GetInstalledPots answers one update per pot', async () => {
      send({ GetInstalledPots: {} });
      const a = await potUpdate('cowrie-01');
      const b = await potUpdate('dionaea-01');
      assert.deepEqual([a.msg.status, b.msg.status], ['Running', 'Stopped']);
    });

    it('unknown pots answer NodeEvent Error "... pot X not found"', async () => {
      send({ GetPotStatus: 'nope' });
      const ev = await core.takeType('NodeEvent');
      assert.equal(ev.raw, '{"version":2,"message":{"NodeEvent":{"type":"Error","message":"Failed to get pot status: pot nope not found"}}}');
      send({ StopPot: 'ghost' });
      const stop = await core.takeType('NodeEvent');
      assert.deepEqual(stop.msg, { type: 'NodeEvent', event: 'Error', message: 'Failed to stop pot: pot ghost not found' });
    });

    it('a unit command in string form is dropped, like the real node does', async () => {
      const err = n.waitFor('protocolError');
      conn.send(`{"version":2,"message":{"NodeCommand":{"node_id":${n.nodeId},"command":"Restart"}}}`);
      assert.match((await err)[0], /never bare strings/);
      assert.equal(n.registered, true);
    });

    it('Restart disconnects and re-registers with a new node_id', async () => {
      const oldId = n.nodeId;
      const restarting = n.waitFor('restarting');
      send({ Restart: {} });
      assert.deepEqual(await restarting, [oldId]);
      const reg = await core.takeType('NodeRegistration', (m) => m.node_name === 'cmd-node');
      assert.notEqual(reg.msg.node_id, oldId);
      assert.equal(reg.msg.node_id, n.nodeId);
      await n.waitFor('registered');
      conn = reg.conn;
    });
  });

  it('failure injection: InstallPot answers Failed with the configured text', async () => {
    core.policy = acceptAll;
    const n = node({ name: 'fail-node', failures: { InstallPot: 'Git clone failed: exit status 128' } });
    n.start();
    const reg = await core.takeType('NodeRegistration', (m) => m.node_name === 'fail-node');
    await n.waitFor('registered');
    reg.conn.send(encodeNodeCommand(n.nodeId, { InstallPot: { pot_id: 'pot-01', honeypot_type: 'testpot', git_url: 'https://git.invalid/x.git', auto_start: true } }));
    const installing = await core.takeType('PotStatusUpdate', (m) => m.node_id === n.nodeId);
    assert.equal(installing.msg.status, 'Installing');
    const failed = await core.takeType('PotStatusUpdate', (m) => m.node_id === n.nodeId);
    assert.equal(failed.msg.status, 'Failed');
    assert.equal(failed.msg.message, 'Status: Failed - Git clone failed: exit status 128');
  });

  it('emits attack events as PotEvent and as event-shaped PotStatusUpdate', async () => {
    core.policy = acceptAll;
    const pots = [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' as const }];
    const a = node({ name: 'attack-potevent', eventsPerSecond: 40, pots });
    const b = node({ name: 'attack-status', eventsPerSecond: 40, eventForm: 'status', pots });
    a.start();
    b.start();
    await Promise.all([a.waitFor('registered'), b.waitFor('registered')]);
    const events = [];
    for (let i = 0; i < 8; i++) events.push((await core.takeType('PotEvent', (m) => m.node_id === a.nodeId)).msg);
    const first = events[0]!;
    assert.equal(first.event_type, 'cowrie.session.connect');
    assert.equal(first.pot_id, 'cowrie-01');
    assert.equal(first.pot_type, 'cowrie');
    assert.ok(!Number.isNaN(Date.parse(first.timestamp)));
    for (const key of ['eventid', 'session', 'src_ip', 'src_port', 'dst_ip', 'dst_port', 'timestamp']) assert.ok(key in first.data, key);
    assert.match(first.data.src_ip as string, /^(192\.0\.2|198\.51\.100|203\.0\.113)\./);
    const kinds = new Set(events.map((e) => e.event_type));
    assert.ok(kinds.has('cowrie.login.failed') || kinds.has('cowrie.login.success'));
    assert.ok([...kinds].every((k) => /^cowrie\.(session\.connect|login\.failed|login\.success|command\.input|session\.closed)$/.test(k)));
    const login = events.find((e) => e.event_type.startsWith('cowrie.login'))!;
    assert.ok(typeof login.data.username === 'string' && typeof login.data.password === 'string');
    const status = await core.takeType('PotStatusUpdate', (m) => m.node_id === b.nodeId && m.status === '');
    assert.equal(status.msg.pot_type, '');
    assert.match(status.msg.message ?? '', /^New connection: /);
    await Promise.all([a.stop(), b.stop()]);
    assert.ok(a.stats.eventsSent >= 8);
  });

  it('sends NodeEvent and NodeDrop in every accepted form', async () => {
    core.policy = acceptAll;
    const n = node({ name: 'misc-node' });
    n.start();
    await n.waitFor('registered');
    n.sendNodeEvent('Alarm', 'disk almost full', 'df says 95%');
    n.sendNodeEvent('Error', 'boom', undefined, 'serde');
    n.sendNodeDrop('string');
    const e1 = await core.takeType('NodeEvent', (m) => m.event === 'Alarm');
    assert.equal(e1.raw, '{"version":2,"message":{"NodeEvent":{"type":"Alarm","message":"disk almost full","description":"df says 95%"}}}');
    const e2 = await core.takeType('NodeEvent', (m) => m.event === 'Error' && m.message === 'boom');
    assert.equal(e2.raw, '{"version":2,"message":{"NodeEvent":{"Error":{"message":"boom"}}}}');
    const drop = await core.takeType('NodeDrop');
    assert.equal(drop.raw, '{"version":2,"message":"NodeDrop"}');
    await n.stop();
    assert.equal(n.sendNodeDrop(), false, 'nothing is sent while stopped');
  });
});

describe('SimulatedNode with several cores (failover)', () => {
  it('skips a core that refuses, moves to the next when its core dies, and wraps around the list', async () => {
    const a = await FakeCore.tcp();
    const b = await FakeCore.tcp();
    // A port nothing listens on: a server bound, then closed.
    const gone = await FakeCore.tcp();
    const deadPort = gone.port;
    await gone.close();
    const dir = tempDir('apiary-sim-');
    const cores = [`127.0.0.1:${deadPort}`, `127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
    const n = new SimulatedNode({ name: 'failover-node', cores, secretDir: dir.path, reconnectDelayMs: 50, heartbeatMs: 60_000 });
    const failed: string[] = [];
    n.on('connectError', () => failed.push(n.core));
    try {
      n.start();
      await n.waitFor('registered');
      assert.deepEqual(failed, [cores[0]], 'the refusing core was tried first, once');
      assert.equal(n.core, cores[1]);
      const first = await a.takeType('NodeRegistration', (m) => m.node_name === 'failover-node');
      // Core A dies: the node registers on B with the same node_id (the same process).
      await a.close();
      const second = await b.takeType('NodeRegistration', (m) => m.node_name === 'failover-node');
      assert.equal(second.msg.node_id, first.msg.node_id);
      assert.equal(n.core, cores[2]);
      // B dies too: with every core gone the node keeps cycling through the whole list.
      const connectsBefore = n.stats.connects;
      await b.close();
      await new Promise((r) => setTimeout(r, 400));
      assert.ok(n.stats.connects - connectsBefore >= 3, `kept trying every core in turn (${n.stats.connects - connectsBefore} attempts)`);
    } finally {
      await n.stop();
      dir.cleanup();
    }
  });

  it('rejects a malformed core address', () => {
    assert.throws(() => new SimulatedNode({ name: 'x', cores: ['127.0.0.1'] }), /host:port/);
    assert.throws(() => new SimulatedNode({ name: 'x', cores: ['127.0.0.1:0'] }), /host:port/);
    assert.throws(() => new SimulatedNode({ name: 'x', cores: [] }), /at least one core/);
    assert.doesNotThrow(() => new SimulatedNode({ name: 'x', cores: ['[::1]:9001', 'core-b.example:9001'] }));
  });
});

describe('SimulatedNode over TLS and WebSocket', () => {
  let cert: TestCertificate;
  before(() => {
    cert = makeTestCertificate();
  });
  after(() => cert.cleanup());

  it('registers over TLS 1.3, verifying the CA', async () => {
    const core = await FakeCore.tcp({ tls: cert });
    const dir = tempDir('apiary-sim-');
    const n = new SimulatedNode({ name: 'tls-node', port: core.port, tls: true, ca: cert.ca, secretDir: dir.path });
    try {
      n.start();
      await n.waitFor('registered');
      await core.takeType('NodeStatusUpdate', (m) => m.node_id === n.nodeId);
    } finally {
      await n.stop();
      await core.close();
      dir.cleanup();
    }
  });

  it('refuses a core whose certificate is not signed by the CA', async () => {
    const core = await FakeCore.tcp({ tls: cert });
    const other = makeTestCertificate();
    const n = new SimulatedNode({ name: 'tls-bad', port: core.port, tls: true, ca: other.ca, reconnectDelayMs: 60_000 });
    try {
      const err = n.waitFor('connectError');
      n.start();
      assert.match((await err)[0].message, /certificate/i);
      assert.equal(core.rawLines.length, 0);
    } finally {
      await n.stop();
      await core.close();
      other.cleanup();
    }
  });

  it('speaks one envelope per text frame over WebSocket', async () => {
    const core = await FakeCore.websocket();
    const n = new SimulatedNode({ name: 'ws-node', transport: 'ws', url: `ws://127.0.0.1:${core.port}/ws/node`, reconnectDelayMs: 100 });
    try {
      n.start();
      const reg = await core.takeType('NodeRegistration', (m) => m.node_name === 'ws-node');
      assert.ok(!reg.raw.endsWith('\n'));
      await n.waitFor('registered');
      reg.conn.send(encodeNodeCommand(n.nodeId, { GetPotStatus: 'missing' }));
      const ev = await core.takeType('NodeEvent');
      assert.equal(ev.msg.type === 'NodeEvent' && ev.msg.message, 'Failed to get pot status: pot missing not found');
      reg.conn.close();
      await core.takeType('NodeRegistration', (m) => m.node_name === 'ws-node');
    } finally {
      await n.stop();
      await core.close();
    }
  });
});

describe('apiary node simulate', () => {
  const capture = () => {
    let text = '';
    return { stream: { write: (s: string) => (text += s) }, text: () => text };
  };

  it('documents every flag in --help', async () => {
    const out = capture();
    const code = await runSimulatorCli(['--help'], { stdout: out.stream, stderr: out.stream });
    assert.equal(code, 0);
    for (const flag of ['--transport', '--host', '--port', '--url', '--tls', '--ca', '--name', '--type', '--secret-dir', '--heartbeat', '--reconnect-delay', '--events-per-second', '--event-form', '--count', '--duration']) {
      assert.ok(out.text().includes(flag), flag);
    }
  });

  it('rejects bad arguments with exit code 2', async () => {
    for (const argv of [['--transport', 'udp'], ['--port', 'x'], ['--count', '0'], ['--type', 'Half'], ['--bogus'], ['--url', 'ws://x/ws/node'], ['--ca', '/nonexistent/ca.pem'], ['--cores', 'nohostport'], ['--cores', ','], ['--transport', 'ws', '--cores', '127.0.0.1:9001']]) {
      const err = capture();
      const code = await runSimulatorCli(argv, { stdout: capture().stream, stderr: err.stream });
      assert.equal(code, 2, argv.join(' '));
      assert.match(err.text(), /apiary node simulate: /);
    }
  });

  it('runs N nodes with their own secret files until the signal, then reports', async () => {
    const core = await FakeCore.tcp();
    const dir = tempDir('apiary-sim-cli-');
    const out = capture();
    const stop = new AbortController();
    try {
      const run = runSimulatorCli(
        ['--port', String(core.port), '--name', 'cli', '--count', '3', '--secret-dir', dir.path, '--heartbeat', '0.1', '--events-per-second', '20', '--event-form', 'status'],
        { stdout: out.stream, stderr: out.stream, signal: stop.signal },
      );
      const names = new Set<string>();
      while (names.size < 3) names.add((await core.takeType('NodeRegistration')).msg.node_name);
      assert.deepEqual([...names].sort(), ['cli-0', 'cli-1', 'cli-2']);
      await core.takeType('PotStatusUpdate', (m) => m.status === '' && m.pot_id === 'cowrie-01');
      // The core sent three acks; wait until each node has read its own (a loaded machine may lag).
      const deadline = Date.now() + 15_000;
      while (!['cli-0', 'cli-1', 'cli-2'].every((n) => out.text().includes(`[${n}] registered as`))) {
        if (Date.now() > deadline) throw new Error(`not every node registered:\n${out.text()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      stop.abort();
      assert.equal(await run, 0);
      for (const name of names) assert.equal(existsSync(join(dir.path, name, SECRET_FILE_NAME)), true);
      assert.match(out.text(), /\[cli-0\] registered as node_id \d+/);
      assert.match(out.text(), /done: 3\/3 online, 3 registrations/);
      assert.ok(!out.text().includes(readFileSync(join(dir.path, 'cli-0', SECRET_FILE_NAME), 'utf8')), 'secret never logged');
    } finally {
      await core.close();
      dir.cleanup();
    }
  });

  it('exits 1 when no node ever registers', async () => {
    const core = await FakeCore.tcp();
    core.policy = (reg) => encodeRegistrationAck({ node_id: reg.node_id, accepted: false, message: 'TOTP code invalid' });
    const dir = tempDir('apiary-sim-cli-');
    mkdirSync(join(dir.path, 'x'), { recursive: true });
    const out = capture();
    try {
      const code = await runSimulatorCli(['--port', String(core.port), '--name', 'lonely', '--secret-dir', dir.path, '--duration', '0.4', '--reconnect-delay', '0.1'], {
        stdout: out.stream,
        stderr: out.stream,
      });
      assert.equal(code, 1);
      assert.match(out.text(), /registration rejected: TOTP code invalid/);
    } finally {
      await core.close();
      dir.cleanup();
    }
  });
});
