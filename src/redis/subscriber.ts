// A pub/sub subscription on whatever REDIS_URL names, that says each time it is (re)established.
// Whoever listens to notices must know when some may have been missed (the connection dropped and
// came back) so that it re-reads the state they describe. A one-server or Sentinel client says so
// itself ('ready' after every reconnect, channels re-subscribed). ioredis' Cluster client does not:
// its subscriber connection moves to another node and re-subscribes without any event. Since a
// PUBLISH on a Redis Cluster reaches every node, one plain connection to any node hears every
// message; so on a Cluster the subscription is a connection of our own to one node, which moves
// on to the next node when its own cannot be reached again, and says 'ready' each time.
import { EventEmitter } from 'node:events';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { createRedisClient, type HostPort, type RedisTarget } from './target.js';

export interface RedisSubscriber {
  /** Resolves once the channel is subscribed (on a Cluster: on some node, waiting for one). */
  subscribe(channel: string): Promise<void>;
  on(event: 'message', listener: (channel: string, message: string) => void): this;
  /** Each time the connection is ready, the first time included; the channels are re-subscribed then. */
  on(event: 'ready', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  close(): Promise<void>;
}

/**
 * `nodes` (Cluster only): the nodes to try, in order (typically the commands client's current view
 * of the cluster); the URL's nodes when it gives none.
 */
export function createRedisSubscriber(target: RedisTarget, options: RedisOptions, nodes?: () => HostPort[]): RedisSubscriber {
  if (target.kind === 'cluster') {
    const seeds = target.nodes;
    const credentials: RedisOptions = { username: target.username, password: target.password, ...(target.tls && { tls: {} }) };
    return new NodeHoppingSubscriber(() => {
      const known = nodes?.() ?? [];
      return known.length > 0 ? known : seeds;
    }, { ...options, ...credentials });
  }
  return new ClientSubscriber(createRedisClient(target, options));
}

/** The nodes a Cluster client knows now (masters and replicas: any of them hears every PUBLISH). */
export function clusterNodesOf(cluster: Cluster): HostPort[] {
  return cluster.nodes('all').map((n) => ({ host: n.options.host!, port: n.options.port! }));
}

const QUIT_WAIT_MS = 2000;

async function closeClient(client: Redis | Cluster): Promise<void> {
  try {
    if (client.status === 'ready') await Promise.race([client.quit(), new Promise((r) => setTimeout(r, QUIT_WAIT_MS).unref())]);
  } catch {
    // going away anyway
  }
  client.disconnect();
}

/** One server or Sentinel: the ioredis client already re-subscribes and says 'ready' after each reconnect. */
class ClientSubscriber extends EventEmitter implements RedisSubscriber {
  constructor(private readonly client: Redis | Cluster) {
    super();
    client.on('message', (channel: string, message: string) => this.emit('message', channel, message));
    client.on('ready', () => this.emit('ready'));
    client.on('error', (err: Error) => this.emit('error', err));
  }

  async subscribe(channel: string): Promise<void> {
    await this.client.subscribe(channel);
  }

  close(): Promise<void> {
    return closeClient(this.client);
  }
}

/** Tries a node this often before moving on to the next. */
const SAME_NODE_TRIES = 2;

class NodeHoppingSubscriber extends EventEmitter implements RedisSubscriber {
  private readonly channels = new Set<string>();
  private client!: Redis;
  private next = 0;
  /** Nodes tried in a row without getting ready: the pause before the next grows with them. */
  private hops = 0;
  private hopTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly nodes: () => HostPort[],
    private readonly options: RedisOptions,
  ) {
    super();
    this.connect();
  }

  async subscribe(channel: string): Promise<void> {
    this.channels.add(channel);
    for (;;) {
      try {
        await this.client.subscribe(channel);
        return;
      } catch (err) {
        // This node went away before answering: ask again once the next one is ready.
        if (this.closed) throw err;
        await new Promise<void>((resolve) => this.once('ready', resolve));
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.hopTimer);
    await closeClient(this.client);
  }

  private connect(): void {
    const list = this.nodes();
    const node = list[this.next++ % list.length]!;
    const client = new Redis({
      ...this.options,
      host: node.host,
      port: node.port,
      lazyConnect: false,
      // A dropped connection is retried on the same node at once, then the next node is tried.
      retryStrategy: (times) => (times <= SAME_NODE_TRIES ? 100 * times : null),
    });
    this.client = client;
    client.on('message', (channel: string, message: string) => this.emit('message', channel, message));
    client.on('error', (err: Error) => this.emit('error', err));
    client.on('ready', () => {
      this.hops = 0;
      this.emit('ready');
    });
    client.once('end', () => {
      if (this.closed || this.client !== client) return;
      this.hopTimer = setTimeout(() => this.connect(), Math.min(100 * ++this.hops, 1000));
      this.hopTimer.unref();
    });
    // Sent once connected (ioredis' offline queue); re-sent by ioredis itself after a reconnect.
    if (this.channels.size > 0) client.subscribe(...this.channels).catch(() => undefined);
  }
}
