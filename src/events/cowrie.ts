// cowrie.sessions compatibility: classic cowrie's hpfeeds output publishes one JSON summary per SSH/
// telnet session when it closes, and existing consumers (MHN/CHN-style loggers, dashboards) only
// read that channel. Field names and JSON types follow that output: ports are numbers, loggedin is
// null or [user, pass], credentials is a list of [user, pass], startTime/endTime are the ISO
// timestamps of the connect and close events.

export interface CowrieSessionSummary {
  session: string;
  startTime: string;
  endTime: string;
  peerIP: string;
  peerPort: number | null;
  hostIP: string;
  hostPort: number | null;
  loggedin: [string, string] | null;
  credentials: [string, string][];
  commands: string[];
  unknownCommands: string[];
  urls: string[];
  version: string | null;
  ttylog: string | null;
  hashes: string[];
  protocol: string;
}

export type CowrieEmitReason = 'closed' | 'idle' | 'evicted' | 'shutdown';

export interface CowrieAggregatorOptions {
  /** Emit a session with no event for this long. Default 300 000 ms. */
  idleTimeoutMs?: number;
  /** Open sessions kept; beyond this the oldest-started one is emitted early ('evicted'). Default 10 000. */
  maxOpenSessions?: number;
  /** Cap of each list (commands, credentials, urls...) per session. Default 500. */
  maxListEntries?: number;
  /** Cap of each string kept (a command line, a URL). Default 4096 chars. */
  maxStringLength?: number;
}

interface OpenSession {
  node: string;
  potId: string;
  /** Set only for a session filed in `others` (its id was taken when it started). */
  key: string | undefined;
  /** Start order across both maps, for eviction. */
  seq: number;
  lastSeen: number;
  summary: CowrieSessionSummary;
  hashes: Set<string>;
}

export interface CowrieEventInput {
  node: string;
  potId: string;
  potType: string;
  eventType: string;
  timestamp: number;
  data: Record<string, unknown>;
}

type Emit = (node: string, summary: CowrieSessionSummary, reason: CowrieEmitReason) => void;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

function othersKey(node: string, potId: string, sessionId: string): string {
  return node + '\u0000' + potId + '\u0000' + sessionId;
}

function port(v: unknown): number | null {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^\d{1,5}$/.test(v)) return Number(v);
  return null;
}

export class CowrieSessionAggregator {
  /**
   * Open sessions by cowrie session id, each id holding the first open session that had it. The
   * id is a string JSON.parse just made, cheap to hash; the node and pot are then compared. A map
   * keyed by node, pot and id built a new string per event and hashed it: half of add()'s time in
   * profiles.
   */
  private readonly sessions = new Map<string, OpenSession>();
  /**
   * Sessions whose id another node or pot had open when they started (rare: cowrie's ids are 48
   * random bits), by node, pot and id.
   */
  private readonly others = new Map<string, OpenSession>();
  private started = 0;
  private readonly idleTimeoutMs: number;
  private readonly maxOpen: number;
  private readonly maxList: number;
  private readonly maxString: number;

  constructor(
    private readonly emit: Emit,
    opts: CowrieAggregatorOptions = {},
  ) {
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 300_000;
    this.maxOpen = Math.max(1, opts.maxOpenSessions ?? 10_000);
    this.maxList = opts.maxListEntries ?? 500;
    this.maxString = opts.maxStringLength ?? 4096;
  }

  get openSessions(): number {
    return this.sessions.size + this.others.size;
  }

