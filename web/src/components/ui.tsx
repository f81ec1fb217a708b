// Small building blocks every page uses: loading and error states, times, status badges, a
// confirm step for destructive actions, and the dialog that shows a secret exactly once.
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { errorText } from '../api/client';

export function Loading({ label = 'Loading' }: { label?: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      {label}…
    </p>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {errorText(error)}
    </p>
  );
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function relative(ms: number, now = Date.now()): string {
  const s = Math.round((ms - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 60) return rtf.format(s, 'second');
  if (abs < 3600) return rtf.format(Math.round(s / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(s / 3600), 'hour');
  return rtf.format(Math.round(s / 86400), 'day');
}

/** A <time> with the relative age and the exact time in its title. */
export function Time({ value }: { value: string | number | null | undefined }) {
  if (value === null || value === undefined || value === '') return <span className="muted">—</span>;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) return <span>{String(value)}</span>;
  const iso = new Date(ms).toISOString();
  return (
    <time dateTime={iso} title={iso}>
      {relative(ms)}
    </time>
  );
}

const tone: Record<string, string> = {
  online: 'ok', succeeded: 'ok', running: 'ok', enrolled: 'ok', approved: 'info', sent: 'info', queued: 'info',
  pending: 'warn', offline: 'muted', stopped: 'muted', expired: 'muted', cancelled: 'muted',
  failed: 'bad', revoked: 'bad', error: 'bad', missing: 'warn',
};

export function Badge({ value }: { value: string }) {
  return <span className={`badge ${tone[value.toLowerCase()] ?? 'muted'}`}>{value}</span>;
}

export const fmt = new Intl.NumberFormat();

/** A button that asks "Sure?" in place before running a destructive action. */
export function ConfirmButton({ label, confirm = 'Confirm', onConfirm, disabled, className }: { label: string; confirm?: string; onConfirm: () => void; disabled?: boolean; className?: string }) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button type="button" className={className} disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span className="confirm" role="group" aria-label={`${label}: confirm`}>
      <button type="button" className="danger" autoFocus onClick={() => { setAsking(false); onConfirm(); }}>
        {confirm}
      </button>
      <button type="button" className="ghost" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      className="ghost"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setDone(true);
          setTimeout(() => setDone(false), 1500);
        } catch {
          // clipboard refused (insecure origin): the text is selectable on the page anyway
        }
      }}
    >
      {done ? 'Copied' : label}
    </button>
  );
}

/** A modal <dialog> (focus trapped by the browser, Escape closes). */
export function Dialog({ title, open, onClose, children }: { title: string; open: boolean; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} onClose={onClose} aria-labelledby="dialog-title">
      <h2 id="dialog-title">{title}</h2>
      {children}
      <form method="dialog" className="dialog-actions">
        <button type="submit">Close</button>
      </form>
    </dialog>
  );
}

/** Shows a secret once, with what to do with it; it is gone when the dialog closes. */
export function SecretOnce({ title, secret, onClose, children }: { title: string; secret: string | null; onClose: () => void; children?: ReactNode }) {
  return (
    <Dialog title={title} open={secret !== null} onClose={onClose}>
      <p className="warn-text">This secret is shown only now. Copy it before closing this dialog.</p>
      <p className="secret">
        <code data-testid="secret">{secret}</code> {secret && <CopyButton text={secret} />}
      </p>
      {children}
    </Dialog>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="muted empty">{children}</p>;
}
