// Bucket ranges of a query window: hour edges and the whole days between them. Day rollups are
// used only for days the ingest has folded completely.
import { DAY_MS, HOUR_MS } from './dimensions.js';

export interface RangePart {
  table: 'attack_rollup_hour' | 'attack_rollup_day';
  from: number;
  to: number;
  unit: number;
}

/**
 * Splits [since, until) widened to hours into hour edges and whole days; day rows are used only
 * for days the ingest has folded completely (before `dayRollupUntilHour`).
 */
export function windowParts(since: number, until: number, dayRollupUntilHour: number | null): RangePart[] {
  const sinceH = Math.floor(since / HOUR_MS);
  const untilH = Math.ceil(until / HOUR_MS);
  const firstDay = Math.ceil(sinceH / 24);
  const lastDay = Math.min(Math.floor(untilH / 24), Math.floor((dayRollupUntilHour ?? 0) / 24));
  if (firstDay >= lastDay) return [{ table: 'attack_rollup_hour', from: sinceH, to: untilH, unit: HOUR_MS }];
  const parts: RangePart[] = [];
  if (sinceH < firstDay * 24) parts.push({ table: 'attack_rollup_hour', from: sinceH, to: firstDay * 24, unit: HOUR_MS });
  parts.push({ table: 'attack_rollup_day', from: firstDay, to: lastDay, unit: DAY_MS });
  if (lastDay * 24 < untilH) parts.push({ table: 'attack_rollup_hour', from: lastDay * 24, to: untilH, unit: HOUR_MS });
  return parts;
}
