// `apiary node simulate`: runs one or many simulated HoneyBee nodes against a core.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCoreAddress, SimulatedNode, type AttackEventForm, type SimulatedNodeOptions, type SimulatorTransport } from './node.js';

export interface SimulatorCliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Ends the run (the CLI passes one wired to SIGINT/SIGTERM; without it they are handled here). */
  signal?: AbortSignal;
}

export const SIMULATOR_USAGE = `Usage: apiary node simulate [options]

Simulates HoneyBee nodes speaking Protocol v2 to an Apiary core: registers with a TOTP code,
stores the totp_key of the ack in its secret file, heartbeats, answers commands like a real
node and optionally sends synthetic cowrie-like attack events.

Connection
  --transport tcp|ws        line-delimited JSON over TCP (default) or WebSocket
  --host HOST               core host (default 127.0.0.1)
  --port PORT               core port (default 9001)
  --url URL                 WebSocket URL (default ws[s]://HOST:PORT/ws/node)
  --cores LIST              several cores, comma-separated, for failover: HOST:PORT for TCP,
                            ws[s]:// URLs for WebSocket; the node moves to the next one each
                            time a connection fails or is lost (wins over --host/--port/--url)
  --tls                     TLS 1.3 (TCP), or wss:// for the default WebSocket URL
  --ca PATH                 PEM CA file the core's certificate must chain to
Node
  --name NAME               node_name (default: this host's name)
  --type Full|Agent         node_type (default Full)
  --address ADDR            advertised address (default 0.0.0.0)
  --node-port PORT          advertised port (default 8080)
  --secret-dir DIR          where .honeybee_totp_secret lives (default: <data-dir>/simulator/NAME/,
                            data-dir from APIARY_DATA_DIR or ./data; with --count > 1 each
                            node uses DIR/NAME-i/)
  --heartbeat SECONDS       NodeStatusUpdate interval (default 30)
  --reconnect-delay SECONDS delay before reconnecting, no backoff (default 5)
  --fail-install MESSAGE    answer every InstallPot with Failed "MESSAGE"
                            (e.g. "Git clone failed: exit status 128")
Traffic
  --events-per-second N     attack events per second per node (default 0); a running
                            cowrie pot "cowrie-01" is pre-installed when N > 0
  --event-form potevent|status|cowrie-text
                            documented PotEvent (default), or the PotStatusUpdate with
                            status "" for the pot, or cowrie-text (see --cowrie-text)
  --cowrie-text             cowrie attacks exactly as the real node forwards them: cowrie's
                            text lines as PotStatusUpdate with pot_id = sensor name,
                            pot_type "" and status "" (same as --event-form cowrie-text)
Run
  --count N                 simulate N nodes named NAME-0 .. NAME-(N-1) (default 1)
  --duration SECONDS        stop after this long (default: until interrupted)
  --verbose                 per-node log lines even when --count > 10
  --quiet                   only the final summary
  -h, --help                this text

Exit status: 0 when at least one node registered, 1 when none did, 2 on bad arguments.
`;

class UsageError extends Error {}

function positiveNumber(flag: string, value: string | undefined, fallback: number, opts: { integer?: boolean; allowZero?: boolean } = {}): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (!opts.allowZero && n === 0) || (opts.integer && !Number.isInteger(n))) {
    throw new UsageError(`${flag} must be a ${opts.integer ? 'whole' : ''} number${opts.allowZero ? ' >= 0' : ' > 0'}, got "${value}"`);
  }
  return n;
}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

interface CliPlan {
  nodes: SimulatedNodeOptions[];
  durationMs: number;
  verbose: boolean;
  quiet: boolean;
}

