// A HoneyBee node as the core sees it on the wire: registration with a TOTP code, ack handling
// (first line must be the ack, totp_key persisted), heartbeats, command answers, attack events
// and reconnects with a fixed delay. Used by `apiary node simulate`, by tests and by benchmarks
// that run thousands of instances in one process, so per-instance state is kept to a few fields
// and no timer exists that the current state does not need.
import { EventEmitter } from 'node:events';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { join } from 'node:path';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import {
  decodeCoreMessage,
  encodeNodeMessage,
  generateNodeSecret,
  isValidNodeSecret,
  randomNodeId,
  totpCode,
  type EncodeNodeMessageOptions,
  type NodeCommandBody,
  type NodeId,
  type NodeMessage,
  type NodeType,
  type PotStatus,
  type RegistrationAckMsg,
} from '../protocol/index.js';
import { AttackSession } from './attacks.js';

export const SECRET_FILE_NAME = '.honeybee_totp_secret';

export type SimulatorTransport = 'tcp' | 'ws';
/**
 * potevent: the documented PotEvent with cowrie's JSON in `data`.
 * status: a PotStatusUpdate with status "" for the given pot, cowrie's text in `message`.
 * cowrie-text: exactly what the real node sends for cowrie: pot_id = cowrie's sensor name (the
 * node's name here, as cowrie's sensor defaults to the host name), pot_type "", status "", text.
 */
export type AttackEventForm = 'potevent' | 'status' | 'cowrie-text';
export type FailableCommand = 'InstallPot' | 'DeployPot' | 'StopPot' | 'RestartPot';

export interface SimulatedPot {
  id: string;
  type: string;
  status: Exclude<PotStatus, ''>;
}

export interface SimulatedNodeOptions {
  /** node_name: the identity that lasts (a real node defaults to its hostname). */
  name: string;
  transport?: SimulatorTransport;
  /** TCP target (default 127.0.0.1:9001). */
  host?: string;
  port?: number;
  /** WebSocket target, e.g. ws://127.0.0.1:8080/ws/node or wss://... */
  url?: string;
  /**
   * Several cores for failover: `host:port` for TCP (`[v6]:port` for IPv6), ws(s):// URLs for the
   * WebSocket transport. The node starts on the first and, each time a connection fails or is lost,
   * tries the next one (round robin), as a node behind a list of cores would. Wins over host/port/url.
   */
  cores?: readonly string[];
  /** TCP only: TLS 1.3 (wss:// implies TLS for the WebSocket transport). */
  tls?: boolean;
  /** PEM CA bundle that must have signed the core's certificate (TLS / wss). */
  ca?: string | Buffer;
  /** Server name to verify; defaults to the host. */
  servername?: string;
  nodeType?: NodeType;
  /** Address and port the node advertises in its registration (default 0.0.0.0:8080). */
  address?: string;
  advertisedPort?: number;
  /** Directory of `.honeybee_totp_secret`. Without it the secret lives in memory only. */
  secretDir?: string;
  /** A provisioned secret: written to the secret file (or memory) before the first start. */
  secret?: string;
  /** Send a totp_code in the registration (default true). */
  sendTotp?: boolean;
  heartbeatMs?: number;
  reconnectDelayMs?: number;
  ackTimeoutMs?: number;
  /** Reconnect after rejection/disconnect, like the real node (default true). */
  reconnect?: boolean;
  /** Attack events per second while registered, spread over running pots (default 0). */
  eventsPerSecond?: number;
  eventForm?: AttackEventForm;
  /** Send cowrie attacks in the real node's text form (eventForm 'cowrie-text'); wins over eventForm. */
  cowrieText?: boolean;
  /** Pots installed before start. */
  pots?: SimulatedPot[];
  /**
   * After the first registration, report each pot of `pots` once (as the answer to
   * GetInstalledPots would), so the core lists the pot the events come from. A real node waits to
   * be asked; and with no correlation id such a report could answer a queued command about that
   * pot, so tests of command answers leave this off. `apiary node simulate` turns it on.
   */
  announcePots?: boolean;
  /** Failure injection: the command answers Failed with this text, e.g. 'Git clone failed: exit status 128'. */
  failures?: Partial<Record<FailableCommand, string>>;
  /** Clock for TOTP codes and event timestamps (ms). */
  clock?: () => number;
  /** Longest line accepted from the core before the connection is dropped (default 1 MiB). */
  maxLineBytes?: number;
}

