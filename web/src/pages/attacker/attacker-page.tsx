import { useQuery } from '@tanstack/react-query';
import { api } from '../../api/client';
import type { Attacker, Fact } from '../../api/types';
import { Sparkline } from '../../components/sparkline';
import { Badge, Empty, ErrorBox, fmt, Loading, Time } from '../../components/ui';

/**
 * The attacker's activity over time from their sessions (events per bucket by session start):
 * hourly when their first and last sighting are under three days apart, else daily.
 */
export function activity(sessions: Attacker['sessions'], first: string, last: string): { start: string; count: number }[] {
  const from = Date.parse(first);
  const to = Date.parse(last);
  if (!Number.isFinite(from) || !Number.isFinite(to)) return [];
  const step = to - from < 3 * 86_400_000 ? 3_600_000 : 86_400_000;
  // At least 24 buckets, so a short-lived attacker still shows as a spike against a quiet line.
  const start = Math.min(Math.floor(from / step) * step, Math.floor(to / step) * step - 23 * step);
  const n = Math.min(400, Math.floor((to - start) / step) + 1);
  const counts = new Array<number>(n).fill(0);
  for (const s of sessions) {
    const i = Math.floor((Date.parse(s.started_at) - start) / step);
    if (i >= 0 && i < n) counts[i]! += s.events;
  }
  return counts.map((count, i) => ({ start: new Date(start + i * step).toISOString(), count }));
}
import { Link } from '../../router';

function Facts({ title, facts, render }: { title: string; facts: Fact[]; render?: (f: Fact) => React.ReactNode }) {
  return (
    <section className="card" aria-label={title}>
      <h2>{title}</h2>
      {facts.length === 0 ? (
        <Empty>None.</Empty>
      ) : (
        <table className="data compact">
          <thead>
            <tr><th scope="col">Value</th><th scope="col">Count</th><th scope="col">Last seen</th></tr>
          </thead>
          <tbody>
            {facts.map((f) => (
              <tr key={f.value}>
                <td className="wrap">{render ? render(f) : <code>{f.value}</code>}</td>
                <td>{fmt.format(f.count)}</td>
                <td><Time value={f.last_seen} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function AttackerPage({ params }: { params: { ip: string } }) {
  const q = useQuery({ queryKey: ['attacker', params.ip], queryFn: () => api<Attacker>('GET', `/attackers/${encodeURIComponent(params.ip)}?limit=100`), refetchInterval: 10_000 });
  if (q.isLoading) return <Loading />;
  if (q.error) return <ErrorBox error={q.error} />;
  const a = q.data!;
  return (
    <>
      <p className="crumbs"><Link to="/">Overview</Link> / attackers /</p>
      <h1>
        Attacker <code>{a.ip}</code>
      </h1>
      <p className="tags">{a.tags.map((t) => <Badge key={t} value={t} />)}</p>
      <dl className="facts">
        <div><dt>Country</dt><dd data-testid="attacker-country">{a.geo.country ?? a.geo.scope}</dd></div>
        <div><dt>ASN</dt><dd>{a.geo.asn ? `AS${a.geo.asn}` : '—'} {a.geo.as_org ?? ''}</dd></div>
        {a.geo.city && <div><dt>City</dt><dd>{a.geo.city}</dd></div>}
        <div><dt>Events</dt><dd>{fmt.format(a.events)}</dd></div>
        <div><dt>Logins</dt><dd>{fmt.format(a.logins_ok)} ok / {fmt.format(a.logins_failed)} failed</dd></div>
        <div><dt>First seen</dt><dd><Time value={a.first_seen} /></dd></div>
        <div><dt>Last seen</dt><dd><Time value={a.last_seen} /></dd></div>
        {a.scanner && <div><dt>Scanner</dt><dd>{a.scanner}</dd></div>}
      </dl>
      {a.sessions.length > 0 && (
        <section className="card" aria-labelledby="activity-title">
          <h2 id="activity-title">Activity</h2>
          <Sparkline points={activity(a.sessions, a.first_seen, a.last_seen)} label={`Events of ${a.ip} per ${Date.parse(a.last_seen) - Date.parse(a.first_seen) < 3 * 86_400_000 ? 'hour' : 'day'}, by session start`} width={720} height={60} />
          <p className="muted small">
            Events per {Date.parse(a.last_seen) - Date.parse(a.first_seen) < 3 * 86_400_000 ? 'hour' : 'day'} from <Time value={a.first_seen} /> to <Time value={a.last_seen} />, by session start.
          </p>
        </section>
      )}
      <section className="card" aria-labelledby="sessions-title">
        <h2 id="sessions-title">Sessions</h2>
        {a.sessions.length === 0 ? (
          <Empty>No sessions.</Empty>
        ) : (
          <table className="data">
            <thead>
              <tr><th scope="col">Started</th><th scope="col">Node / pot</th><th scope="col">Port</th><th scope="col">Events</th><th scope="col">Login</th><th scope="col"><span className="visually-hidden">Open</span></th></tr>
            </thead>
            <tbody>
              {a.sessions.map((s) => (
                <tr key={s.id}>
                  <td><Time value={s.started_at} /></td>
                  <td>{s.node} / {s.pot_id}</td>
                  <td>{s.dest_port ?? ''}</td>
                  <td>{s.events}</td>
                  <td>{s.username ? <code>{s.username} / {s.password}</code> : <span className="muted">{s.logins_failed} failed</span>}</td>
                  <td><Link to={`/sessions/${s.id}`}>Transcript</Link></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <div className="grid">
        <Facts title="Credentials" facts={a.credentials} render={(f) => <code>{f.username ?? ''} / {f.password ?? ''}</code>} />
        <Facts title="Commands" facts={a.commands} />
        <Facts title="Ports" facts={a.ports} />
        <Facts title="Nodes" facts={a.nodes} render={(f) => <Link to={`/nodes/${encodeURIComponent(f.value)}`}>{f.value}</Link>} />
        <Facts title="URLs" facts={a.urls} />
        <Facts title="Hashes" facts={a.hashes} />
      </div>
    </>
  );
}
