import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, errorText } from '../../api/client';
import type { Role } from '../../api/types';
import { useAuth } from '../../auth';
import { Badge, ConfirmButton, Empty, ErrorBox, Loading, SecretOnce, Time } from '../../components/ui';

interface User {
  id: string;
  username: string;
  role: Role;
  created_at: number;
  disabled_at: number | null;
  last_login_at: number | null;
}

export function UsersPage() {
  const auth = useAuth();
  const client = useQueryClient();
  const [form, setForm] = useState<{ username: string; role: Role }>({ username: '', role: 'viewer' });
  const [secret, setSecret] = useState<{ username: string; password: string } | null>(null);
  const users = useQuery({ queryKey: ['users'], queryFn: () => api<User[]>('GET', '/users') });
  const refresh = () => void client.invalidateQueries({ queryKey: ['users'] });
  const create = useMutation({
    mutationFn: () => api<User & { password?: string }>('POST', '/users', { username: form.username.trim(), role: form.role }),
    onSuccess: (u) => {
      setForm({ username: '', role: 'viewer' });
      if (u.password) setSecret({ username: u.username, password: u.password });
      refresh();
    },
  });
  const update = useMutation({
    mutationFn: ({ id, changes }: { id: string; changes: Partial<Pick<User, 'role'>> & { disabled?: boolean } }) => api('PATCH', `/users/${encodeURIComponent(id)}`, changes),
    onSuccess: refresh,
  });
  const remove = useMutation({ mutationFn: (id: string) => api('DELETE', `/users/${encodeURIComponent(id)}`), onSuccess: refresh });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const me = auth.session?.user.id;
  const list = users.data ?? [];
  return (
    <>
      <h1>Users</h1>
      <form className="card inline-form" onSubmit={submit} aria-label="Create a user">
        <label>User name <input required value={form.username} onChange={(e) => setForm({ ...form, username: e.target.value })} /></label>
        <label>
          Role{' '}
          <select value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value as Role })}>
            <option value="viewer">viewer</option>
            <option value="operator">operator</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>Create user</button>
        {create.error && <span className="error" role="alert">{errorText(create.error)}</span>}
      </form>
      <ErrorBox error={users.error ?? update.error ?? remove.error} />
      {users.isLoading ? <Loading /> : list.length === 0 ? <Empty>No users.</Empty> : (
        <table className="data">
          <thead>
            <tr><th scope="col">User</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">Last login</th><th scope="col">Created</th><th scope="col">Actions</th></tr>
          </thead>
          <tbody>
            {list.map((u) => (
              <tr key={u.id}>
                <th scope="row">{u.username}{u.id === me && <span className="muted small"> (you)</span>}</th>
                <td>
                  <select aria-label={`Role of ${u.username}`} value={u.role} disabled={u.id === me} onChange={(e) => update.mutate({ id: u.id, changes: { role: e.target.value as Role } })}>
                    <option value="viewer">viewer</option>
                    <option value="operator">operator</option>
                    <option value="admin">admin</option>
                  </select>
                </td>
                <td><Badge value={u.disabled_at ? 'disabled' : 'active'} /></td>
                <td><Time value={u.last_login_at} /></td>
                <td><Time value={u.created_at} /></td>
                <td>
<div className="actions">
                  {u.id !== me && (
                    <>
                      <button type="button" onClick={() => update.mutate({ id: u.id, changes: { disabled: !u.disabled_at } })}>{u.disabled_at ? 'Enable' : 'Disable'}</button>
                      <ConfirmButton label="Delete" confirm="Delete user" onConfirm={() => remove.mutate(u.id)} />
                    </>
                  )}
                </div>
</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <SecretOnce title={`Password of ${secret?.username ?? ''}`} secret={secret?.password ?? null} onClose={() => setSecret(null)}>
        <p className="muted">Give it to the person; they log in with it.</p>
      </SecretOnce>
    </>
  );
}
