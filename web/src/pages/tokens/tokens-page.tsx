import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, errorText } from '../../api/client';
import type { Role, TokenRow } from '../../api/types';
import { Badge, ConfirmButton, Empty, ErrorBox, Loading, SecretOnce, Time } from '../../components/ui';

export function TokensPage() {
  const client = useQueryClient();
  const [form, setForm] = useState<{ name: string; role: Role }>({ name: '', role: 'viewer' });
  const [secret, setSecret] = useState<string | null>(null);
  const tokens = useQuery({ queryKey: ['tokens'], queryFn: () => api<TokenRow[]>('GET', '/tokens') });
  const create = useMutation({
    mutationFn: () => api<{ token: string }>('POST', '/tokens', { name: form.name.trim(), role: form.role }),
    onSuccess: (r) => {
      setForm({ name: '', role: 'viewer' });
      setSecret(r.token);
      void client.invalidateQueries({ queryKey: ['tokens'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api('DELETE', `/tokens/${encodeURIComponent(id)}`),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['tokens'] }),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const list = tokens.data ?? [];
  return (
    <>
      <h1>API tokens</h1>
      <form className="card inline-form" onSubmit={submit} aria-label="Create a token">
        <label>Name <input required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} /></label>
        <label>
          Role{' '}
          <select value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value as Role })}>
            <option value="viewer">viewer</option>
            <option value="operator">operator</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>Create token</button>
        {create.error && <span className="error" role="alert">{errorText(create.error)}</span>}
      </form>
      <ErrorBox error={tokens.error ?? revoke.error} />
      {tokens.isLoading ? <Loading /> : list.length === 0 ? <Empty>No tokens.</Empty> : (
        <table className="data">
          <thead>
            <tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr>
          </thead>
          <tbody>
            {list.map((t) => (
              <tr key={t.id}>
                <th scope="row">{t.name}</th>
                <td>{t.role}</td>
                <td><Time value={t.createdAt} /></td>
                <td><Time value={t.lastUsedAt} /></td>
                <td><Badge value={t.revokedAt ? 'revoked' : 'active'} /></td>
                <td>{!t.revokedAt && <ConfirmButton label="Revoke" confirm="Revoke token" onConfirm={() => revoke.mutate(t.id)} />}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <SecretOnce title="New API token" secret={secret} onClose={() => setSecret(null)}>
        <p className="muted">Send it as <code>Authorization: Bearer &lt;token&gt;</code>.</p>
      </SecretOnce>
    </>
  );
}