function plan(argv: string[]): CliPlan | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      transport: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      url: { type: 'string' },
      cores: { type: 'string' },
      tls: { type: 'boolean' },
      ca: { type: 'string' },
      name: { type: 'string' },
      type: { type: 'string' },
      address: { type: 'string' },
      'node-port': { type: 'string' },
      'secret-dir': { type: 'string' },
      heartbeat: { type: 'string' },
      'reconnect-delay': { type: 'string' },
      'fail-install': { type: 'string' },
      'events-per-second': { type: 'string' },
      'event-form': { type: 'string' },
      'cowrie-text': { type: 'boolean' },
      count: { type: 'string' },
      duration: { type: 'string' },
      verbose: { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const transport = oneOf<SimulatorTransport>('--transport', values.transport, ['tcp', 'ws'], 'tcp');
  const host = values.host ?? '127.0.0.1';
  const port = positiveNumber('--port', values.port, 9001, { integer: true });
  if (port > 65535) throw new UsageError('--port must be at most 65535');
  if (values.url !== undefined && transport !== 'ws') throw new UsageError('--url needs --transport ws');
  const url = values.url ?? `${values.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}/ws/node`;
  if (transport === 'ws' && !/^wss?:\/\//.test(url)) throw new UsageError(`--url must start with ws:// or wss://, got "${url}"`);
  let cores: string[] | undefined;
  if (values.cores !== undefined) {
    cores = values.cores.split(',').map((c) => c.trim()).filter((c) => c !== '');
    if (cores.length === 0) throw new UsageError('--cores must name at least one core');
    for (const c of cores) {
      if (transport === 'ws') {
        if (!/^wss?:\/\//.test(c)) throw new UsageError(`--cores with --transport ws takes ws:// or wss:// URLs, got "${c}"`);
      } else {
        try {
          parseCoreAddress(c);
        } catch (err) {
          throw new UsageError(`--cores: ${(err as Error).message}`);
        }
      }
    }
  }
  let ca: Buffer | undefined;
  if (values.ca !== undefined) {
    try {
      ca = readFileSync(values.ca);
    } catch (err) {
      throw new UsageError(`cannot read --ca ${values.ca}: ${(err as Error).message}`);
    }
  }
  const nodePort = positiveNumber('--node-port', values['node-port'], 8080, { integer: true, allowZero: true });
  if (nodePort > 65535) throw new UsageError('--node-port must be at most 65535');
  const count = positiveNumber('--count', values.count, 1, { integer: true });
  const eventsPerSecond = positiveNumber('--events-per-second', values['events-per-second'], 0, { allowZero: true });
  const name = values.name ?? hostname();
  if (name.length === 0) throw new UsageError('--name must not be empty');
  // By default not the working directory (run from a checkout, the secret file would land among
  // the sources) but one directory per node name under the data directory.
  const secretDir = values['secret-dir'];
  const defaultSecretDir = join(process.env.APIARY_DATA_DIR || 'data', 'simulator');
  const base: Omit<SimulatedNodeOptions, 'name'> = {
    transport,
    host,
    port,
    url,
    cores,
    tls: values.tls ?? false,
    ca,
    nodeType: oneOf('--type', values.type, ['Full', 'Agent'] as const, 'Full'),
    address: values.address ?? '0.0.0.0',
    advertisedPort: nodePort,
    heartbeatMs: positiveNumber('--heartbeat', values.heartbeat, 30) * 1000,
    reconnectDelayMs: positiveNumber('--reconnect-delay', values['reconnect-delay'], 5, { allowZero: true }) * 1000,
    eventsPerSecond,
    eventForm: oneOf<AttackEventForm>('--event-form', values['event-form'], ['potevent', 'status', 'cowrie-text'], 'potevent'),
    cowrieText: values['cowrie-text'] ?? false,
    failures: values['fail-install'] !== undefined ? { InstallPot: values['fail-install'] } : undefined,
  };
  const nodes: SimulatedNodeOptions[] = [];
  for (let i = 0; i < count; i++) {
    const nodeName = count === 1 ? name : `${name}-${i}`;
    nodes.push({
      ...base,
      name: nodeName,
      secretDir: secretDir === undefined ? join(defaultSecretDir, nodeName) : count === 1 ? secretDir : join(secretDir, nodeName),
      pots: eventsPerSecond > 0 ? [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }] : [],
      announcePots: true,
    });
  }
  return {
    nodes,
    durationMs: positiveNumber('--duration', values.duration, 0, { allowZero: true }) * 1000,
    verbose: values.verbose ?? false,
    quiet: values.quiet ?? false,
  };
}

/** Runs `apiary node simulate ARGV...`; resolves with the process exit code. */
export async function runSimulatorCli(argv: string[], io: SimulatorCliIo): Promise<number> {
  let p: CliPlan | 'help';
  try {
    p = plan(argv);
  } catch (err) {
    io.stderr.write(`apiary node simulate: ${(err as Error).message}\nRun with --help for usage.\n`);
    return 2;
  }
  if (p === 'help') {
    io.stdout.write(SIMULATOR_USAGE);
    return 0;
  }
  const { durationMs, quiet } = p;
  const perNodeLogs = !quiet && (p.verbose || p.nodes.length <= 10);
  const log = (line: string) => io.stdout.write(`${new Date().toISOString()} ${line}\n`);

  const nodes = p.nodes.map((o) => new SimulatedNode(o));
  for (const node of nodes) {
    if (!perNodeLogs) continue;
    const tag = `[${node.name}]`;
    // never log secrets: neither the node's TOTP secret nor an ack's totp_key
    node.on('registered', (ack) => log(`${tag} registered as node_id ${node.nodeId}${ack.message ? `: ${ack.message}` : ''}`));
    node.on('rejected', (ack) => log(`${tag} registration rejected${ack.message ? `: ${ack.message}` : ''}`));
    node.on('secret', ({ stored }) => log(`${tag} ${stored ? 'stored the TOTP key from the ack' : 'ack carried a malformed TOTP key; generated a new secret instead'}`));
    node.on('command', (command) => log(`${tag} command ${JSON.stringify(command)}`));
    node.on('disconnected', (reason) => log(`${tag} disconnected: ${reason}`));
    node.on('connectError', (err) => log(`${tag} connect failed: ${err.message}`));
    node.on('protocolError', (text) => log(`${tag} protocol error: ${text}`));
    node.on('restarting', () => log(`${tag} restarting (new node_id)`));
  }

  const summary = () => {
    const sum = { online: 0, registrations: 0, rejections: 0, commands: 0, eventsSent: 0, protocolErrors: 0 };
    for (const n of nodes) {
      if (n.registered) sum.online++;
      sum.registrations += n.stats.registrations;
      sum.rejections += n.stats.rejections;
      sum.commands += n.stats.commands;
      sum.eventsSent += n.stats.eventsSent;
      sum.protocolErrors += n.stats.protocolErrors;
    }
    return sum;
  };
  const describeSummary = () => {
    const s = summary();
    return `${s.online}/${nodes.length} online, ${s.registrations} registrations, ${s.rejections} rejections, ${s.commands} commands, ${s.eventsSent} events sent, ${s.protocolErrors} protocol errors`;
  };

  if (!quiet) {
    const target = p.nodes[0]!.transport === 'ws' ? p.nodes[0]!.url : `${p.nodes[0]!.tls ? 'tls' : 'tcp'}://${p.nodes[0]!.host}:${p.nodes[0]!.port}`;
    log(`simulating ${nodes.length} node(s) against ${target}`);
  }
  for (const node of nodes) node.start();

  const progress = !quiet && !perNodeLogs ? setInterval(() => log(describeSummary()), 10_000) : undefined;
  await new Promise<void>((resolve) => {
    const timer = durationMs > 0 ? setTimeout(finish, durationMs) : undefined;
    const external = io.signal;
    const onSignal = () => finish();
    if (external) {
      if (external.aborted) return finish();
      external.addEventListener('abort', onSignal, { once: true });
    } else {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    }
    function finish() {
      if (timer) clearTimeout(timer);
      if (external) external.removeEventListener('abort', onSignal);
      else {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      resolve();
    }
  });
  if (progress) clearInterval(progress);
  const final = describeSummary(); // before stopping, so "online" means something
  const total = summary();
  await Promise.all(nodes.map((n) => n.stop()));
  io.stdout.write(`${new Date().toISOString()} done: ${final}\n`);
  return total.registrations > 0 ? 0 : 1;
}
