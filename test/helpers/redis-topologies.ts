// Redis deployments beyond one server, for the tests of REDIS_URL's sentinel and cluster forms:
// a master with a replica watched by one sentinel, and a three-master cluster. Every process is a
// real redis-server on 127.0.0.1, tracked by ./children.ts so it dies with the test process.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, ping } from '../../src/redis/private-server.js';
import { trackChild, untrackChild } from './children.js';
import { tempDir } from './tmp.js';

interface Started {
  port: number;
  child: ChildProcess;
}

async function waitFor(cond: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts redis-server with `args` (plus a free port, retried if another process takes it first). */
async function startServer(dir: string, args: (port: number) => string[]): Promise<Started> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn('redis-server', args(port), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.resume();
    child.stderr!.resume();
    trackChild(child.pid!);
    const exited = once(child, 'exit').then(() => false);
    const up = await Promise.race([waitFor(() => ping(port), `redis on ${port}`).then(() => true), exited]);
    if (up) return { port, child };
    untrackChild(child.pid!);
    if (attempt >= 3) throw new Error(`redis-server ${args(port).join(' ')} did not start`);
  }
}

async function stop(s: Started): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const gone = once(s.child, 'exit');
  s.child.kill('SIGKILL');
  await gone;
  untrackChild(s.child.pid!);
}

export interface TestSentinel {
  /** redis+sentinel:// URL for the monitored master. */
  url: string;
  masterName: string;
  /** Port of the server that is master now, as the sentinel reports it. */
  masterPort(): Promise<number>;
  /** Asks the sentinel to fail over and resolves once it reports the other server as master. */
  failover(): Promise<number>;
  /**
   * Kills the master (SIGKILL: no goodbye to its clients); resolves once it is dead, with the
   * sentinel's promotion of the replica still to come (`promoted`: the new master's port). The dead
   * server stays dead.
   */
  killMaster(): Promise<{ promoted: Promise<number> }>;
  dispose(): Promise<void>;
}

