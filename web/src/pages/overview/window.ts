// The time window the overview shows: live (ending now, refreshed) or a past window chosen with
// the slider and replayed hour by hour.
export const HOUR = 3_600_000;
export const spans = [
  { label: '1 hour', ms: HOUR },
  { label: '6 hours', ms: 6 * HOUR },
  { label: '24 hours', ms: 24 * HOUR },
  { label: '7 days', ms: 7 * 24 * HOUR },
];
/** How far back the slider reaches. */
export const HISTORY_MS = 30 * 24 * HOUR;

export interface Window {
  /** null: live, the window ends now. */
  end: number | null;
  span: number;
}

export function bounds(w: Window, now = Date.now()): { since: string; until: string } {
  const end = w.end ?? now;
  return { since: new Date(end - w.span).toISOString(), until: new Date(end).toISOString() };
}

/** Hours are the precision of the top-N rollups: a replayed window ends on an hour boundary. */
export function hourFloor(ms: number): number {
  return Math.floor(ms / HOUR) * HOUR;
}
