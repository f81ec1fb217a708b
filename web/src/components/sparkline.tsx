// An SVG sparkline: a few dozen points do not need a chart library.
export function Sparkline({ points, label, width = 240, height = 48 }: { points: { start: string; count: number }[]; label: string; width?: number; height?: number }) {
  const max = Math.max(1, ...points.map((p) => p.count));
  const step = points.length > 1 ? width / (points.length - 1) : width;
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${(i * step).toFixed(1)},${(height - 2 - (p.count / max) * (height - 4)).toFixed(1)}`).join(' ');
  const last = points.at(-1)?.count ?? 0;
  return (
    <svg className="sparkline" viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label={`${label}: ${last} in the last bucket, peak ${max}`}>
      {points.length > 0 && <path d={`${path} L${((points.length - 1) * step).toFixed(1)},${height} L0,${height} Z`} className="area" />}
      {points.length > 0 && <path d={path} className="line" />}
    </svg>
  );
}
