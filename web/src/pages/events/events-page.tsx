import { useCallback, useRef, useState, type FormEvent } from 'react';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { api, qs } from '../../api/client';
import type { EventPage, EventRow } from '../../api/types';
import { useEventStream, type StreamFilter } from '../../api/stream';
import { CopyButton, Empty, ErrorBox, fmt } from '../../components/ui';
import { navigate, useLocation } from '../../router';
import { EventDetail } from './event-detail';
import { curlFor, eventSource, eventSummary } from './event-summary';

/** Live events kept in memory; older ones fall off the end (search finds them). */
const LIVE_MAX = 5000;
const ROW_PX = 34;
const filterKeys = ['node', 'pot', 'pot_type', 'event_type'] as const;

function EventTable({ events, selected, onSelect, label }: { events: EventRow[]; selected?: number; onSelect: (e: EventRow) => void; label: string }) {
  const scroller = useRef<HTMLDivElement>(null);
  // Only the rows in view are in the DOM: thousands of events cost what a screenful costs.
  const v = useVirtualizer({ count: events.length, getScrollElement: () => scroller.current, estimateSize: () => ROW_PX, overscan: 10 });
  return (
    <div className="event-table" role="table" aria-label={label} aria-rowcount={events.length + 1}>
      <div role="rowgroup" className="event-head">
        <div role="row" className="event-row">
          <span role="columnheader">Time</span>
          <span role="columnheader">Node / pot</span>
          <span role="columnheader">Type</span>
          <span role="columnheader">Source</span>
          <span role="columnheader">What</span>
        </div>
      </div>
      <div ref={scroller} className="event-scroll" role="rowgroup" tabIndex={0} aria-label="Events, newest first">
        <div style={{ height: v.getTotalSize(), position: 'relative' }}>
          {v.getVirtualItems().map((item) => {
            const e = events[item.index]!;
            const src = eventSource(e);
            return (
              <div
                key={e.id}
                role="row"
                aria-rowindex={item.index + 2}
                aria-selected={selected === e.id}
                tabIndex={0}
                className="event-row"
                data-event-type={e.event_type}
                data-src={src}
                style={{ transform: `translateY(${item.start}px)`, height: ROW_PX }}
                onClick={() => onSelect(e)}
                onKeyDown={(k) => {
                  if (k.key === 'Enter' || k.key === ' ') {
                    k.preventDefault();
                    onSelect(e);
                  }
                }}
              >
                <span role="cell">{new Date(e.timestamp).toLocaleTimeString()}</span>
                <span role="cell">{e.node} / {e.pot_id}</span>
                <span role="cell"><code>{e.event_type}</code></span>
                <span role="cell">{src ?? ''}</span>
                <span role="cell" className="ellipsis">{eventSummary(e)}</span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}

function LiveTail({ filter, onSelect, selected }: { filter: StreamFilter; onSelect: (e: EventRow) => void; selected?: number }) {
  const [events, setEvents] = useState<EventRow[]>([]);
  const [paused, setPaused] = useState(false);
  const [missed, setMissed] = useState(0);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const onEvents = useCallback((batch: EventRow[]) => {
    // Paused: the list holds still to be read; what arrives meanwhile is counted, not shown.
    if (pausedRef.current) {
      setMissed((m) => m + batch.length);
      return;
    }
    setEvents((old) => {
      const next = batch.slice().reverse().concat(old);
      return next.length > LIVE_MAX ? next.slice(0, LIVE_MAX) : next;
    });
  }, []);
  const state = useEventStream(filter, onEvents);
  return (
    <section aria-labelledby="live-title">
      <div className="row-between">
        <h2 id="live-title">
          Live tail <span className={`dot ${state}`} aria-hidden="true" /> <span className="muted small" data-testid="stream-state">{state === 'open' ? 'connected' : state}</span>
        </h2>
        <div className="actions">
          <span className="muted small" aria-live="polite">{fmt.format(events.length)} shown{paused && missed ? `, ${fmt.format(missed)} arrived while paused` : ''}</span>
          <button type="button" aria-pressed={paused} onClick={() => { setPaused(!paused); setMissed(0); }}>
            {paused ? 'Resume' : 'Pause'}
          </button>
          <button type="button" className="ghost" onClick={() => setEvents([])}>Clear</button>
        </div>
      </div>
      {events.length === 0 ? <Empty>Waiting for events…</Empty> : <EventTable events={events} onSelect={onSelect} selected={selected} label="Live events" />}
    </section>
  );
}

function Search({ filter, onSelect, selected }: { filter: StreamFilter; onSelect: (e: EventRow) => void; selected?: number }) {
  const [range, setRange] = useState({ since: '', until: '' });
  const [applied, setApplied] = useState(range);
  const params = { ...filter, since: applied.since ? new Date(applied.since).toISOString() : undefined, until: applied.until ? new Date(applied.until).toISOString() : undefined, limit: 100 };
  const q = useInfiniteQuery({
    queryKey: ['events-search', params],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) => api<EventPage>('GET', `/events${qs({ ...params, cursor: pageParam })}`),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const events = q.data?.pages.flatMap((p) => p.events) ?? [];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setApplied(range);
  };
  return (
    <section aria-labelledby="search-title">
      <h2 id="search-title">Search</h2>
      <form className="inline-form" onSubmit={submit}>
        <label>From <input type="datetime-local" value={range.since} onChange={(e) => setRange({ ...range, since: e.target.value })} /></label>
        <label>To <input type="datetime-local" value={range.until} onChange={(e) => setRange({ ...range, until: e.target.value })} /></label>
        <button type="submit" className="primary">Search</button>
        <CopyButton text={curlFor(location.origin, `/events${qs(params)}`)} label="Copy as curl" />
      </form>
      <ErrorBox error={q.error} />
      {q.isLoading ? <p className="muted">Searching…</p> : events.length === 0 ? <Empty>No events match.</Empty> : <EventTable events={events} onSelect={onSelect} selected={selected} label="Search results" />}
      <p className="actions">
        <span className="muted small">{fmt.format(events.length)} loaded</span>
        {q.hasNextPage && (
          <button type="button" onClick={() => void q.fetchNextPage()} disabled={q.isFetchingNextPage}>
            {q.isFetchingNextPage ? 'Loading…' : 'Load older'}
          </button>
        )}
      </p>
    </section>
  );
}

export function EventsPage() {
  const { search } = useLocation();
  const mode = search.get('mode') === 'search' ? 'search' : 'live';
  const filter: StreamFilter = {};
  for (const k of filterKeys) if (search.get(k)) filter[k] = search.get(k)!;
  const [draft, setDraft] = useState<StreamFilter>(filter);
  const [selected, setSelected] = useState<EventRow | null>(null);
  const go = (f: StreamFilter, m: string) => navigate(`/events${qs({ ...f, mode: m === 'search' ? 'search' : undefined })}`, { replace: true });
  return (
    <>
      <h1>Events</h1>
      <div className="toolbar">
        <div role="tablist" aria-label="Mode" className="segmented">
          <button type="button" role="tab" aria-selected={mode === 'live'} onClick={() => go(filter, 'live')}>Live</button>
          <button type="button" role="tab" aria-selected={mode === 'search'} onClick={() => go(filter, 'search')}>Search</button>
        </div>
        <form className="inline-form" aria-label="Filters" onSubmit={(e) => { e.preventDefault(); go(draft, mode); }}>
          {filterKeys.map((k) => (
            <label key={k}>
              {k.replace('_', ' ')} <input size={10} value={draft[k] ?? ''} onChange={(e) => setDraft({ ...draft, [k]: e.target.value || undefined })} />
            </label>
          ))}
          <button type="submit">Apply</button>
        </form>
      </div>
      <div className={selected ? 'split' : ''}>
        <div>
          {mode === 'live' ? <LiveTail filter={filter} onSelect={setSelected} selected={selected?.id} /> : <Search filter={filter} onSelect={setSelected} selected={selected?.id} />}
        </div>
        {selected && <EventDetail event={selected} onClose={() => setSelected(null)} />}
      </div>
    </>
  );
}
