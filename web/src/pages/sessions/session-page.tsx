import { useQuery } from '@tanstack/react-query';
import { api } from '../../api/client';
import type { SessionDetail } from '../../api/types';
import { ErrorBox, Loading, Time } from '../../components/ui';
import { Link } from '../../router';

/** A cowrie session as a terminal transcript: the logins, then each command in order, with its time. */
export function SessionPage({ params }: { params: { id: string } }) {
  const q = useQuery({ queryKey: ['session-detail', params.id], queryFn: () => api<SessionDetail>('GET', `/sessions/${encodeURIComponent(params.id)}`) });
  if (q.isLoading) return <Loading />;
  if (q.error) return <ErrorBox error={q.error} />;
  const s = q.data!;
  const user = s.username ?? 'root';
  return (
    <>
      <p className="crumbs">
        <Link to={`/attackers/${encodeURIComponent(s.src_ip)}`}>Attacker {s.src_ip}</Link> /
      </p>
      <h1>Session {s.session}</h1>
      <dl className="facts">
        <div><dt>Node / pot</dt><dd><Link to={`/nodes/${encodeURIComponent(s.node)}`}>{s.node}</Link> / {s.pot_id} ({s.pot_type})</dd></div>
        <div><dt>From</dt><dd>{s.src_ip}{s.src_port ? `:${s.src_port}` : ''}</dd></div>
        <div><dt>To</dt><dd>{s.dest_ip ?? '?'}{s.dest_port ? `:${s.dest_port}` : ''} {s.protocol ?? ''}</dd></div>
        <div><dt>Started</dt><dd><Time value={s.started_at} /></dd></div>
        <div><dt>Last seen</dt><dd><Time value={s.last_seen} /></dd></div>
        <div><dt>State</dt><dd>{s.closed ? 'closed' : 'open'}</dd></div>
      </dl>
      <section aria-labelledby="transcript-title">
        <h2 id="transcript-title">Transcript</h2>
        <pre className="terminal" data-testid="transcript" tabIndex={0}>
          {s.steps.length === 0 && <span className="muted"># no logins or commands in this session</span>}
          {s.steps.map((st) => {
            const at = new Date(st.at).toISOString().slice(11, 19);
            if (st.kind === 'command') {
              return (
                <span key={st.event_id} className="line">
                  <span className="t">{at}</span> <span className="prompt">{user}@{s.node}:~$</span> {st.value}
                  {'\n'}
                </span>
              );
            }
            return (
              <span key={st.event_id} className={`line ${st.kind}`}>
                <span className="t">{at}</span> # {st.kind}: {st.value}
                {st.detail ? ` (${st.detail})` : ''}
                {'\n'}
              </span>
            );
          })}
        </pre>
      </section>
    </>
  );
}