export interface SimulatedNodeStats {
  connects: number;
  registrations: number;
  rejections: number;
  commands: number;
  linesSent: number;
  eventsSent: number;
  protocolErrors: number;
}

export interface SimulatedNodeEvents {
  connected: [];
  /** An accepted RegistrationAck; the node is now online. */
  registered: [RegistrationAckMsg];
  /** A RegistrationAck with accepted:false. The node disconnects and retries after the delay. */
  rejected: [RegistrationAckMsg];
  /** Every NodeCommand received, before it is answered. */
  command: [NodeCommandBody];
  /** The core sent totp_key; `stored` is false when the key was malformed and replaced. */
  secret: [{ stored: boolean }];
  /** An established connection closed (failed attempts only emit connectError). */
  disconnected: [string];
  /** A line from the core that could not be used (the node logs it and carries on). */
  protocolError: [string];
  /** Connection attempt failed (refused, TLS failure, ...). */
  connectError: [Error];
  /** Restart command: the "process" restarts with a new node_id. */
  restarting: [NodeId];
}

type Phase = 'stopped' | 'connecting' | 'awaiting-ack' | 'registered' | 'waiting-to-reconnect';

/** `host:port` or `[v6]:port` into its parts; throws on anything else. */
export function parseCoreAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`core address must be host:port, got "${text}"`);
  return { host: (m[1] ?? m[2])!, port };
}

/** Minimal line transport over TCP/TLS or WebSocket. */
interface Link {
  send(line: string): boolean;
  /** Bytes queued but not yet handed to the kernel. */
  backlog(): number;
  /** Runs `sends` with the lines it sends handed to the kernel together (one write, not one per line). */
  batch(sends: () => void): void;
  close(): void;
}

export class SimulatedNode extends EventEmitter<SimulatedNodeEvents> {
  readonly name: string;
  readonly stats: SimulatedNodeStats = {
    connects: 0,
    registrations: 0,
    rejections: 0,
    commands: 0,
    linesSent: 0,
    eventsSent: 0,
    protocolErrors: 0,
  };
  readonly pots = new Map<string, SimulatedPot>();

  private readonly opts: SimulatedNodeOptions;
  private _nodeId: NodeId = randomNodeId();
  private _secret = '';
  private phase: Phase = 'stopped';
  private link: Link | undefined;
  private timer: NodeJS.Timeout | undefined; // ack timeout or reconnect delay, never both
  private heartbeat: NodeJS.Timeout | undefined;
  private attackTimer: NodeJS.Timeout | undefined;
  private attackTokens = 0;
  private attackLast = 0;
  private attackSession: AttackSession | undefined;
  private attackPotCursor = 0;
  private restartPending = false;
  private closed: Promise<void> | undefined;

  /** Index in opts.cores of the core the next connection goes to. */
  private coreIndex = 0;

  constructor(opts: SimulatedNodeOptions) {
    super();
    if (opts.cores !== undefined) {
      if (opts.cores.length === 0) throw new Error('cores must name at least one core');
      if ((opts.transport ?? 'tcp') === 'tcp') for (const c of opts.cores) parseCoreAddress(c);
    }
    this.opts = opts;
    this.name = opts.name;
    for (const pot of opts.pots ?? []) this.pots.set(pot.id, { ...pot });
    if (opts.secret !== undefined) this.provisionSecret(opts.secret);
  }

  get nodeId(): NodeId {
    return this._nodeId;
  }

  /** The TOTP secret in use (after start(): loaded from or written to the secret file). */
  get secret(): string {
    return this._secret;
  }

  get registered(): boolean {
    return this.phase === 'registered';
  }

