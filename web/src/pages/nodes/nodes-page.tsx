import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, errorText } from '../../api/client';
import type { NodeRow } from '../../api/types';
import { useAuth } from '../../auth';
import { Badge, ConfirmButton, CopyButton, Empty, ErrorBox, Loading, SecretOnce, Time } from '../../components/ui';
import { Link, navigate, useLocation } from '../../router';
import { CommandComposer } from '../node-detail/command-composer';
import { nodeConfigSnippet } from './node-config';
import { UnknownRegistrations } from './unknown-registrations';

const REFRESH_MS = 3_000;

export function nodeState(n: NodeRow): string {
  if (n.enrollment === 'pending') return 'pending';
  if (n.enrollment === 'revoked') return 'revoked';
  return n.online ? 'online' : 'offline';
}

interface Secret {
  title: string;
  name: string;
  secret: string;
}

function CreateNode({ onCreated }: { onCreated: (s: Secret) => void }) {
  const client = useQueryClient();
  const [name, setName] = useState('');
  const create = useMutation({
    mutationFn: (n: string) => api<{ name: string; secret: string }>('POST', '/nodes', { name: n }),
    onSuccess: (r) => {
      setName('');
      void client.invalidateQueries({ queryKey: ['nodes'] });
      onCreated({ title: `Node ${r.name} created`, name: r.name, secret: r.secret });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate(name.trim());
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="Create a node">
      <label>
        New node name <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z0-9._\-]{1,253}" title="1-253 characters of A-Z a-z 0-9 . _ -" />
      </label>
      <button type="submit" className="primary" disabled={create.isPending}>
        Create node
      </button>
      {create.error && <span className="error" role="alert">{errorText(create.error)}</span>}
    </form>
  );
}

function NodeActions({ n, onSecret }: { n: NodeRow; onSecret: (s: Secret) => void }) {
  const client = useQueryClient();
  const act = useMutation({
    mutationFn: async ({ action }: { action: 'approve' | 'revoke' | 'rotate-secret' | 'delete' }) => {
      const path = `/nodes/${encodeURIComponent(n.name)}`;
      if (action === 'delete') return api('DELETE', path);
      return api<any>('POST', `${path}/${action}`);
    },
    onSuccess: (r: any, { action }) => {
      void client.invalidateQueries({ queryKey: ['nodes'] });
      if (action === 'rotate-secret' && r?.secret) onSecret({ title: `New secret for ${n.name}`, name: n.name, secret: r.secret });
    },
  });
  const busy = act.isPending;
  return (
    <div className="actions">
      {(n.enrollment === 'pending' || n.enrollment === 'revoked') && (
        <button type="button" className="primary" disabled={busy} onClick={() => act.mutate({ action: 'approve' })}>
          Approve
        </button>
      )}
      {n.enrollment === 'pending' && <ConfirmButton label="Reject" confirm="Reject node" disabled={busy} onConfirm={() => act.mutate({ action: 'delete' })} />}
      {n.enrollment !== 'pending' && n.enrollment !== 'revoked' && <ConfirmButton label="Revoke" confirm="Revoke node" disabled={busy} onConfirm={() => act.mutate({ action: 'revoke' })} />}
      {n.enrollment !== 'pending' && <ConfirmButton label="Rotate secret" confirm="Rotate now" disabled={busy} onConfirm={() => act.mutate({ action: 'rotate-secret' })} />}
      {n.enrollment !== 'pending' && <ConfirmButton label="Delete" confirm="Delete node" className="danger-outline" disabled={busy} onConfirm={() => act.mutate({ action: 'delete' })} />}
      {act.error && <span className="error" role="alert">{errorText(act.error)}</span>}
    </div>
  );
}

const filters = ['all', 'online', 'offline', 'pending', 'revoked'] as const;

export function NodesPage() {
  const auth = useAuth();
  const admin = auth.can('admin');
  const { search } = useLocation();
  const filter = (filters as readonly string[]).includes(search.get('enrollment') ?? '') ? search.get('enrollment')! : 'all';
  const [secret, setSecret] = useState<Secret | null>(null);
  const nodes = useQuery({ queryKey: ['nodes'], queryFn: () => api<{ nodes: NodeRow[] }>('GET', '/nodes'), refetchInterval: REFRESH_MS });
  const list = (nodes.data?.nodes ?? []).filter((n) => filter === 'all' || nodeState(n) === filter);
  const operator = auth.can('operator');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const toggle = (name: string, on: boolean) =>
    setSelected((old) => {
      const next = new Set(old);
      if (on) next.add(name);
      else next.delete(name);
      return next;
    });
  const chosen = [...selected].filter((name) => list.some((n) => n.name === name));
  return (
    <>
      <h1>Nodes</h1>
      <div className="toolbar">
        <div role="group" aria-label="Show" className="segmented">
          {filters.map((f) => (
            <button key={f} type="button" aria-pressed={filter === f} onClick={() => navigate(f === 'all' ? '/nodes' : `/nodes?enrollment=${f}`, { replace: true })}>
              {f}
            </button>
          ))}
        </div>
        {admin && <CreateNode onCreated={setSecret} />}
      </div>
      <ErrorBox error={nodes.error} />
      {nodes.isLoading ? (
        <Loading />
      ) : list.length === 0 ? (
        <Empty>No nodes{filter !== 'all' ? ` (${filter})` : ''}. Nodes appear here when they first connect, or create one to provision its secret.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="data nodes-table">
            <caption className="visually-hidden">Nodes, refreshed every {REFRESH_MS / 1000} seconds</caption>
            <thead>
              <tr>
                {operator && (
                  <th scope="col">
                    <input
                      type="checkbox"
                      aria-label="Select every node shown"
                      checked={list.length > 0 && chosen.length === list.length}
                      onChange={(e) => setSelected(new Set(e.target.checked ? list.map((n) => n.name) : []))}
                    />
                  </th>
                )}
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col" className="wide-only">Enrollment</th>
                <th scope="col" className="wide-only">Address</th>
                <th scope="col">Last seen</th>
                <th scope="col" className="wide-only">Type</th>
                {admin && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.map((n) => (
                <tr key={n.name} data-node={n.name}>
                  {operator && (
                    <td>
                      <input type="checkbox" aria-label={`Select ${n.name}`} checked={selected.has(n.name)} onChange={(e) => toggle(n.name, e.target.checked)} />
                    </td>
                  )}
                  <th scope="row">
                    <Link to={`/nodes/${encodeURIComponent(n.name)}`}>{n.name}</Link>
                  </th>
                  <td data-testid="node-status">
                    <Badge value={nodeState(n)} />
                  </td>
                  <td className="wide-only">{n.enrollment}</td>
                  <td className="wide-only">
                    {n.remoteAddress ?? <span className="muted">—</span>}
                    {n.transport && <span className="muted small"> {n.transport}</span>}
                  </td>
                  <td>
                    <Time value={n.lastSeenAt} />
                  </td>
                  <td className="wide-only">{n.nodeType ?? <span className="muted">—</span>}</td>
                  {admin && (
                    <td>
                      <NodeActions n={n} onSecret={setSecret} />
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {operator && chosen.length > 0 && <CommandComposer node="" pots={[]} broadcast={chosen} />}
      <UnknownRegistrations admin={admin} />
      <SecretOnce title={secret?.title ?? ''} secret={secret?.secret ?? null} onClose={() => setSecret(null)}>
        {secret && (
          <>
            <h3>Node setup</h3>
            <pre className="snippet" data-testid="node-config">{nodeConfigSnippet(secret.name, secret.secret)}</pre>
            <CopyButton text={nodeConfigSnippet(secret.name, secret.secret)} label="Copy setup" />
          </>
        )}
      </SecretOnce>
    </>
  );
}
