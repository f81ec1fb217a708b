import { useState, type FormEvent } from 'react';
import { useMutation } from '@tanstack/react-query';
import { api, errorText } from '../../api/client';
import { useAuth } from '../../auth';
import { Time } from '../../components/ui';

/** The logged-in user: session times and a password change (which ends their other sessions). */
export function AccountPage() {
  const { session } = useAuth();
  const [form, setForm] = useState({ current: '', next: '', again: '' });
  const [problem, setProblem] = useState<string | null>(null);
  const change = useMutation({
    mutationFn: () => api('POST', '/session/password', { current_password: form.current, new_password: form.next }),
    onSuccess: () => setForm({ current: '', next: '', again: '' }),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setProblem(form.next === form.again ? null : 'The two new passwords differ.');
    if (form.next === form.again) change.mutate();
  };
  if (!session) return null;
  return (
    <>
      <h1>Account</h1>
      <dl className="facts">
        <div><dt>User</dt><dd>{session.user.username}</dd></div>
        <div><dt>Role</dt><dd>{session.user.role}</dd></div>
        <div><dt>Session ends</dt><dd><Time value={session.expires_at} /></dd></div>
      </dl>
      <form className="card inline-form" onSubmit={submit} aria-labelledby="password-title">
        <h2 id="password-title">Change password</h2>
        <label>Current password <input type="password" autoComplete="current-password" required value={form.current} onChange={(e) => setForm({ ...form, current: e.target.value })} /></label>
        <label>New password <input type="password" autoComplete="new-password" required minLength={12} value={form.next} onChange={(e) => setForm({ ...form, next: e.target.value })} /></label>
        <label>New password again <input type="password" autoComplete="new-password" required minLength={12} value={form.again} onChange={(e) => setForm({ ...form, again: e.target.value })} /></label>
        <button type="submit" className="primary" disabled={change.isPending}>Change password</button>
        {(problem || change.error) && <p className="error" role="alert">{problem ?? errorText(change.error)}</p>}
        {change.isSuccess && <p className="ok-text" role="status">Password changed; your other sessions have ended.</p>}
      </form>
    </>
  );
}