  /** The core the node is connected (or connecting) to: `host:port`, or the WebSocket URL. */
  get core(): string {
    if (this.opts.cores !== undefined) return this.opts.cores[this.coreIndex]!;
    if ((this.opts.transport ?? 'tcp') === 'ws') return this.opts.url ?? `ws://${this.opts.host ?? '127.0.0.1'}:${this.opts.port ?? 9001}/ws/node`;
    return `${this.opts.host ?? '127.0.0.1'}:${this.opts.port ?? 9001}`;
  }

  get secretPath(): string | undefined {
    return this.opts.secretDir === undefined ? undefined : join(this.opts.secretDir, SECRET_FILE_NAME);
  }

  /** Starts connecting (returns at once; await `waitFor('registered')` to know it is online). */
  start(): void {
    if (this.phase !== 'stopped') return;
    this.loadSecret();
    this.phase = 'connecting';
    this.connect();
  }

  /** Disconnects and stops reconnecting. `drop` sends NodeDrop first. */
  async stop(opts: { drop?: boolean } = {}): Promise<void> {
    if (opts.drop && this.phase === 'registered') this.send({ type: 'NodeDrop' });
    this.phase = 'stopped';
    this.clearTimers();
    const closing = this.closed;
    this.link?.close();
    await closing;
  }

  /** Resolves with the event's arguments; rejects after timeoutMs (default 15 s). */
  waitFor<K extends keyof SimulatedNodeEvents>(
    event: K,
    opts: { timeoutMs?: number; filter?: (...args: SimulatedNodeEvents[K]) => boolean } = {},
  ): Promise<SimulatedNodeEvents[K]> {
    return new Promise((resolve, reject) => {
      const listener = (...args: SimulatedNodeEvents[K]) => {
        if (opts.filter && !opts.filter(...args)) return;
        clearTimeout(timeout);
        this.off(event, listener as never);
        resolve(args);
      };
      const timeout = setTimeout(() => {
        this.off(event, listener as never);
        reject(new Error(`${this.name}: no '${String(event)}' within ${opts.timeoutMs ?? 15000} ms`));
      }, opts.timeoutMs ?? 15000);
      this.on(event, listener as never);
    });
  }

  // ------------------------------------------------------------ sending

  /** Sends any node message now; false when not connected. */
  send(message: NodeMessage, form?: EncodeNodeMessageOptions): boolean {
    return this.sendRaw(encodeNodeMessage(message, form));
  }

  /**
   * Sends one line as-is (tests use it for malformed input); false when not connected or the
   * connection is closing (the core ended it: the line would go nowhere), and then not counted.
   */
  sendRaw(line: string): boolean {
    if (!this.link || !this.link.send(line)) return false;
    this.stats.linesSent++;
    return true;
  }

  sendPotStatus(potId: string, status: PotStatus, message?: string, potType?: string): boolean {
    const m: NodeMessage = { type: 'PotStatusUpdate', node_id: this._nodeId, pot_id: potId, pot_type: potType ?? this.pots.get(potId)?.type ?? '', status };
    if (message !== undefined) m.message = message;
    return this.send(m);
  }

  sendNodeEvent(event: string, message?: string, description?: string, form: 'typed' | 'serde' = 'typed'): boolean {
    const m: NodeMessage = { type: 'NodeEvent', event };
    if (message !== undefined) m.message = message;
    if (description !== undefined) m.description = description;
    return this.send(m, { nodeEventForm: form });
  }

  sendNodeDrop(form: 'object' | 'null' | 'string' = 'object'): boolean {
    return this.send({ type: 'NodeDrop' }, { nodeDropForm: form });
  }

