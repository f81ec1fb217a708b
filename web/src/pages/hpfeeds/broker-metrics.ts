// Live broker figures for the hpfeeds page, read from the documented /metrics endpoint
// (Prometheus text, the reference broker's hpfeeds_broker_* names): open connections,
// subscriptions per channel, and publish rates per channel from two readings.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of the named metrics in a Prometheus text exposition. */
export function parseMetrics(text: string, names: ReadonlySet<string>): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    if (!raw || raw.startsWith('#')) continue;
    const m = line.exec(raw);
    if (!m || !names.has(m[1]!)) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(label)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export interface BrokerView {
  at: number;
  connections: number;
  /** Per channel: subscribers now, publishes counted so far. */
  channels: Map<string, { subscribers: number; published: number }>;
}

export const brokerMetricNames = new Set(['hpfeeds_broker_client_connections', 'hpfeeds_broker_subscriptions', 'hpfeeds_broker_receive_publish_count']);

export function brokerView(samples: Sample[], at: number): BrokerView {
  const channels = new Map<string, { subscribers: number; published: number }>();
  const chan = (c: string) => {
    let v = channels.get(c);
    if (!v) channels.set(c, (v = { subscribers: 0, published: 0 }));
    return v;
  };
  let connections = 0;
  for (const s of samples) {
    if (s.name === 'hpfeeds_broker_client_connections') connections += s.value;
    else if (s.name === 'hpfeeds_broker_subscriptions' && s.labels.chan !== undefined) chan(s.labels.chan).subscribers += s.value;
    else if (s.name === 'hpfeeds_broker_receive_publish_count' && s.labels.chan !== undefined) chan(s.labels.chan).published += s.value;
  }
  return { at, connections, channels };
}

/** Publishes per second per channel between two readings. */
export function rates(before: BrokerView | undefined, now: BrokerView): Map<string, number> {
  const out = new Map<string, number>();
  if (!before || now.at <= before.at) return out;
  const secs = (now.at - before.at) / 1000;
  for (const [c, v] of now.channels) out.set(c, Math.max(0, (v.published - (before.channels.get(c)?.published ?? 0)) / secs));
  return out;
}
