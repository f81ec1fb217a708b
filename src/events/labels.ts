// Metric label values that nodes choose (pot types, and the per-type channels derived from them)
// are folded into a bounded set: a node inventing a new pot_type per event must not create a new
// time series per event. Known values keep their own label; everything else counts as `other`.

export const OTHER_LABEL = 'other';

/** Pot types HoneyBee nodes and common honeypot sensors are known to run. */
export const BUILTIN_POT_TYPES: readonly string[] = [
  'unknown',
  'cowrie',
  'dionaea',
  'heralding',
  'conpot',
  'honeytrap',
  'glutton',
  'mailoney',
  'adbhoney',
  'elasticpot',
  'ciscoasa',
  'citrixhoneypot',
  'tanner',
  'opencanary',
  'redishoneypot',
  'sentrypeer',
  'ipphoney',
  'medpot',
];

/** Pot types added at run time (operators installing new types) beyond the configured ones. */
const MAX_ADDED_POT_TYPES = 1000;

export class EventLabels {
  private readonly potTypes = new Set<string>();
  private readonly channels = new Set<string>();
  private added = 0;

  /**
   * @param channelsOf the channels an event of a pot type is republished on
   * @param fixedChannels channels that do not depend on a node's choice (all-events, cowrie.sessions, dionaea)
   */
  constructor(
    private readonly channelsOf: (potType: string) => readonly string[],
    fixedChannels: Iterable<string>,
    potTypes: Iterable<string>,
  ) {
    for (const c of fixedChannels) this.channels.add(c);
    for (const t of potTypes) this.learn(t);
  }

  /** Makes `potType` (and its channels) a label of its own. False once the run-time budget is spent. */
  addPotType(potType: string): boolean {
    if (this.potTypes.has(potType)) return true;
    if (this.added >= MAX_ADDED_POT_TYPES) return false;
    this.added++;
    this.learn(potType);
    return true;
  }

  potType(potType: string): string {
    return this.potTypes.has(potType) ? potType : OTHER_LABEL;
  }

  channel(channel: string): string {
    return this.channels.has(channel) ? channel : OTHER_LABEL;
  }

  private learn(potType: string): void {
    this.potTypes.add(potType);
    for (const c of this.channelsOf(potType)) this.channels.add(c);
  }
}