  /**
   * One synthetic attack event from `potId` (default: the next running pot, else the first pot,
   * else "cowrie-01"), as PotEvent or as the event-shaped PotStatusUpdate real nodes send.
   */
  sendAttack(form: AttackEventForm = this.opts.cowrieText ? 'cowrie-text' : (this.opts.eventForm ?? 'potevent'), potId?: string): boolean {
    if (!this.link) return false;
    const pot = potId !== undefined ? this.pots.get(potId) : this.nextRunningPot();
    const id = potId ?? pot?.id ?? 'cowrie-01';
    this.attackSession ??= new AttackSession(this.name);
    const attack = this.attackSession.next(this.now());
    // Counted only when handed to the connection: what a closing connection refused was never sent.
    const counted = (sent: boolean): boolean => {
      if (sent) this.stats.eventsSent++;
      return sent;
    };
    if (form === 'status') {
      // what the public node forwards: no status, usually no pot_type, the text in message
      return counted(this.send({ type: 'PotStatusUpdate', node_id: this._nodeId, pot_id: id, pot_type: '', status: '', message: attack.text }));
    }
    if (form === 'cowrie-text') {
      // the real node: cowrie's sensor name instead of the pot id, no type, no status
      return counted(this.send({ type: 'PotStatusUpdate', node_id: this._nodeId, pot_id: this.name, pot_type: '', status: '', message: attack.text }));
    }
    return counted(this.send({
      type: 'PotEvent',
      node_id: this._nodeId,
      pot_id: id,
      pot_type: pot?.type ?? 'cowrie',
      event_type: attack.eventid,
      timestamp: attack.data.timestamp as string,
      data: attack.data,
    }));
  }

  // ------------------------------------------------------------ secret file

  private now(): number {
    return this.opts.clock ? this.opts.clock() : Date.now();
  }

  private provisionSecret(secret: string): void {
    this._secret = secret;
    const path = this.secretPath;
    if (path) this.writeSecretFile(secret);
  }

