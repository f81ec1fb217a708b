import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, errorText } from '../../api/client';
import { Badge, ConfirmButton, Empty, ErrorBox, fmt, Loading, Time } from '../../components/ui';

interface Channel {
  id: string;
  name: string;
  type: 'webhook' | 'slack' | 'telegram' | 'email';
  config: Record<string, unknown>;
  secrets: Record<string, string>;
  enabled: boolean;
  stats?: { delivered: number; failed: number; retries: number; dropped: number; queued: number; lastDeliveredAt: number | null; lastError?: string | null };
}
interface Rule {
  id: string;
  name: string;
  kind: string;
  params: Record<string, unknown>;
  channels: string[];
  dedupSeconds: number;
  quietSeconds: number;
  enabled: boolean;
  updatedAt: number;
}
const kinds = ['node_offline', 'node_online', 'pot_failed', 'command_failed', 'login_success', 'file_download', 'attacker_events', 'output_backlog'];
const channelTypes = ['webhook', 'slack', 'telegram', 'email'] as const;

function parseJson(label: string, text: string): Record<string, unknown> {
  if (!text.trim()) return {};
  try {
    const v = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  } catch {
    // fall through
  }
  throw new Error(`${label} must be a JSON object`);
}

function NewChannel() {
  const client = useQueryClient();
  const [form, setForm] = useState({ name: '', type: 'webhook' as Channel['type'], config: '{"url": "https://hooks.example/apiary"}', secrets: '' });
  const [problem, setProblem] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: (body: unknown) => api('POST', '/alerts/channels', body),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['alert-channels'] }),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setProblem(null);
    try {
      const secrets = parseJson('Secrets', form.secrets);
      create.mutate({ name: form.name.trim(), type: form.type, config: parseJson('Config', form.config), ...(Object.keys(secrets).length ? { secrets } : {}) });
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  return (
    <form className="card inline-form" onSubmit={submit} aria-labelledby="new-channel">
      <h2 id="new-channel">New channel</h2>
      <label>Name <input required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} /></label>
      <label>
        Type{' '}
        <select value={form.type} onChange={(e) => setForm({ ...form, type: e.target.value as Channel['type'] })}>
          {channelTypes.map((t) => <option key={t}>{t}</option>)}
        </select>
      </label>
      <label>Config (JSON) <textarea rows={2} cols={36} value={form.config} onChange={(e) => setForm({ ...form, config: e.target.value })} /></label>
      <label>Secrets (JSON, stored masked) <textarea rows={2} cols={28} value={form.secrets} onChange={(e) => setForm({ ...form, secrets: e.target.value })} /></label>
      <button type="submit" className="primary" disabled={create.isPending}>Create channel</button>
      {(problem || create.error) && <p className="error" role="alert">{problem ?? errorText(create.error)}</p>}
    </form>
  );
}

function NewRule({ channels }: { channels: Channel[] }) {
  const client = useQueryClient();
  const [form, setForm] = useState({ name: '', kind: 'node_offline', params: '', channels: [] as string[] });
  const [problem, setProblem] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: (body: unknown) => api('POST', '/alerts/rules', body),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['alert-rules'] }),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setProblem(null);
    try {
      create.mutate({ name: form.name.trim(), kind: form.kind, params: parseJson('Params', form.params), channels: form.channels });
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  return (
    <form className="card inline-form" onSubmit={submit} aria-labelledby="new-rule">
      <h2 id="new-rule">New rule</h2>
      <label>Name <input required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} /></label>
      <label>
        Kind{' '}
        <select value={form.kind} onChange={(e) => setForm({ ...form, kind: e.target.value })}>
          {kinds.map((k) => <option key={k}>{k}</option>)}
        </select>
      </label>
      <label>Params (JSON) <textarea rows={2} cols={28} value={form.params} onChange={(e) => setForm({ ...form, params: e.target.value })} /></label>
      <fieldset>
        <legend>Channels</legend>
        {channels.length === 0 && <span className="muted small">create a channel first</span>}
        {channels.map((c) => (
          <label key={c.id} className="check">
            <input
              type="checkbox"
              checked={form.channels.includes(c.id)}
              onChange={(e) => setForm({ ...form, channels: e.target.checked ? [...form.channels, c.id] : form.channels.filter((x) => x !== c.id) })}
            />{' '}
            {c.name}
          </label>
        ))}
      </fieldset>
      <button type="submit" className="primary" disabled={create.isPending}>Create rule</button>
      {(problem || create.error) && <p className="error" role="alert">{problem ?? errorText(create.error)}</p>}
    </form>
  );
}

