import { randomBytes } from 'node:crypto';

/** hpfeeds channel names carry a one-byte length prefix. */
export const MAX_CHANNEL_BYTES = 255;

/** Channels classic dionaea publishes JSON on (mwbinary.dionaea.sensorunique carries raw binaries, not JSON). */
export const CLASSIC_DIONAEA_CHANNELS: readonly string[] = [
  'dionaea.connections',
  'dionaea.capture',
  'dionaea.capture.anon',
  'dionaea.dcerpcrequests',
  'dionaea.shellcodeprofiles',
];

export interface ChannelOptions {
  /** Channel that receives every event. Default 'apiary.events'; null disables. */
  allEvents?: string | null;
  /**
   * Per pot type channel template; `{pot_type}` is replaced. Default '{pot_type}.events'; null
   * disables the template (only `byPotType` entries then apply).
   */
  perPotType?: string | null;
  /** Explicit channels for a pot type; replaces the template for that type ([] = none). */
  byPotType?: Record<string, string[]>;
  /** Channel for cowrie session summaries. Default 'cowrie.sessions'; null disables aggregation. */
  cowrieSessions?: string | null;
  /**
   * Classic dionaea pass-through: an event of one of `potTypes` whose event_type is one of
   * `channels` (or that name without the leading 'dionaea.') is also published, data unchanged, on
   * that channel. null disables.
   */
  dionaea?: { potTypes?: string[]; channels?: string[] } | null;
}

export interface ResolvedChannels {
  allEvents: string | null;
  perPotType: string | null;
  byPotType: ReadonlyMap<string, readonly string[]>;
  cowrieSessions: string | null;
  dionaeaPotTypes: ReadonlySet<string>;
  /** event_type (full or short name) -> classic channel. */
  dionaeaChannels: ReadonlyMap<string, string>;
}

export function resolveChannels(opts: ChannelOptions = {}): ResolvedChannels {
  const dionaea = opts.dionaea === null ? null : (opts.dionaea ?? {});
  const dionaeaChannels = new Map<string, string>();
  if (dionaea !== null) {
    for (const ch of dionaea.channels ?? CLASSIC_DIONAEA_CHANNELS) {
      assertChannel(ch);
      dionaeaChannels.set(ch, ch);
      if (ch.startsWith('dionaea.')) dionaeaChannels.set(ch.slice('dionaea.'.length), ch);
    }
  }
  const byPotType = new Map<string, readonly string[]>();
  for (const [type, chans] of Object.entries(opts.byPotType ?? {})) {
    chans.forEach(assertChannel);
    byPotType.set(type, [...new Set(chans)]);
  }
  const allEvents = opts.allEvents === undefined ? 'apiary.events' : opts.allEvents;
  if (allEvents !== null) assertChannel(allEvents);
  const cowrieSessions = opts.cowrieSessions === undefined ? 'cowrie.sessions' : opts.cowrieSessions;
  if (cowrieSessions !== null) assertChannel(cowrieSessions);
  return {
    allEvents,
    perPotType: opts.perPotType === undefined ? '{pot_type}.events' : opts.perPotType,
    byPotType,
    cowrieSessions,
    dionaeaPotTypes: new Set(dionaea === null ? [] : (dionaea.potTypes ?? ['dionaea'])),
    dionaeaChannels,
  };
}

function assertChannel(ch: string): void {
  if (typeof ch !== 'string' || ch === '' || Buffer.byteLength(ch) > MAX_CHANNEL_BYTES) {
    throw new Error(`invalid hpfeeds channel name ${JSON.stringify(ch)} (1..${MAX_CHANNEL_BYTES} bytes)`);
  }
}

function isValidChannel(ch: string): boolean {
  return ch !== '' && ch.length <= MAX_CHANNEL_BYTES && Buffer.byteLength(ch) <= MAX_CHANNEL_BYTES;
}

/**
 * Channels an event of `potType` is republished on (per-type channels first, then the all-events
 * channel). Names that would not fit an hpfeeds frame are left out.
 */
export function channelsForPotType(ch: ResolvedChannels, potType: string): string[] {
  const out: string[] = [];
  const explicit = ch.byPotType.get(potType);
  if (explicit !== undefined) out.push(...explicit);
  else if (ch.perPotType !== null) {
    const name = ch.perPotType.replaceAll('{pot_type}', potType);
    if (isValidChannel(name)) out.push(name);
  }
  if (ch.allEvents !== null && !out.includes(ch.allEvents)) out.push(ch.allEvents);
  return out;
}

/** The classic dionaea channel an event is passed through on, if any. */
export function dionaeaChannelFor(ch: ResolvedChannels, potType: string, eventType: string): string | undefined {
  if (!ch.dionaeaPotTypes.has(potType)) return undefined;
  return ch.dionaeaChannels.get(eventType);
}

/** Pot types whose channels a new node's authkey is given when the caller does not name them. */
export const DEFAULT_AUTHKEY_POT_TYPES: readonly string[] = ['cowrie', 'dionaea', 'unknown'];

export interface NodeAuthkey {
  ident: string;
  owner: string;
  secret: string;
  pubchans: string[];
  subchans: string[];
}

/**
 * The hpfeeds authkey to create with a node: ident = node name (the core republishes the node's
 * events under that ident), a fresh random secret, and as pubchans every channel the node's events
 * can go to for the given pot types (all-events channel, per-type channels, cowrie.sessions and
 * the classic dionaea channels where they apply). No subchans: a node is a publisher.
 * Pure apart from the random secret; the caller stores it.
 */
export function nodeAuthkeyFor(
  nodeName: string,
  channels: ChannelOptions | ResolvedChannels = {},
  opts: { potTypes?: readonly string[]; owner?: string } = {},
): NodeAuthkey {
  if (typeof nodeName !== 'string' || nodeName === '' || Buffer.byteLength(nodeName) > 255) {
    throw new Error('node name must be 1..255 bytes to serve as hpfeeds ident');
  }
  const ch = isResolved(channels) ? channels : resolveChannels(channels);
  const potTypes = opts.potTypes ?? [...new Set([...DEFAULT_AUTHKEY_POT_TYPES, ...ch.byPotType.keys()])];
  const pub = new Set<string>();
  for (const type of potTypes) for (const c of channelsForPotType(ch, type)) pub.add(c);
  if (ch.allEvents !== null) pub.add(ch.allEvents);
  if (ch.cowrieSessions !== null && potTypes.includes('cowrie')) pub.add(ch.cowrieSessions);
  if (potTypes.some((t) => ch.dionaeaPotTypes.has(t))) for (const c of new Set(ch.dionaeaChannels.values())) pub.add(c);
  return {
    ident: nodeName,
    owner: opts.owner ?? nodeName,
    secret: randomBytes(24).toString('base64url'),
    pubchans: [...pub],
    subchans: [],
  };
}

function isResolved(c: ChannelOptions | ResolvedChannels): c is ResolvedChannels {
  return (c as ResolvedChannels).byPotType instanceof Map;
}
