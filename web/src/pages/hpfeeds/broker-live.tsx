import { useRef } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Empty, ErrorBox, fmt } from '../../components/ui';
import { brokerMetricNames, brokerView, parseMetrics, rates, type BrokerView } from './broker-metrics';

const REFRESH_MS = 5_000;

async function readBroker(): Promise<BrokerView> {
  const res = await fetch('/metrics', { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`could not read /metrics (${res.status})`);
  return brokerView(parseMetrics(await res.text(), brokerMetricNames), Date.now());
}

/** Open broker connections and, per channel, subscribers and publishes per second (every 5 s). */
export function BrokerLive() {
  const previous = useRef<{ older?: BrokerView; newer?: BrokerView }>({});
  const q = useQuery({ queryKey: ['broker-metrics'], queryFn: readBroker, refetchInterval: REFRESH_MS });
  if (q.data && q.data !== previous.current.newer) previous.current = { older: previous.current.newer, newer: q.data };
  const perSecond = q.data ? rates(previous.current.older, q.data) : new Map<string, number>();
  const channels = [...(q.data?.channels ?? new Map()).entries()].sort((a, b) => a[0].localeCompare(b[0]));
  return (
    <section className="card" aria-labelledby="broker-title">
      <h2 id="broker-title">
        Broker now <span className="muted small">(from /metrics, every {REFRESH_MS / 1000} s)</span>
      </h2>
      <ErrorBox error={q.error} />
      <p>
        <strong data-testid="broker-connections">{q.data ? fmt.format(q.data.connections) : '…'}</strong> open connections
      </p>
      {channels.length === 0 ? (
        <Empty>No channel traffic or subscriptions yet.</Empty>
      ) : (
        <table className="data compact">
          <thead>
            <tr><th scope="col">Channel</th><th scope="col">Subscribers</th><th scope="col">Publishes/s</th><th scope="col">Publishes (since start)</th></tr>
          </thead>
          <tbody>
            {channels.map(([c, v]) => (
              <tr key={c}>
                <th scope="row"><code>{c}</code></th>
                <td>{fmt.format(v.subscribers)}</td>
                <td>{perSecond.has(c) ? perSecond.get(c)!.toFixed(1) : '…'}</td>
                <td>{fmt.format(v.published)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
