import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, errorText } from '../../api/client';
import { ConfirmButton, Time } from '../../components/ui';

interface Registration {
  addressKey: string;
  lastAddress: string;
  attempts: number;
  firstSeenAt: number;
  lastSeenAt: number;
  lastNames: string[];
  lastResult: string;
}

/**
 * Who knocks without a node row (unknown names, over the pending caps, invalid), per source
 * address; admins can reject every pending node from one address at once.
 */
export function UnknownRegistrations({ admin }: { admin: boolean }) {
  const client = useQueryClient();
  const [done, setDone] = useState<string | null>(null);
  const q = useQuery({ queryKey: ['unknown-registrations'], queryFn: () => api<{ registrations: Registration[] }>('GET', '/enrollment/unknown-registrations?limit=50'), refetchInterval: 10_000 });
  const reject = useMutation({
    mutationFn: (address: string) => api<{ rejected: number; names: string[] }>('POST', '/enrollment/pending/reject', { address }),
    onSuccess: (r, address) => {
      setDone(`Rejected ${r.rejected} pending node${r.rejected === 1 ? '' : 's'} from ${address}.`);
      void client.invalidateQueries({ queryKey: ['nodes'] });
    },
  });
  const rows = q.data?.registrations ?? [];
  if (rows.length === 0) return null;
  return (
    <details className="card">
      <summary>
        <h2 className="inline">Unknown registrations ({rows.length} addresses)</h2>
      </summary>
      {reject.error && <p className="error" role="alert">{errorText(reject.error)}</p>}
      {done && <p className="ok-text" role="status">{done}</p>}
      <div className="table-wrap">
        <table className="data compact">
          <thead>
            <tr><th scope="col">Address</th><th scope="col">Attempts</th><th scope="col">Names</th><th scope="col">Last result</th><th scope="col">Last seen</th>{admin && <th scope="col"><span className="visually-hidden">Actions</span></th>}</tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.addressKey}>
                <th scope="row">{r.lastAddress}</th>
                <td>{r.attempts}</td>
                <td className="wrap">{r.lastNames.join(', ')}</td>
                <td>{r.lastResult}</td>
                <td><Time value={r.lastSeenAt} /></td>
                {admin && (
                  <td>
                    <ConfirmButton label="Reject pending from here" confirm="Reject all" onConfirm={() => reject.mutate(r.lastAddress)} />
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}