export async function startTestSentinel(): Promise<TestSentinel> {
  const dir = tempDir('apiary-sentinel-');
  const base = (port: number) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path];
  const master = await startServer(dir.path, base);
  const replica = await startServer(dir.path, (port) => [...base(port), '--replicaof', '127.0.0.1', String(master.port)]);
  const masterName = 'apiary-test';
  const sentinel = await startServer(dir.path, (port) => {
    const conf = join(dir.path, `sentinel-${port}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir.path}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        '',
      ].join('\n'),
    );
    return [conf, '--sentinel'];
  });
  const admin = new Redis({ port: sentinel.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  const masterPort = async () => Number(((await admin.call('SENTINEL', 'get-master-addr-by-name', masterName)) as string[])[1]);
  // The sentinel must have found the replica before a failover can pick it.
  await waitFor(async () => ((await admin.call('SENTINEL', 'replicas', masterName)) as unknown[]).length > 0, 'sentinel to see the replica');
  const linked = new Redis({ port: replica.port, host: '127.0.0.1', lazyConnect: true });
  await linked.connect();
  await waitFor(async () => /master_link_status:up/.test(await linked.info('replication')), 'replica to sync');
  linked.disconnect();
  return {
    url: `redis+sentinel://127.0.0.1:${sentinel.port}/${masterName}`,
    masterName,
    masterPort,
    async failover() {
      const before = await masterPort();
      await admin.call('SENTINEL', 'failover', masterName);
      await waitFor(async () => (await masterPort()) !== before, 'the failover');
      return masterPort();
    },
    async killMaster() {
      const before = await masterPort();
      // Only a replica the sentinel knows to be in sync can be promoted (after a failover the old
      // master has just been turned into one).
      await waitFor(async () => {
        const replicas = (await admin.call('SENTINEL', 'replicas', masterName)) as string[][];
        return replicas.some((fields) => {
          const info = new Map<string, string>();
          for (let i = 0; i + 1 < fields.length; i += 2) info.set(fields[i]!, fields[i + 1]!);
          return info.get('master-link-status') === 'ok' && !/s_down|disconnected/.test(info.get('flags') ?? '');
        });
      }, 'the sentinel to see a replica in sync');
      await stop([master, replica].find((s) => s.port === before)!);
      const promoted = waitFor(async () => (await masterPort()) !== before, 'the sentinel to promote the replica').then(masterPort);
      promoted.catch(() => undefined); // the caller's await reports it
      return { promoted };
    },
    async dispose() {
      admin.disconnect();
      for (const s of [sentinel, replica, master]) await stop(s);
      dir.cleanup();
    },
  };
}

export interface TestCluster {
  /** redis+cluster:// URL naming every master. */
  url: string;
  /** The masters' ports (as started). */
  ports: number[];
  /** Kills the node on `port` (SIGKILL); without replicas the slots it served stay unserved. */
  kill(port: number): Promise<void>;
  /**
   * With replicas: kills the master serving `key`; resolves once it is dead, with the promotion of
   * its replica still to come (`promoted`: the port now serving the key, once the cluster is ok).
   */
  killMasterOf(key: string): Promise<{ promoted: Promise<number> }>;
  dispose(): Promise<void>;
}

/**
 * Three masters sharing the 16384 slots, joined with CLUSTER MEET (no redis-cli needed); with
 * `replicas`, one replica each, which the cluster promotes when its master dies.
 */
export async function startTestCluster(opts: { replicas?: boolean } = {}): Promise<TestCluster> {
  const dir = tempDir('apiary-cluster-');
  const nodes: Started[] = [];
  const busPorts: number[] = [];
  const count = opts.replicas ? 6 : 3;
  for (let i = 0; i < count; i++) {
    const busPort = await freePort();
    busPorts.push(busPort);
    nodes.push(
      await startServer(dir.path, (port) => [
        '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir.path,
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-port', String(busPort),
        '--cluster-node-timeout', '2000',
      ]),
    );
  }
  const clients = nodes.map((n) => new Redis({ port: n.port, host: '127.0.0.1' }).on('error', () => undefined));
  const ranges = [[0, 5460], [5461, 10922], [10923, 16383]] as const;
  await Promise.all(ranges.map((r, i) => clients[i]!.call('CLUSTER', 'ADDSLOTSRANGE', r[0], r[1])));
  // With a bus port other than port + 10000, MEET must be told it.
  for (let i = 1; i < nodes.length; i++) await clients[0]!.call('CLUSTER', 'MEET', '127.0.0.1', nodes[i]!.port, busPorts[i]!);
  const infos = async () => Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO') as Promise<string>));
  await waitFor(async () => (await infos()).every((info) => info.includes(`cluster_known_nodes:${count}`)), 'the nodes to meet');
  if (opts.replicas) {
    for (let i = 0; i < 3; i++) {
      const masterId = (await clients[i]!.call('CLUSTER', 'MYID')) as string;
      // The replica must have heard of its master through the bus before it can follow it.
      await waitFor(async () => String(await clients[i + 3]!.call('CLUSTER', 'NODES')).includes(masterId), 'the replica to know its master');
      await clients[i + 3]!.call('CLUSTER', 'REPLICATE', masterId);
    }
    await waitFor(async () => (await Promise.all(clients.slice(3).map((c) => c.info('replication')))).every((r) => r.includes('master_link_status:up')), 'the replicas to sync');
  }
  await waitFor(async () => (await infos()).every((info) => info.includes('cluster_state:ok')), 'the cluster to form');
  for (const c of clients) c.disconnect();
  const live = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  /** Port of the master serving `slot`, as a live node sees the cluster. */
  const servingPort = async (slot: number): Promise<number | undefined> => {
    const probe = new Redis({ port: live()[0]!.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await probe.connect();
      if (!String(await probe.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) return undefined;
      const ranges = (await probe.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
      const range = ranges.find(([from, to]) => from <= slot && slot <= to);
      return range?.[2][1];
    } finally {
      probe.disconnect();
    }
  };
  return {
    url: `redis+cluster://${nodes.slice(0, 3).map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    ports: nodes.slice(0, 3).map((n) => n.port),
    async kill(port) {
      await stop(nodes.find((n) => n.port === port)!);
    },
    async killMasterOf(key) {
      const probe = new Redis({ port: live()[0]!.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
      await probe.connect();
      const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', key));
      probe.disconnect();
      const before = (await servingPort(slot))!;
      await stop(nodes.find((n) => n.port === before)!);
      const promoted = (async () => {
        let now: number | undefined;
        await waitFor(async () => {
          now = await servingPort(slot);
          return now !== undefined && now !== before;
        }, 'a replica to take over the slot');
        return now!;
      })();
      promoted.catch(() => undefined); // the caller's await reports it
      return { promoted };
    },
    async dispose() {
      for (const n of nodes) await stop(n);
      dir.cleanup();
    },
  };
}
