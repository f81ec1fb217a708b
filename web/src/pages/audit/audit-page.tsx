import { useState, type FormEvent } from 'react';
import { useInfiniteQuery } from '@tanstack/react-query';
import { api, qs } from '../../api/client';
import type { AuditEntry } from '../../api/types';
import { Empty, ErrorBox, Loading, Time } from '../../components/ui';

export function AuditPage() {
  const [draft, setDraft] = useState({ actor: '', action: '', target: '' });
  const [filter, setFilter] = useState(draft);
  const q = useInfiniteQuery({
    queryKey: ['audit', filter],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) => api<{ entries: AuditEntry[]; next_cursor: string | null }>('GET', `/audit${qs({ ...filter, limit: 50, cursor: pageParam })}`),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const rows = q.data?.pages.flatMap((p) => p.entries) ?? [];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setFilter(draft);
  };
  return (
    <>
      <h1>Audit log</h1>
      <form className="inline-form" onSubmit={submit} aria-label="Filter the audit log">
        <label>Actor <input value={draft.actor} onChange={(e) => setDraft({ ...draft, actor: e.target.value })} /></label>
        <label>Action <input value={draft.action} placeholder="nodes.*" onChange={(e) => setDraft({ ...draft, action: e.target.value })} /></label>
        <label>Target <input value={draft.target} onChange={(e) => setDraft({ ...draft, target: e.target.value })} /></label>
        <button type="submit">Apply</button>
      </form>
      <ErrorBox error={q.error} />
      {q.isLoading ? <Loading /> : rows.length === 0 ? <Empty>No entries.</Empty> : (
        <div className="table-wrap">
          <table className="data">
            <thead>
              <tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Status</th><th scope="col">Source</th><th scope="col">Changes</th></tr>
            </thead>
            <tbody>
              {rows.map((a) => (
                <tr key={a.id}>
                  <td><Time value={a.at} /></td>
                  <td>{a.actor.name} <span className="muted small">{a.actor.role}</span></td>
                  <td><code>{a.action}</code></td>
                  <td>{a.target ?? ''}</td>
                  <td>{a.status}</td>
                  <td>{a.source}</td>
                  <td className="wrap"><code className="small">{a.changes === null || a.changes === undefined ? '' : JSON.stringify(a.changes)}</code></td>
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