export function AlertsPage() {
  const client = useQueryClient();
  const channels = useQuery({ queryKey: ['alert-channels'], queryFn: () => api<Channel[]>('GET', '/alerts/channels'), refetchInterval: 10_000 });
  const rules = useQuery({ queryKey: ['alert-rules'], queryFn: () => api<Rule[]>('GET', '/alerts/rules') });
  const [tested, setTested] = useState<Record<string, string>>({});
  const act = useMutation({
    mutationFn: async ({ path, method, body }: { path: string; method: string; body?: unknown }) => api<{ delivered?: boolean; error?: string }>(method, path, body),
    onSuccess: (r, v) => {
      void client.invalidateQueries({ queryKey: ['alert-channels'] });
      void client.invalidateQueries({ queryKey: ['alert-rules'] });
      if (v.path.endsWith('/test')) setTested((t) => ({ ...t, [v.path]: r?.delivered ? 'delivered' : `failed: ${r?.error ?? ''}` }));
    },
  });
  const names = new Map((channels.data ?? []).map((c) => [c.id, c.name]));
  return (
    <>
      <h1>Alerts</h1>
      <ErrorBox error={channels.error ?? rules.error ?? act.error} />
      <section aria-labelledby="rules-title">
        <h2 id="rules-title">Rules</h2>
        {rules.isLoading ? <Loading /> : (rules.data ?? []).length === 0 ? <Empty>No alert rules.</Empty> : (
          <table className="data">
            <thead><tr><th scope="col">Rule</th><th scope="col">Kind</th><th scope="col">Params</th><th scope="col">Channels</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
            <tbody>
              {rules.data!.map((r) => (
                <tr key={r.id}>
                  <th scope="row">{r.name}</th>
                  <td><code>{r.kind}</code></td>
                  <td className="wrap"><code className="small">{JSON.stringify(r.params)}</code></td>
                  <td>{r.channels.map((c) => names.get(c) ?? c).join(', ')}</td>
                  <td><Badge value={r.enabled ? 'enabled' : 'disabled'} /></td>
                  <td>
<div className="actions">
                    <button type="button" onClick={() => act.mutate({ method: 'PATCH', path: `/alerts/rules/${encodeURIComponent(r.id)}`, body: { enabled: !r.enabled } })}>{r.enabled ? 'Disable' : 'Enable'}</button>
                    <ConfirmButton label="Delete" confirm="Delete rule" onConfirm={() => act.mutate({ method: 'DELETE', path: `/alerts/rules/${encodeURIComponent(r.id)}` })} />
                  </div>
</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="channels-title">
        <h2 id="channels-title">Channels</h2>
        {channels.isLoading ? <Loading /> : (channels.data ?? []).length === 0 ? <Empty>No channels.</Empty> : (
          <table className="data">
            <thead><tr><th scope="col">Channel</th><th scope="col">Type</th><th scope="col">Delivered / failed / queued</th><th scope="col">Last delivery</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
            <tbody>
              {channels.data!.map((c) => {
                const testPath = `/alerts/channels/${encodeURIComponent(c.id)}/test`;
                return (
                  <tr key={c.id}>
                    <th scope="row">{c.name}</th>
                    <td>{c.type}</td>
                    <td>{c.stats ? `${fmt.format(c.stats.delivered)} / ${fmt.format(c.stats.failed)} / ${fmt.format(c.stats.queued)}` : ''}</td>
                    <td><Time value={c.stats?.lastDeliveredAt ?? null} /></td>
                    <td><Badge value={c.enabled ? 'enabled' : 'disabled'} /></td>
                    <td>
<div className="actions">
                      <button type="button" onClick={() => act.mutate({ method: 'POST', path: testPath })}>Send test</button>
                      {tested[testPath] && <span className="small" role="status">{tested[testPath]}</span>}
                      <button type="button" onClick={() => act.mutate({ method: 'PATCH', path: `/alerts/channels/${encodeURIComponent(c.id)}`, body: { enabled: !c.enabled } })}>{c.enabled ? 'Disable' : 'Enable'}</button>
                      <ConfirmButton label="Delete" confirm="Delete channel" onConfirm={() => act.mutate({ method: 'DELETE', path: `/alerts/channels/${encodeURIComponent(c.id)}` })} />
                    </div>
</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
      <div className="grid">
        <NewRule channels={channels.data ?? []} />
        <NewChannel />
      </div>
    </>
  );
}
