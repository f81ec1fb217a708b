import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, errorText, qs } from '../../api/client';
import type { CommandRow, NodeLogEntry, NodeRow } from '../../api/types';
import { useAuth } from '../../auth';
import { Badge, Empty, ErrorBox, Loading, Time } from '../../components/ui';
import { Link } from '../../router';
import { nodeState } from '../nodes/nodes-page';
import { CommandComposer } from './command-composer';

const final = new Set(['succeeded', 'failed', 'expired', 'cancelled']);

function CommandHistory({ node }: { node: string }) {
  const auth = useAuth();
  const client = useQueryClient();
  const commands = useQuery({
    queryKey: ['commands', node],
    queryFn: () => api<{ commands: CommandRow[] }>('GET', `/commands${qs({ node, limit: 50 })}`),
    // Fast while something is in flight, to show each status change; slow otherwise.
    refetchInterval: (q) => ((q.state.data?.commands ?? []).some((c) => !final.has(c.status)) ? 1000 : 5000),
  });
  const cancel = useMutation({
    mutationFn: (id: string) => api('POST', `/commands/${encodeURIComponent(id)}/cancel`),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['commands', node] }),
  });
  const list = commands.data?.commands ?? [];
  return (
    <section className="card" aria-labelledby="history-title">
      <h2 id="history-title">Command history</h2>
      <ErrorBox error={commands.error ?? cancel.error} />
      {list.length === 0 ? (
        <Empty>No commands sent to this node yet.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="data">
            <thead>
              <tr>
                <th scope="col">Command</th>
                <th scope="col">Status</th>
                <th scope="col">Queued</th>
                <th scope="col">Sent</th>
                <th scope="col">Finished</th>
                <th scope="col">Result</th>
                <th scope="col">By</th>
                {auth.can('operator') && <th scope="col"><span className="visually-hidden">Actions</span></th>}
              </tr>
            </thead>
            <tbody>
              {list.map((c) => (
                <tr key={c.id} data-command={c.kind} data-status={c.status}>
                  <td>
                    <code title={JSON.stringify(c.command)}>{c.kind}</code>
                    {c.potId && <span className="muted"> {c.potId}</span>}
                  </td>
                  <td>
                    <Badge value={c.status} />
                  </td>
                  <td><Time value={c.createdAt} /></td>
                  <td><Time value={c.sentAt} /></td>
                  <td><Time value={c.finishedAt} /></td>
                  <td className="wrap">{c.result?.message ?? c.result?.reason ?? (c.result?.pots ? `${c.result.pots.length} pots` : '')}</td>
                  <td>{c.requestedBy ?? ''}</td>
                  {auth.can('operator') && (
                    <td>
                      {c.status === 'queued' && (
                        <button type="button" className="ghost" onClick={() => cancel.mutate(c.id)}>
                          Cancel
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function NodeLog({ node }: { node: string }) {
  const log = useQuery({ queryKey: ['node-log', node], queryFn: () => api<{ entries: NodeLogEntry[] }>('GET', `/nodes/${encodeURIComponent(node)}/log${qs({ limit: 50 })}`), refetchInterval: 5000 });
  const entries = log.data?.entries ?? [];
  return (
    <section className="card" aria-labelledby="log-title">
      <h2 id="log-title">Node log</h2>
      <ErrorBox error={log.error} />
      {entries.length === 0 ? (
        <Empty>Nothing logged.</Empty>
      ) : (
        <ol className="log">
          {entries.map((e) => (
            <li key={e.id}>
              <Time value={e.at} /> <Badge value={e.kind} /> <span className="wrap">{e.message}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

/** One-click pot commands for operators (the composer has every command and field). */
function PotActions({ node, potId }: { node: string; potId: string }) {
  const client = useQueryClient();
  const send = useMutation({
    mutationFn: (kind: 'DeployPot' | 'StopPot' | 'RestartPot') => api<CommandRow>('POST', `/nodes/${encodeURIComponent(node)}/commands`, { command: { [kind]: potId } }),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['commands', node] }),
  });
  return (
    <div className="actions">
      <button type="button" disabled={send.isPending} onClick={() => send.mutate('DeployPot')} aria-label={`Start ${potId}`}>Start</button>
      <button type="button" disabled={send.isPending} onClick={() => send.mutate('StopPot')} aria-label={`Stop ${potId}`}>Stop</button>
      <button type="button" disabled={send.isPending} onClick={() => send.mutate('RestartPot')} aria-label={`Restart ${potId}`}>Restart</button>
      {send.error && <span className="error small" role="alert">{errorText(send.error)}</span>}
    </div>
  );
}

export function NodeDetailPage({ params }: { params: { name: string } }) {
  const auth = useAuth();
  const name = params.name;
  const node = useQuery({ queryKey: ['node', name], queryFn: () => api<NodeRow>('GET', `/nodes/${encodeURIComponent(name)}`), refetchInterval: 2000 });
  if (node.isLoading) return <Loading />;
  if (node.error) return <ErrorBox error={node.error} />;
  const n = node.data!;
  const pots = n.pots ?? [];
  return (
    <>
      <p className="crumbs">
        <Link to="/nodes">Nodes</Link> /
      </p>
      <h1>
        {n.name} <Badge value={nodeState(n)} />
      </h1>
      <dl className="facts">
        <div><dt>Enrollment</dt><dd>{n.enrollment}</dd></div>
        <div><dt>Remote address</dt><dd>{n.remoteAddress ?? '—'} {n.transport ?? ''}</dd></div>
        <div><dt>Advertised</dt><dd>{n.address ? `${n.address}:${n.port}` : '—'}</dd></div>
        <div><dt>Type</dt><dd>{n.nodeType ?? '—'}</dd></div>
        <div><dt>Last seen</dt><dd><Time value={n.lastSeenAt} /></dd></div>
        <div><dt>Connected</dt><dd><Time value={n.connectedAt} /></dd></div>
        {n.disconnectReason && <div><dt>Last disconnect</dt><dd>{n.disconnectReason}</dd></div>}
      </dl>
      <section className="card" aria-labelledby="pots-title">
        <h2 id="pots-title">Pots</h2>
        {pots.length === 0 ? (
          <Empty>No pots reported.</Empty>
        ) : (
          <table className="data">
            <thead>
              <tr><th scope="col">Pot</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Last message</th><th scope="col">Updated</th><th scope="col">Events</th>{auth.can('operator') && <th scope="col"><span className="visually-hidden">Actions</span></th>}</tr>
            </thead>
            <tbody>
              {pots.map((p) => (
                <tr key={p.potId} data-pot={p.potId}>
                  <th scope="row">{p.potId}</th>
                  <td>{p.potType}</td>
                  <td><Badge value={p.status || 'unknown'} /></td>
                  <td className="wrap">{p.lastMessage ?? ''}</td>
                  <td><Time value={p.updatedAt} /></td>
                  <td><Link to={`/events?node=${encodeURIComponent(n.name)}&pot=${encodeURIComponent(p.potId)}`}>events</Link></td>
                  {auth.can('operator') && <td><PotActions node={n.name} potId={p.potId} /></td>}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {auth.can('operator') && <CommandComposer node={n.name} pots={pots} />}
      <CommandHistory node={n.name} />
      <NodeLog node={n.name} />
    </>
  );
}

