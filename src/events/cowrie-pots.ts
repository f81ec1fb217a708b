// Which pot the real node's cowrie text lines belong to. The node forwards them under cowrie's
// sensor name (the host name), not under a pot id, so the core picks the node's cowrie pot.
import { CowrieTextSessions } from './cowrie-text-sessions.js';
import { parseCowrieText } from './cowrie-text.js';
import type { PotTypeCache } from './normalize.js';
import type { CowriePotLookup } from './types.js';

const MAX_NAME_LENGTH = 200;

function cap(s: string): string {
  return s.length > MAX_NAME_LENGTH ? s.slice(0, MAX_NAME_LENGTH) : s;
}

/**
 * Which pot of a node is its cowrie pot, for text lines the real node forwards under cowrie's
 * sensor name instead of a pot id. Live status reports win (a Running cowrie pot first, then the
 * most recently reported one); otherwise the lookup (pots table) is asked, cached for 10 s.
 */
export class CowriePotDirectory {
  private readonly live = new Map<string, Map<string, { running: boolean; at: number }>>();
  private readonly cached = new Map<string, { potId: string | undefined; expires: number }>();

  constructor(
    private readonly lookup: CowriePotLookup | undefined,
    private readonly ttlMs = 10_000,
  ) {}

  learn(node: string, potId: string, potType: string, status: string | undefined, at: number): void {
    let pots = this.live.get(node);
    if (potType === '') {
      // A status line without a type keeps what the pot was; only its state moves on.
      const known = pots?.get(potId);
      if (known !== undefined) pots!.set(potId, { running: status === 'Running', at });
      return;
    }
    if (potType !== 'cowrie') {
      pots?.delete(potId);
      return;
    }
    if (pots === undefined) {
      if (this.live.size >= 100_000) this.live.clear();
      pots = new Map();
      this.live.set(node, pots);
    }
    if (pots.size >= 1000 && !pots.has(potId)) return;
    pots.set(potId, { running: status === 'Running', at });
  }

  /** The node's cowrie pot id, or undefined when it has none the core knows of. */
  potOf(node: string, now: number): string | undefined {
    const pots = this.live.get(node);
    if (pots !== undefined && pots.size > 0) {
      let best: string | undefined;
      let bestRunning = false;
      let bestAt = -Infinity;
      for (const [potId, p] of pots) {
        if ((p.running && !bestRunning) || (p.running === bestRunning && p.at > bestAt)) {
          best = potId;
          bestRunning = p.running;
          bestAt = p.at;
        }
      }
      return best;
    }
    if (this.lookup === undefined) return undefined;
    const hit = this.cached.get(node);
    if (hit !== undefined && hit.expires > now) return hit.potId;
    let potId: string | undefined;
    try {
      potId = this.lookup(node);
    } catch {
      potId = undefined;
    }
    if (this.cached.size >= 10_000) this.cached.clear();
    const capped = potId === undefined || potId === '' ? undefined : cap(potId);
    this.cached.set(node, { potId: capped, expires: now + this.ttlMs });
    return capped;
  }
}

/** What reading the real node's cowrie text needs between lines: its pots and open sessions. */
export interface CowrieTextContext {
  pots: CowriePotDirectory;
  sessions: CowrieTextSessions;
}

export function createCowrieTextContext(lookup?: CowriePotLookup, sessions?: CowrieTextSessions): CowrieTextContext {
  return { pots: new CowriePotDirectory(lookup), sessions: sessions ?? new CowrieTextSessions() };
}

/**
 * The pot a PotStatusUpdate event line belongs to when it is cowrie text, or undefined when it is
 * not. The real node sends pot_type "" and cowrie's sensor name as pot_id: such a line belongs to
 * the node's cowrie pot. A line naming a known pot of another type stays that pot's.
 */
export function cowrieTextPot(
  potTypes: PotTypeCache,
  cowrie: CowrieTextContext,
  node: string,
  potId: string,
  potType: string,
  message: unknown,
  now: number,
): string | undefined {
  if (potType === 'cowrie') return potId;
  if (potType !== '') return undefined;
  const known = potTypes.known(node, potId, now);
  if (known === 'cowrie') return potId;
  if (known !== undefined) return undefined;
  const pot = cowrie.pots.potOf(node, now);
  if (pot !== undefined) return pot;
  // No cowrie pot known (yet): the text itself says whether it is cowrie's.
  return typeof message === 'string' && parseCowrieText(message) !== undefined ? potId : undefined;
}
