import { lazy, Suspense, useEffect, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { api, qs } from '../../api/client';
import type { NodeRow, TimelineAnswer, TopAnswer, TopDimension } from '../../api/types';
import { Sparkline } from '../../components/sparkline';
import { Empty, ErrorBox, fmt, Loading } from '../../components/ui';
import { Link } from '../../router';
import { bounds, HISTORY_MS, hourFloor, HOUR, spans, type Window } from './window';

// The map (d3-geo and the Natural Earth shapes) is the heaviest part of the console: loaded with
// this page only, so the login and other pages stay small.
const WorldMap = lazy(async () => ({ default: (await import('../../components/world-map')).WorldMap }));

const LIVE_REFRESH_MS = 5_000;

function useTop(by: TopDimension, w: Window, limit = 10) {
  return useQuery({
    queryKey: ['top', by, w.end, w.span, limit],
    queryFn: () => api<TopAnswer>('GET', `/attacks/top${qs({ by, limit, ...bounds(w) })}`),
    refetchInterval: w.end === null ? LIVE_REFRESH_MS : false,
    placeholderData: (prev) => prev,
  });
}

function FleetCounts() {
  const nodes = useQuery({ queryKey: ['nodes'], queryFn: () => api<{ nodes: NodeRow[] }>('GET', '/nodes'), refetchInterval: LIVE_REFRESH_MS });
  if (nodes.error) return <ErrorBox error={nodes.error} />;
  const list = nodes.data?.nodes ?? [];
  const online = list.filter((n) => n.online).length;
  const pending = list.filter((n) => n.enrollment === 'pending').length;
  const offline = list.filter((n) => !n.online && n.enrollment !== 'pending' && n.enrollment !== 'revoked').length;
  return (
    <dl className="stats" aria-busy={nodes.isLoading}>
      <div className="stat ok">
        <dt>
          <Link to="/nodes?enrollment=online">Online</Link>
        </dt>
        <dd data-testid="nodes-online">{online}</dd>
      </div>
      <div className="stat muted">
        <dt>
          <Link to="/nodes?enrollment=offline">Offline</Link>
        </dt>
        <dd data-testid="nodes-offline">{offline}</dd>
      </div>
      <div className="stat warn">
        <dt>
          <Link to="/nodes?enrollment=pending">Pending</Link>
        </dt>
        <dd data-testid="nodes-pending">{pending}</dd>
      </div>
    </dl>
  );
}

/** The last 60 minutes, one point each: the timeline lists only minutes that had attacks. */
function minutes(points: { start: string; count: number }[], now: number): { start: string; count: number }[] {
  const byMinute = new Map(points.map((p) => [Math.floor(Date.parse(p.start) / 60_000), p.count]));
  const current = Math.floor(now / 60_000);
  const out = [];
  for (let m = current - 59; m <= current; m++) out.push({ start: new Date(m * 60_000).toISOString(), count: byMinute.get(m) ?? 0 });
  return out;
}

function EventsPerMinute() {
  const t = useQuery({
    queryKey: ['timeline-minute'],
    queryFn: () => api<TimelineAnswer>('GET', `/attacks/timeline${qs({ bucket: 'minute', since: new Date(Date.now() - 60 * 60_000).toISOString() })}`),
    refetchInterval: LIVE_REFRESH_MS,
  });
  const points = minutes(t.data?.series[0]?.points ?? [], Date.now());
  const last = points.at(-1)?.count ?? 0;
  return (
    <div className="stat spark">
      <dt>Attacks per minute (last hour)</dt>
      <dd>
        <span className="big">{fmt.format(last)}</span>
        <Sparkline points={points} label="Attacks per minute over the last hour" />
      </dd>
    </div>
  );
}

function TopList({ title, by, w, render }: { title: string; by: TopDimension; w: Window; render?: (key: string, item: TopAnswer['items'][number]) => React.ReactNode }) {
  const q = useTop(by, w);
  const items = q.data?.items ?? [];
  const max = Math.max(1, ...items.map((i) => i.count));
  return (
    <section className="card top-list" aria-labelledby={`top-${by}`}>
      <h2 id={`top-${by}`}>{title}</h2>
      <ErrorBox error={q.error} />
      {q.isLoading ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>Nothing in this window.</Empty>
      ) : (
        <ol>
          {items.map((i) => (
            <li key={i.key}>
              <span className="bar" style={{ width: `${(i.count / max) * 100}%` }} aria-hidden="true" />
              <span className="key">{render ? render(i.key, i) : i.key}</span>
              <span className="count">{fmt.format(i.count)}</span>
            </li>
          ))}
        </ol>
      )}
      {q.data && !q.data.exact && <p className="muted small">Approximate: each count may be up to {fmt.format(q.data.max_undercount)} low.</p>}
    </section>
  );
}