  private writeSecretFile(secret: string): void {
    const dir = this.opts.secretDir!;
    mkdirSync(dir, { recursive: true });
    const path = join(dir, SECRET_FILE_NAME);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, secret, { mode: 0o600 });
    renameSync(tmp, path);
  }

  /** Like the node at process start: keep a well-formed secret, silently replace anything else. */
  private loadSecret(): void {
    const path = this.secretPath;
    let secret = this._secret;
    if (path) {
      try {
        secret = readFileSync(path, 'utf8');
      } catch {
        secret = '';
      }
    }
    if (!isValidNodeSecret(secret)) {
      secret = generateNodeSecret();
      if (path) this.writeSecretFile(secret);
    }
    this._secret = secret;
  }

  // ------------------------------------------------------------ connection

  private connect(): void {
    this.stats.connects++;
    const transport = this.opts.transport ?? 'tcp';
    let settle!: () => void;
    this.closed = new Promise((resolve) => (settle = resolve));
    let opened = false;
    const onOpen = () => {
      if (this.phase === 'stopped') return;
      opened = true;
      this.emit('connected');
      this.register();
    };
    const onClose = (reason: string) => {
      this.link = undefined;
      settle();
      this.onDisconnect(reason, opened);
    };
    this.link = transport === 'ws' ? this.openWebSocket(onOpen, onClose) : this.openTcp(onOpen, onClose);
  }

  private tlsOptions() {
    return {
      ca: this.opts.ca,
      minVersion: 'TLSv1.3' as const,
      // HoneyBee nodes only trust certificates with a subjectAltName; Node's default check
      // would fall back to the CN, so refuse CN-only certificates explicitly.
      checkServerIdentity: (host: string, cert: PeerCertificate) =>
        cert.subjectaltname ? checkServerIdentity(host, cert) : new Error('server certificate has no subjectAltName; CN-only certificates are rejected'),
    };
  }

  private openTcp(onOpen: () => void, onClose: (reason: string) => void): Link {
    const { host, port } = this.opts.cores !== undefined ? parseCoreAddress(this.core) : { host: this.opts.host ?? '127.0.0.1', port: this.opts.port ?? 9001 };
    let socket: Socket;
    if (this.opts.tls) {
      const servername = this.opts.servername ?? (isIP(host) ? undefined : host);
      socket = tlsConnect({ host, port, servername, ...this.tlsOptions() }, onOpen);
    } else {
      socket = netConnect({ host, port }, onOpen);
    }
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    const maxLine = this.opts.maxLineBytes ?? 1 << 20;
    let buffered = '';
    let reason = 'connection closed';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
        if (socket.destroyed) return;
      }
      if (buffered.length > maxLine) {
        this.protocolError(`line from core exceeds ${maxLine} bytes`);
        reason = 'oversized line';
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      reason = err.message;
      if (this.phase === 'connecting') this.emit('connectError', err);
    });
    socket.on('close', () => onClose(reason));
    // Lines sent inside batch() are joined and written once: one write request for the whole
    // batch instead of one per line (cork() still queued a request and a chunk per line), so the
    // simulator stays cheap next to the core it loads. The bytes on the wire are the same.
    let gathered: string[] | undefined;
    let gatheredBytes = 0;
    return {
      // A socket the core ended (its FIN arrived) takes no more lines: write() would fail later.
      send: (line) => {
        if (socket.destroyed || socket.writableEnded || socket.readableEnded) return false;
        if (gathered !== undefined) {
          gathered.push(line);
          gatheredBytes += line.length + 1;
        } else {
          socket.write(line + '\n');
        }
        return true;
      },
      backlog: () => socket.writableLength + gatheredBytes,
      batch: (sends) => {
        if (gathered !== undefined) return sends();
        gathered = [];
        try {
          sends();
        } finally {
          const lines = gathered;
          gathered = undefined;
          gatheredBytes = 0;
          if (lines.length > 0 && !socket.destroyed && !socket.writableEnded) socket.write(lines.join('\n') + '\n');
        }
      },
      close: () => socket.destroy(),
    };
  }

  private openWebSocket(onOpen: () => void, onClose: (reason: string) => void): Link {
    const url = this.core;
    const secure = url.startsWith('wss:');
    // ws hands these to tls.connect; its typings describe an older checkServerIdentity shape
    const options = {
      maxPayload: this.opts.maxLineBytes ?? 1 << 20,
      perMessageDeflate: false,
      ...(secure ? { ...this.tlsOptions(), servername: this.opts.servername } : {}),
    } as unknown as ClientOptions;
    const ws = new WebSocket(url, options);
    let reason = 'connection closed';
    ws.on('open', onOpen);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.protocolError('binary frame from core (envelopes are text frames)');
        return;
      }
      const text = data.toString();
      this.onLine(text.endsWith('\n') ? text.slice(0, -1) : text);
    });
    ws.on('error', (err) => {
      reason = err.message;
      if (this.phase === 'connecting') this.emit('connectError', err);
    });
    ws.on('close', (code, why) => {
      if (reason === 'connection closed') reason = `websocket closed (${code}${why.length ? ` ${why.toString()}` : ''})`;
      onClose(reason);
    });
    return {
      send: (line) => {
        if (ws.readyState !== WebSocket.OPEN) return false;
        ws.send(line);
        return true;
      },
      backlog: () => ws.bufferedAmount,
      // One frame per envelope is the WebSocket protocol: nothing to gather.
      batch: (sends) => sends(),
      close: () => ws.terminate(),
    };
  }

  private register(): void {
    this.phase = 'awaiting-ack';
    const m: NodeMessage = {
      type: 'NodeRegistration',
      node_id: this._nodeId,
      node_name: this.name,
      address: this.opts.address ?? '0.0.0.0',
      port: this.opts.advertisedPort ?? 8080,
      node_type: this.opts.nodeType ?? 'Full',
    };
    // a TOTP code only changes with the 30 s step, so reconnects inside one window reuse it
    if (this.opts.sendTotp !== false) m.totp_code = totpCode(this._secret, this.now());
    this.send(m);
    this.setTimer(this.opts.ackTimeoutMs ?? 10_000, () => {
      this.protocolError(`no RegistrationAck within ${this.opts.ackTimeoutMs ?? 10_000} ms`);
      this.link?.close();
    });
  }

  private onDisconnect(reason: string, wasOpen: boolean): void {
    this.clearTimers();
    if (this.phase === 'stopped') {
      if (wasOpen) this.emit('disconnected', reason);
      return;
    }
    this.phase = 'waiting-to-reconnect';
    if (wasOpen) this.emit('disconnected', reason);
    if (this.phase !== 'waiting-to-reconnect') return; // a listener stopped or restarted us
    if (this.restartPending) {
      // a restarted process comes back at once with a fresh node_id and re-reads its secret
      this.restartPending = false;
      this._nodeId = randomNodeId();
      this.loadSecret();
      this.phase = 'connecting';
      this.connect();
      return;
    }
    if (this.opts.reconnect === false) {
      this.phase = 'stopped';
      return;
    }
    // Failover: after a failed or lost connection the next attempt goes to the next core of the list.
    if (this.opts.cores !== undefined) this.coreIndex = (this.coreIndex + 1) % this.opts.cores.length;
    this.setTimer(this.opts.reconnectDelayMs ?? 5000, () => {
      this.phase = 'connecting';
      this.connect();
    });
  }

  private setTimer(ms: number, fn: () => void): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fn();
    }, ms);
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.attackTimer) clearInterval(this.attackTimer);
    this.timer = this.heartbeat = this.attackTimer = undefined;
  }

  private protocolError(text: string): void {
    this.stats.protocolErrors++;
    this.emit('protocolError', text);
  }

  // ------------------------------------------------------------ inbound

  private onLine(line: string): void {
    if (line.length === 0) return;
    const decoded = decodeCoreMessage(line);
    if (this.phase === 'awaiting-ack') {
      if (!decoded.ok || decoded.message.type !== 'RegistrationAck') {
        this.protocolError(`expected RegistrationAck as the first line, got ${decoded.ok ? decoded.message.type : decoded.error}`);
        this.link?.close();
        return;
      }
      this.onAck(decoded.message);
      return;
    }
    if (this.phase !== 'registered') return;
    if (!decoded.ok) {
      this.protocolError(decoded.error);
      return;
    }
    if (decoded.message.type !== 'NodeCommand') {
      this.protocolError('unexpected RegistrationAck after registration');
      return;
    }
    this.stats.commands++;
    this.emit('command', decoded.message.command);
    if (this.link) this.answer(decoded.message.command);
  }

  private onAck(ack: RegistrationAckMsg): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!ack.accepted) {
      this.stats.rejections++;
      this.emit('rejected', ack);
      this.link?.close();
      return;
    }
    if (ack.totp_key !== undefined) {
      // a malformed key would be replaced by a fresh secret of the node's own: lock-out
      const stored = isValidNodeSecret(ack.totp_key);
      const secret = stored ? ack.totp_key : generateNodeSecret();
      this._secret = secret;
      if (this.opts.secretDir !== undefined) this.writeSecretFile(secret);
      this.emit('secret', { stored });
    }
    this.phase = 'registered';
    this.stats.registrations++;
    this.emit('registered', ack);
    if (this.phase !== 'registered') return;
    this.send({ type: 'NodeStatusUpdate', node_id: this._nodeId, status: 'Running' });
    if (this.opts.announcePots && this.stats.registrations === 1) for (const pot of this.pots.values()) this.potStatus(pot);
    this.heartbeat = setInterval(() => {
      this.send({ type: 'NodeStatusUpdate', node_id: this._nodeId, status: 'Running' });
    }, this.opts.heartbeatMs ?? 30_000);
    this.startAttacks();
  }

  // ------------------------------------------------------------ commands

  private potStatus(pot: SimulatedPot, message?: string): void {
    this.sendPotStatus(pot.id, pot.status, message, pot.type);
  }

  private notFound(action: string, potId: string): void {
    this.send({ type: 'NodeEvent', event: 'Error', message: `Failed to ${action}: pot ${potId} not found` });
  }

  private failed(pot: SimulatedPot, command: FailableCommand): boolean {
    const failure = this.opts.failures?.[command];
    if (failure === undefined) return false;
    pot.status = 'Failed';
    this.potStatus(pot, `Status: Failed - ${failure}`);
    return true;
  }

  private answer(command: NodeCommandBody): void {
    if ('InstallPot' in command) {
      const c = command.InstallPot;
      const pot: SimulatedPot = { id: c.pot_id, type: c.honeypot_type, status: 'Installing' };
      this.pots.set(pot.id, pot);
      this.potStatus(pot, c.git_url ? `Status: Installing - Cloning ${c.git_url}...` : 'Status: Installing - Installing from HoneyBee PotStore...');
      if (this.failed(pot, 'InstallPot')) return;
      pot.status = 'Stopped';
      this.potStatus(pot, 'Status: Stopped - Installation complete');
      if (c.auto_start && !this.failed(pot, 'DeployPot')) {
        pot.status = 'Running';
        this.potStatus(pot, `Status: Running - ${pot.type} honeypot started`);
      }
      return;
    }
    if ('Restart' in command) {
      this.restartPending = true;
      this.emit('restarting', this._nodeId);
      this.link?.close();
      return;
    }
    if ('UpdateConfig' in command) return; // the real node reloads silently
    if ('GetInstalledPots' in command) {
      for (const pot of this.pots.values()) this.potStatus(pot);
      return;
    }
    const [name, potId] = Object.entries(command)[0] as [string, string];
    const pot = this.pots.get(potId);
    switch (name) {
      case 'DeployPot':
        if (!pot) return this.notFound('deploy pot', potId);
        if (this.failed(pot, 'DeployPot')) return;
        pot.status = 'Running';
        return this.potStatus(pot, `Status: Running - ${pot.type} honeypot started`);
      case 'StopPot':
        if (!pot) return this.notFound('stop pot', potId);
        if (this.failed(pot, 'StopPot')) return;
        pot.status = 'Stopped';
        return this.potStatus(pot, 'Status: Stopped - Honeypot stopped');
      case 'RestartPot':
        if (!pot) return this.notFound('restart pot', potId);
        if (this.failed(pot, 'RestartPot')) return;
        pot.status = 'Running';
        return this.potStatus(pot, `Status: Running - ${pot.type} honeypot restarted`);
      case 'GetPotStatus':
        if (!pot) return this.notFound('get pot status', potId);
        return this.potStatus(pot);
      case 'GetPotInfo':
        if (!pot) return this.notFound('get pot info', potId);
        return this.potStatus(pot, `Info: ${pot.type} pot ${pot.id} is ${pot.status}`);
      case 'GetPotLogs':
        if (!pot) return this.notFound('get pot logs', potId);
        return this.potStatus(pot, 'Logs: simulated node keeps no pot logs');
      case 'GetPotMetrics':
        if (!pot) return this.notFound('get pot metrics', potId);
        return this.potStatus(pot, `Metrics: events_sent=${this.stats.eventsSent}`);
    }
  }

  // ------------------------------------------------------------ attack traffic

  private nextRunningPot(): SimulatedPot | undefined {
    if (this.pots.size === 0) return undefined;
    const all = [...this.pots.values()];
    for (let i = 0; i < all.length; i++) {
      const pot = all[(this.attackPotCursor + i) % all.length]!;
      if (pot.status === 'Running') {
        this.attackPotCursor = (this.attackPotCursor + i + 1) % all.length;
        return pot;
      }
    }
    return all[0];
  }

  private startAttacks(): void {
    const rate = this.opts.eventsPerSecond ?? 0;
    if (!(rate > 0)) return;
    // Token bucket: steady `rate` on average, at most one second of catch-up after a stall,
    // and nothing queued while the socket is backed up (a real node blocks on a full socket).
    const tickMs = Math.min(1000, Math.max(20, Math.floor(1000 / rate)));
    this.attackTokens = 0;
    this.attackLast = Date.now();
    this.attackTimer = setInterval(() => {
      const now = Date.now();
      this.attackTokens = Math.min(Math.max(1, rate), this.attackTokens + ((now - this.attackLast) * rate) / 1000);
      this.attackLast = now;
      // One write per tick, not one per line: a tick's burst costs the simulator one system call,
      // so simulated nodes stay cheap next to the core they load (the bytes the core reads are the same).
      this.link?.batch(() => {
        while (this.attackTokens >= 1 && this.link && this.link.backlog() < 1 << 20) {
          this.attackTokens--;
          this.sendAttack();
        }
      });
    }, tickMs);
  }
}