  /**
   * Feeds one committed event. Any event whose event_type is a cowrie eventid ('cowrie.*') counts,
   * whatever its pot_type: nodes do not always fill pot_type, and the eventids are unambiguous.
   * `now` is the core's clock, used for idle expiry.
   */
  add(ev: CowrieEventInput, now: number): void {
    const eventId = ev.eventType;
    if (!eventId.startsWith('cowrie.')) return;
    const d = ev.data;
    const sessionId = str(d.session);
    if (sessionId === undefined || sessionId === '') return;
    const iso = typeof d.timestamp === 'string' ? d.timestamp : new Date(ev.timestamp).toISOString();

    const first = this.sessions.get(sessionId);
    let s = first !== undefined && first.node === ev.node && first.potId === ev.potId ? first : undefined;
    if (s === undefined && this.others.size > 0) s = this.others.get(othersKey(ev.node, ev.potId, sessionId));
    if (s === undefined) {
      // A session seen mid-way (core restarted, events lost upstream) still gets a summary.
      s = {
        node: ev.node,
        potId: ev.potId,
        key: first === undefined ? undefined : othersKey(ev.node, ev.potId, sessionId),
        seq: this.started++,
        lastSeen: now,
        hashes: new Set(),
        summary: {
          session: sessionId,
          startTime: iso,
          endTime: '',
          peerIP: str(d.src_ip) ?? '',
          peerPort: port(d.src_port),
          hostIP: str(d.dst_ip) ?? '',
          hostPort: port(d.dst_port),
          loggedin: null,
          credentials: [],
          commands: [],
          unknownCommands: [],
          urls: [],
          version: null,
          ttylog: null,
          hashes: [],
          protocol: str(d.protocol) ?? 'ssh',
        },
      };
      if (this.openSessions >= this.maxOpen) this.evictOldest();
      if (s.key === undefined) this.sessions.set(sessionId, s);
      else this.others.set(s.key, s);
    } else {
      // No LRU re-insertion per event (it showed in profiles): the maps stay in session-start
      // order, so eviction takes the oldest-started session and idle expiry scans all of them.
      s.lastSeen = now;
    }
    const m = s.summary;

    switch (eventId) {
      case 'cowrie.session.connect':
        m.startTime = iso;
        m.peerIP = str(d.src_ip) ?? m.peerIP;
        m.peerPort = port(d.src_port) ?? m.peerPort;
        m.hostIP = str(d.dst_ip) ?? m.hostIP;
        m.hostPort = port(d.dst_port) ?? m.hostPort;
        if (typeof d.protocol === 'string') m.protocol = d.protocol;
        break;
      case 'cowrie.login.success': {
        const cred = this.credential(d);
        if (cred !== undefined) m.loggedin = cred;
        break;
      }
      case 'cowrie.login.failed': {
        const cred = this.credential(d);
        if (cred !== undefined) this.push(m.credentials, cred);
        break;
      }
      case 'cowrie.command.input':
        this.pushString(m.commands, d.input);
        break;
      case 'cowrie.command.failed':
        this.pushString(m.unknownCommands, d.input);
        break;
      case 'cowrie.session.file_download':
        this.pushString(m.urls, d.url);
        this.addHash(s, d.shasum);
        break;
      case 'cowrie.session.file_upload':
        this.addHash(s, d.shasum);
        break;
      case 'cowrie.client.version':
        if (typeof d.version === 'string') m.version = this.clip(d.version);
        m.protocol = 'ssh'; // only SSH sessions announce a client version
        break;
      case 'cowrie.client.kex':
        m.protocol = 'ssh';
        break;
      case 'cowrie.log.closed':
        // Classic cowrie hex-encodes the tty log file it reads locally; nodes forward the event,
        // not the file. Forwarded content (hex or base64) is passed on when a node includes it.
        if (typeof d.ttylog_content === 'string') m.ttylog = d.ttylog_content;
        else if (typeof d.ttylog === 'string' && /^[0-9a-f]+$/i.test(d.ttylog) && d.ttylog.length % 2 === 0) m.ttylog = d.ttylog;
        this.addHash(s, d.shasum);
        break;
      case 'cowrie.session.closed':
        m.endTime = iso;
        this.finish(s, 'closed');
        break;
      default:
        break;
    }
  }

  /** Emits sessions idle for longer than the timeout. One pass over at most maxOpenSessions entries. */
  expireIdle(now: number): number {
    let n = 0;
    for (const map of [this.sessions, this.others]) {
      for (const s of map.values()) {
        if (now - s.lastSeen < this.idleTimeoutMs) continue;
        this.finish(s, 'idle');
        n++;
      }
    }
    return n;
  }

  /** Emits every open session (graceful shutdown), oldest-started first. */
  flushAll(reason: CowrieEmitReason = 'shutdown'): void {
    const open = [...this.sessions.values(), ...this.others.values()].sort((a, b) => a.seq - b.seq);
    for (const s of open) this.finish(s, reason);
  }

  private evictOldest(): void {
    // Each map is in start order: the oldest open session is the first of one of them.
    const a = this.sessions.values().next().value as OpenSession | undefined;
    const b = this.others.values().next().value as OpenSession | undefined;
    const oldest = a === undefined || (b !== undefined && b.seq < a.seq) ? b : a;
    if (oldest !== undefined) this.finish(oldest, 'evicted');
  }

  private finish(s: OpenSession, reason: CowrieEmitReason): void {
    if (s.key === undefined) this.sessions.delete(s.summary.session);
    else this.others.delete(s.key);
    s.summary.hashes = [...s.hashes];
    this.emit(s.node, s.summary, reason);
  }

  private credential(d: Record<string, unknown>): [string, string] | undefined {
    const u = str(d.username);
    const p = str(d.password);
    if (u === undefined && p === undefined) return undefined;
    return [this.clip(u ?? ''), this.clip(p ?? '')];
  }

  private addHash(s: OpenSession, v: unknown): void {
    if (typeof v === 'string' && v !== '' && s.hashes.size < this.maxList) s.hashes.add(this.clip(v));
  }

  private pushString(list: string[], v: unknown): void {
    if (typeof v === 'string') this.push(list, this.clip(v));
  }

  private push<T>(list: T[], v: T): void {
    if (list.length < this.maxList) list.push(v);
  }

  private clip(s: string): string {
    return s.length > this.maxString ? s.slice(0, this.maxString) : s;
  }
}
