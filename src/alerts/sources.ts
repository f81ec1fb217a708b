// What the alerts domain observes, as structural types: the node gateway, the command service,
// the events service (with the analytics record fields) and the generic signal() satisfy them
// without this domain importing theirs. app.ts wires them.

export interface NodeOnlineFact {
  nodeName: string;
  address?: string;
  transport?: string;
}

export interface NodeOfflineFact {
  nodeName: string;
  reason: string;
}

export interface PotStatusFact {
  nodeName: string;
  potId: string;
  potType: string;
  status: string;
  message?: string;
}

export interface CommandFact {
  id: string;
  node: string;
  kind: string;
  status: string;
  result: { reason?: string; message?: string } | null;
  requestedBy: string | null;
}

/** A committed event with the normalised attack-record fields the rules read. */
export interface AttackFact {
  eventId: number;
  node: string;
  potId: string;
  potType: string;
  /** The record's type: cowrie eventid, dionaea channel, ... */
  type: string;
  /** Epoch ms at which the core received the event (window counting uses it, not the node's clock). */
  receivedAt: number;
  srcIp: string | null;
  login: 'success' | 'failed' | null;
  username: string | null;
  password: string | null;
  url: string | null;
  md5: string | null;
  sha256: string | null;
}

/** Kinds other domains may raise through signal(). */
export interface OutputBacklogSignal {
  kind: 'output_backlog';
  /** The output's name. */
  output: string;
  /** Records waiting in it. */
  backlog: number;
}

export type AlertSignal = OutputBacklogSignal;
