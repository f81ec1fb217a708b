// Narrow, structural views of what the events domain consumes from other domains. The gateway,
// protocol codec and hpfeeds broker satisfy these without the events code importing them.

/** PotEvent as normalised by the protocol codec (documented HoneyBee v2 form). */
export interface PotEventMessage {
  type: 'PotEvent';
  node_id?: string;
  pot_id: string;
  pot_type: string;
  event_type: string;
  /** ISO 8601 as sent by the node. */
  timestamp: string;
  data: Record<string, unknown>;
  /** data as the node wrote it, when the codec kept the text: stored and republished as is. */
  dataJson?: string;
}

/** PotStatusUpdate with `status: ""`: how real nodes forward honeypot output lines. */
export interface PotStatusEventMessage {
  type: 'PotStatusUpdate';
  node_id?: string;
  pot_id: string;
  pot_type: string;
  status: string;
  message?: string;
}

/** The gateway's `attackEvent` payload. */
export interface AttackEvent {
  nodeName: string;
  message: PotEventMessage | PotStatusEventMessage;
  /** Epoch ms at which the core read the line. */
  receivedAt: number;
}

export type AttackEventListener = (event: AttackEvent) => void;

/** The gateway's `potStatus` payload (real statuses): the pot's type, and its status. */
export interface PotStatusNotice {
  nodeName: string;
  potId: string;
  potType: string;
  status?: string;
  at?: number;
}

export type PotStatusListener = (update: PotStatusNotice) => void;

/**
 * Anything that emits `attackEvent` (the NodeGateway does). Its `potStatus` notices teach the
 * service each pot's type, for the event-shaped status lines that arrive with pot_type "".
 */
export interface AttackEventSource {
  on(event: 'attackEvent', listener: AttackEventListener): unknown;
  on(event: 'potStatus', listener: PotStatusListener): unknown;
  off(event: 'attackEvent', listener: AttackEventListener): unknown;
  off(event: 'potStatus', listener: PotStatusListener): unknown;
}

/** In-process hpfeeds publish (the Broker does this without a TCP hop). */
export interface EventPublisher {
  /**
   * `payload` is only valid during the call: the caller writes the next one into the same memory,
   * so a publisher copies what it keeps (the broker copies every frame it queues).
   */
  publish(ident: string, channel: string, payload: Uint8Array | string): void;
}

/** Optional cheap lookup of a pot's last known type (from the pots table), for events without one. */
export type PotTypeLookup = (nodeName: string, potId: string) => string | undefined;

/** The id of a node's cowrie pot (e.g. from the pots table), for the real node's cowrie text lines. */
export type CowriePotLookup = (nodeName: string) => string | undefined;

/** One normalised attack event, as stored and as republished. */
export interface EventRecord {
  id: number;
  node: string;
  pot_id: string;
  pot_type: string;
  event_type: string;
  /** Epoch ms. */
  timestamp: number;
  data: Record<string, unknown>;
  /** Epoch ms. */
  received_at: number;
}

/** The JSON form used on the wire (hpfeeds payload, API, WebSocket stream). */
export interface EventJson {
  id: number;
  node: string;
  pot_id: string;
  pot_type: string;
  event_type: string;
  timestamp: string;
  data: Record<string, unknown>;
  received_at: string;
}

export interface EventFilter {
  node?: string;
  pot?: string;
  potType?: string;
  eventType?: string;
  /** Inclusive lower bound on the event timestamp, epoch ms. */
  since?: number;
  /** Exclusive upper bound on the event timestamp, epoch ms. */
  until?: number;
}
