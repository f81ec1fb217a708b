import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { errorText } from '../../api/client';
import { api } from '../../api/client';
import type { CommandRow, Pot } from '../../api/types';
import { buildCommand, commandSpecs, gitUrlProblem, type CommandSpec } from './command-schema';

async function fetchOpenApi(): Promise<Record<string, any>> {
  const res = await fetch('/docs/json', { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`could not read the API schema (${res.status})`);
  return res.json();
}

function Field({ spec, f, values, set, pots }: { spec: CommandSpec; f: CommandSpec['fields'][number]; values: Record<string, string | boolean>; set: (k: string, v: string | boolean) => void; pots: Pot[] }) {
  const id = `cmd-${spec.name}-${f.name}`;
  if (f.kind === 'boolean') {
    return (
      <label className="check" htmlFor={id}>
        <input id={id} type="checkbox" checked={values[f.name] === true} onChange={(e) => set(f.name, e.target.checked)} /> {f.name}
      </label>
    );
  }
  if (f.kind === 'map') {
    return (
      <label htmlFor={id}>
        {f.name} <span className="muted small">(key=value, one a line)</span>
        <textarea id={id} rows={3} value={String(values[f.name] ?? '')} onChange={(e) => set(f.name, e.target.value)} />
      </label>
    );
  }
  const problem = f.name === 'git_url' ? gitUrlProblem(String(values[f.name] ?? '')) : undefined;
  return (
    <label htmlFor={id}>
      <span>
        {f.name}
        {f.required && <span aria-hidden="true"> *</span>}
      </span>
      <input
        id={id}
        required={f.required}
        maxLength={f.maxLength}
        list={f.name === 'pot_id' ? 'pot-ids' : undefined}
        value={String(values[f.name] ?? '')}
        aria-invalid={problem ? true : undefined}
        onChange={(e) => set(f.name, e.target.value)}
      />
      {problem && <span className="error small">{problem}</span>}
      {f.name === 'pot_id' && (
        <datalist id="pot-ids">
          {pots.map((p) => (
            <option key={p.potId} value={p.potId} />
          ))}
        </datalist>
      )}
    </label>
  );
}

/** Sends to one node, or with `broadcast` to each of the named nodes (POST /commands/broadcast). */
export function CommandComposer({ node, pots, broadcast }: { node: string; pots: Pot[]; broadcast?: string[] }) {
  const client = useQueryClient();
  const schema = useQuery({ queryKey: ['openapi'], queryFn: fetchOpenApi, staleTime: Infinity });
  const specs = schema.data ? commandSpecs(schema.data) : [];
  const [kind, setKind] = useState('InstallPot');
  const [values, setValues] = useState<Record<string, string | boolean>>({ auto_start: true });
  const [formError, setFormError] = useState<string | null>(null);
  const spec = specs.find((s) => s.name === kind) ?? specs[0];
  const send = useMutation({
    mutationFn: async (command: Record<string, unknown>): Promise<string> => {
      // A git_url is checked against the core's allow-list (POST /commands/check, which queues
      // nothing) before anything is sent: the list itself never leaves the core.
      const install = command.InstallPot as { git_url?: string } | undefined;
      if (install?.git_url) await api('POST', '/commands/check', { command });
      if (broadcast) {
        const r = await api<{ batchId: string; count: number }>('POST', '/commands/broadcast', { nodes: broadcast, command });
        return `Queued for ${r.count} node${r.count === 1 ? '' : 's'} (batch ${r.batchId.slice(0, 8)}).`;
      }
      const r = await api<CommandRow>('POST', `/nodes/${encodeURIComponent(node)}/commands`, { command });
      return `Queued command ${r.kind} (${r.id.slice(0, 8)}).`;
    },
    onSuccess: () => void client.invalidateQueries({ queryKey: ['commands'] }),
  });
  const set = (k: string, v: string | boolean) => setValues((old) => ({ ...old, [k]: v }));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!spec) return;
    setFormError(null);
    try {
      if (spec.fields.some((f) => f.name === 'git_url')) {
        const problem = gitUrlProblem(String(values.git_url ?? '').trim());
        if (problem) throw new Error(problem);
      }
      send.mutate(buildCommand(spec, values));
    } catch (err) {
      setFormError((err as Error).message);
    }
  };
  if (schema.error) return <p className="error">{errorText(schema.error)}</p>;
  if (!spec) return <p className="muted">Loading the command schema…</p>;
  const fields = spec.shape === 'pot' ? [{ name: 'pot_id', kind: 'string' as const, required: true }] : spec.fields;
  return (
    <form className="card composer" onSubmit={submit} aria-labelledby="composer-title">
      <h2 id="composer-title">{broadcast ? `Send a command to ${broadcast.length} selected node${broadcast.length === 1 ? '' : 's'}` : 'Send a command'}</h2>
      <label>
        Command
        <select name="command" aria-label="Command" value={spec.name} onChange={(e) => { setKind(e.target.value); setFormError(null); send.reset(); }}>
          {specs.map((s) => (
            <option key={s.name} value={s.name}>
              {s.name}
            </option>
          ))}
        </select>
      </label>
      {spec.description && <p className="muted small">{spec.description}</p>}
      <div className="fields">
        {fields.map((f) => (
          <Field key={f.name} spec={spec} f={f} values={values} set={set} pots={pots} />
        ))}
      </div>
      <button type="submit" className="primary" disabled={send.isPending}>
        Send {spec.name}
      </button>
      {(formError || send.error) && (
        <p className="error" role="alert">
          {formError ?? errorText(send.error)}
        </p>
      )}
      {send.data && (
        <p className="ok-text" role="status">
          {send.data}
        </p>
      )}
    </form>
  );
}
