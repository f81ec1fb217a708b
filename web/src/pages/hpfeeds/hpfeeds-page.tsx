import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, errorText } from '../../api/client';
import type { Authkey } from '../../api/types';
import { useAuth } from '../../auth';
import { BrokerLive } from './broker-live';
import { ConfirmButton, Empty, ErrorBox, Loading, SecretOnce, Time } from '../../components/ui';

const channels = (s: string) => s.split(/[\s,]+/).map((c) => c.trim()).filter(Boolean);

function CreateAuthkey({ onSecret }: { onSecret: (ident: string, secret: string) => void }) {
  const client = useQueryClient();
  const [form, setForm] = useState({ ident: '', owner: '', pubchans: '', subchans: '' });
  const create = useMutation({
    mutationFn: () => api<Authkey & { secret: string }>('POST', '/hpfeeds/authkeys', { ident: form.ident.trim(), owner: form.owner.trim() || undefined, pubchans: channels(form.pubchans), subchans: channels(form.subchans) }),
    onSuccess: (r) => {
      setForm({ ident: '', owner: '', pubchans: '', subchans: '' });
      void client.invalidateQueries({ queryKey: ['authkeys'] });
      onSecret(r.ident, r.secret);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <form className="card inline-form" onSubmit={submit} aria-labelledby="new-authkey">
      <h2 id="new-authkey">New authkey</h2>
      <label>Ident <input name="ident" required value={form.ident} onChange={(e) => setForm({ ...form, ident: e.target.value })} /></label>
      <label>Owner <input name="owner" value={form.owner} onChange={(e) => setForm({ ...form, owner: e.target.value })} /></label>
      <label>Publish channels <input name="pubchans" placeholder="cowrie.sessions, …" value={form.pubchans} onChange={(e) => setForm({ ...form, pubchans: e.target.value })} /></label>
      <label>Subscribe channels <input name="subchans" placeholder="apiary.events, …" value={form.subchans} onChange={(e) => setForm({ ...form, subchans: e.target.value })} /></label>
      <button type="submit" className="primary" disabled={create.isPending}>Create authkey</button>
      {create.error && <p className="error" role="alert">{errorText(create.error)}</p>}
    </form>
  );
}

export function HpfeedsPage() {
  const auth = useAuth();
  const client = useQueryClient();
  const [secret, setSecret] = useState<{ ident: string; secret: string } | null>(null);
  const keys = useQuery({ queryKey: ['authkeys'], queryFn: () => api<Authkey[]>('GET', '/hpfeeds/authkeys'), enabled: auth.can('admin') });
  const act = useMutation({
    mutationFn: ({ ident, action }: { ident: string; action: 'rotate' | 'revoke' }) =>
      action === 'rotate' ? api<{ ident: string; secret: string }>('POST', `/hpfeeds/authkeys/${encodeURIComponent(ident)}/rotate`) : api<undefined>('DELETE', `/hpfeeds/authkeys/${encodeURIComponent(ident)}`),
    onSuccess: (r) => {
      void client.invalidateQueries({ queryKey: ['authkeys'] });
      if (r && 'secret' in r) setSecret({ ident: r.ident, secret: r.secret });
    },
  });
  if (!auth.can('admin')) return <p>hpfeeds authkeys are managed by admins.</p>;
  const list = keys.data ?? [];
  return (
    <>
      <h1>hpfeeds authkeys</h1>
      <p className="muted">Credentials of hpfeeds publishers and subscribers of the built-in broker. A node's own key is created when it enrolls.</p>
      <BrokerLive />
      <CreateAuthkey onSecret={(ident, s) => setSecret({ ident, secret: s })} />
      <ErrorBox error={keys.error ?? act.error} />
      {keys.isLoading ? <Loading /> : list.length === 0 ? <Empty>No authkeys.</Empty> : (
        <div className="table-wrap">
          <table className="data">
            <thead>
              <tr><th scope="col">Ident</th><th scope="col">Owner</th><th scope="col">Publishes</th><th scope="col">Subscribes</th><th scope="col">Updated</th><th scope="col">Actions</th></tr>
            </thead>
            <tbody>
              {list.map((k) => (
                <tr key={k.ident} data-ident={k.ident}>
                  <th scope="row">{k.ident}</th>
                  <td>{k.owner}</td>
                  <td className="wrap">{k.pubchans.join(', ')}</td>
                  <td className="wrap">{k.subchans.join(', ')}</td>
                  <td><Time value={k.updatedAt} /></td>
                  <td>
<div className="actions">
                    <ConfirmButton label="Rotate" confirm="Rotate secret" onConfirm={() => act.mutate({ ident: k.ident, action: 'rotate' })} />
                    <ConfirmButton label="Revoke" confirm="Revoke key" onConfirm={() => act.mutate({ ident: k.ident, action: 'revoke' })} />
                  </div>
</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <SecretOnce title={`Secret of ${secret?.ident ?? ''}`} secret={secret?.secret ?? null} onClose={() => setSecret(null)}>
        {secret && <pre className="snippet">{`hpfeeds ident: ${secret.ident}\nhpfeeds secret: ${secret.secret}\nbroker: ${location.hostname}:10000`}</pre>}
      </SecretOnce>
    </>
  );
}