function WindowControls({ w, setW }: { w: Window; setW: (w: Window) => void }) {
  const [playing, setPlaying] = useState(false);
  const now = hourFloor(Date.now()) + HOUR;
  const earliest = now - HISTORY_MS;
  // Replay: the window's end walks forward an hour a second until it reaches now (then live).
  useEffect(() => {
    if (!playing) return;
    const timer = setInterval(() => {
      const end = (w.end ?? now) + HOUR;
      if (end >= now) {
        setPlaying(false);
        setW({ ...w, end: null });
      } else setW({ ...w, end });
    }, 1000);
    return () => clearInterval(timer);
  }, [playing, w, now, setW]);
  const end = w.end ?? now;
  return (
    <fieldset className="window-controls">
      <legend>Time window</legend>
      <label>
        Length{' '}
        <select value={w.span} onChange={(e) => setW({ ...w, span: Number(e.target.value) })}>
          {spans.map((s) => (
            <option key={s.ms} value={s.ms}>
              {s.label}
            </option>
          ))}
        </select>
      </label>
      <label className="slider">
        Ending{' '}
        <input
          type="range"
          min={earliest}
          max={now}
          step={HOUR}
          value={end}
          aria-valuetext={w.end === null ? 'now (live)' : new Date(end).toLocaleString()}
          onChange={(e) => {
            const v = Number(e.target.value);
            setW({ ...w, end: v >= now ? null : v });
          }}
        />
        <output data-testid="window-end">{w.end === null ? 'now (live)' : new Date(end).toLocaleString()}</output>
      </label>
      <button type="button" onClick={() => setPlaying(!playing)} disabled={w.end === null && !playing}>
        {playing ? 'Pause replay' : 'Replay to now'}
      </button>
      <button type="button" className={w.end === null ? 'primary' : ''} aria-pressed={w.end === null} onClick={() => { setPlaying(false); setW({ ...w, end: null }); }}>
        Live
      </button>
    </fieldset>
  );
}

export function OverviewPage() {
  const [w, setW] = useState<Window>({ end: null, span: 24 * HOUR });
  const countries = useTop('country', w, 250);
  const countryItems = (countries.data?.items ?? []).filter((i) => /^[A-Za-z]{2}$/.test(i.key));
  return (
    <>
      <h1>Overview</h1>
      <section aria-label="Fleet and activity" className="overview-stats">
        <FleetCounts />
        <dl className="stats">
          <EventsPerMinute />
        </dl>
      </section>
      <WindowControls w={w} setW={setW} />
      <section className="card" aria-labelledby="map-title">
        <h2 id="map-title">
          Attacks by country <span className="muted small">{w.end === null ? '(live)' : '(replay)'}</span>
        </h2>
        <ErrorBox error={countries.error} />
        <Suspense fallback={<Loading label="Loading the map" />}>
          <WorldMap counts={countryItems} label={`Attacks by country: ${countryItems.slice(0, 5).map((c) => `${c.key} ${c.count}`).join(', ') || 'none'}`} />
        </Suspense>
        <p className="muted small" data-testid="map-countries">
          {countryItems.length === 0 ? 'No attacks with a known country in this window.' : `${countryItems.length} countries; top: ${countryItems.slice(0, 3).map((c) => `${c.key} (${fmt.format(c.count)})`).join(', ')}`}
        </p>
      </section>
      <div className="grid">
        <TopList title="Top attackers" by="src_ip" w={w} render={(k) => <Link to={`/attackers/${encodeURIComponent(k)}`}>{k}</Link>} />
        <TopList title="Top ports" by="dst_port" w={w} />
        <TopList title="Top credentials" by="credential" w={w} render={(k, i) => <code>{i.username !== undefined ? `${i.username} / ${i.password ?? ''}` : k}</code>} />
        <TopList title="Top commands" by="command" w={w} render={(k) => <code>{k}</code>} />
        <TopList title="Top countries" by="country" w={w} />
        <TopList title="Top networks (ASN)" by="asn" w={w} render={(k, i) => <>AS{k} <span className="muted small">{i.as_org ?? ''}</span></>} />
      </div>
    </>
  );
}
