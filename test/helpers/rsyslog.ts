// A real rsyslogd (Debian's) for output tests: foreground (-n), its own config, pid file and work
// directory in a temp dir, UDP and TCP inputs on free 127.0.0.1 ports, every message written to a
// file as `version|facility|severity|timestamp|hostname|app-name|procid|msgid|structured-data|msg`.
// Tracked by ./children.ts so it dies with the test process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { trackChild, untrackChild } from './children.js';
import { tempDir } from './tmp.js';

export interface SyslogLine {
  version: string;
  facility: number;
  severity: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  structuredData: string;
  msg: string;
}

export interface TestRsyslog {
  tcpPort: number;
  udpPort: number;
  outFile: string;
  /** Received messages so far, parsed. */
  lines(): SyslogLine[];
  stop(): Promise<void>;
  start(): Promise<void>;
  dispose(): Promise<void>;
}

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(r));
  return port;
}

async function tcpOpen(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

export async function startTestRsyslog(): Promise<TestRsyslog> {
  const dir = tempDir('apiary-rsyslog-');
  const work = join(dir.path, 'work');
  mkdirSync(work);
  const tcpPort = await freeTcpPort();
  const udpPort = await freeUdpPort();
  const outFile = join(dir.path, 'received.log');
  const conf = join(dir.path, 'rsyslog.conf');
  const pidFile = join(dir.path, 'rsyslogd.pid');
  writeFileSync(
    conf,
    [
      `global(workDirectory="${work}" maxMessageSize="64k")`,
      'module(load="imudp")',
      'module(load="imtcp")',
      `input(type="imudp" address="127.0.0.1" port="${udpPort}")`,
      `input(type="imtcp" address="127.0.0.1" port="${tcpPort}")`,
      'template(name="fields" type="string" string="%protocol-version%|%syslogfacility%|%syslogseverity%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\\n")',
      `*.* action(type="omfile" file="${outFile}" template="fields" flushOnTXEnd="on" asyncWriting="off")`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | null = null;
  let stderr = '';
  const start = async () => {
    const c = spawn(existsSync('/usr/sbin/rsyslogd') ? '/usr/sbin/rsyslogd' : 'rsyslogd', ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    trackChild(c.pid);
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    c.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
    const end = Date.now() + 10_000;
    while (!(await tcpOpen(tcpPort))) {
      if (c.exitCode !== null || Date.now() > end) throw new Error(`rsyslogd did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
    untrackChild(c.pid);
    child = null;
  };
  await start();
  return {
    tcpPort,
    udpPort,
    outFile,
    lines() {
      if (!existsSync(outFile)) return [];
      return readFileSync(outFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const p = l.split('|');
          const [version, facility, severity, timestamp, hostname, appName, procId, msgId, structuredData] = p as string[];
          return {
            version: version!,
            facility: Number(facility),
            severity: Number(severity),
            timestamp: timestamp!,
            hostname: hostname!,
            appName: appName!,
            procId: procId!,
            msgId: msgId!,
            structuredData: structuredData!,
            msg: p.slice(9).join('|'),
          };
        });
    },
    stop,
    start,
    async dispose() {
      await stop();
      dir.cleanup();
    },
  };
}
