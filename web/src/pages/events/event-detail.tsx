import type { EventRow } from '../../api/types';
import { CopyButton, Time } from '../../components/ui';
import { Link } from '../../router';
import { curlFor, eventSource } from './event-summary';

export function EventDetail({ event, onClose }: { event: EventRow; onClose: () => void }) {
  const src = eventSource(event);
  const json = JSON.stringify(event, null, 2);
  const curl = curlFor(location.origin, `/events/${event.id}`);
  return (
    <aside className="card event-detail" aria-labelledby="event-detail-title">
      <div className="row-between">
        <h2 id="event-detail-title">Event {event.id}</h2>
        <button type="button" className="ghost" onClick={onClose} aria-label="Close the event detail">
          ✕
        </button>
      </div>
      <p>
        <Time value={event.timestamp} /> · {event.node} / {event.pot_id} · <code>{event.event_type}</code>
      </p>
      <p className="actions">
        {src && <Link to={`/attackers/${encodeURIComponent(src)}`}>Attacker {src}</Link>}
        {typeof event.data?.session === 'string' && (
          <Link to={`/sessions?src_ip=${encodeURIComponent(src ?? '')}&node=${encodeURIComponent(event.node)}`}>Sessions</Link>
        )}
        <CopyButton text={json} label="Copy JSON" />
        <CopyButton text={curl} label="Copy as curl" />
      </p>
      <pre className="json" data-testid="event-json">{json}</pre>
    </aside>
  );
}
