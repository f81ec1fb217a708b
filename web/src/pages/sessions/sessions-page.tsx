import { useInfiniteQuery } from '@tanstack/react-query';
import { api, qs } from '../../api/client';
import type { AttackSessionRow } from '../../api/types';
import { Empty, ErrorBox, Loading, Time } from '../../components/ui';
import { Link, useLocation } from '../../router';

export function SessionsPage() {
  const { search } = useLocation();
  const filter = { src_ip: search.get('src_ip') ?? undefined, node: search.get('node') ?? undefined };
  const q = useInfiniteQuery({
    queryKey: ['sessions', filter],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) => api<{ sessions: AttackSessionRow[]; next_cursor: string | null }>('GET', `/sessions${qs({ ...filter, limit: 50, cursor: pageParam })}`),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const rows = q.data?.pages.flatMap((p) => p.sessions) ?? [];
  return (
    <>
      <h1>Sessions</h1>
      {(filter.src_ip || filter.node) && <p className="muted">Filtered: {[filter.src_ip, filter.node].filter(Boolean).join(', ')} · <Link to="/sessions">all sessions</Link></p>}
      <ErrorBox error={q.error} />
      {q.isLoading ? <Loading /> : rows.length === 0 ? <Empty>No sessions.</Empty> : (
        <div className="table-wrap">
          <table className="data">
            <thead>
              <tr><th scope="col">Started</th><th scope="col">Source</th><th scope="col">Node / pot</th><th scope="col">Port</th><th scope="col">Events</th><th scope="col">Login</th><th scope="col"><span className="visually-hidden">Open</span></th></tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.id}>
                  <td><Time value={s.started_at} /></td>
                  <td><Link to={`/attackers/${encodeURIComponent(s.src_ip)}`}>{s.src_ip}</Link></td>
                  <td>{s.node} / {s.pot_id}</td>
                  <td>{s.dest_port ?? ''}</td>
                  <td>{s.events}</td>
                  <td>{s.username ? <code>{s.username} / {s.password}</code> : <span className="muted">{s.logins_failed} failed</span>}</td>
                  <td><Link to={`/sessions/${s.id}`}>Transcript</Link></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {q.hasNextPage && <button type="button" onClick={() => void q.fetchNextPage()}>Load older</button>}
    </>
  );
}
