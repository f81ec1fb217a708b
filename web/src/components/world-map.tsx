// Attacks by country on an offline world map: Natural Earth 1:110m countries (the world-atlas npm
// package, bundled) projected with d3-geo. Nothing is fetched from anywhere at run time.
import { useMemo } from 'react';
import { geoNaturalEarth1, geoPath } from 'd3-geo';
import { feature } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';
import countries110m from 'world-atlas/countries-110m.json';
import { numericCode } from './country-codes';
import { fmt } from './ui';

const WIDTH = 960;
const HEIGHT = 500;

interface Shape {
  id: string;
  name: string;
  d: string;
}

let shapes: Shape[] | undefined;
function countryShapes(): Shape[] {
  if (shapes) return shapes;
  const topo = countries110m as unknown as Topology<{ countries: GeometryCollection<{ name: string }> }>;
  const fc = feature(topo, topo.objects.countries);
  const projection = geoNaturalEarth1().fitSize([WIDTH, HEIGHT], fc);
  const path = geoPath(projection);
  shapes = fc.features.map((f) => ({ id: String(f.id ?? ''), name: f.properties?.name ?? '', d: path(f) ?? '' }));
  return shapes;
}

/** `counts`: attack counts by ISO alpha-2 country code (as GET /attacks/top?by=country answers). */
export function WorldMap({ counts, label }: { counts: { key: string; count: number }[]; label: string }) {
  const all = useMemo(countryShapes, []);
  const byNumeric = useMemo(() => {
    const m = new Map<string, { code: string; count: number }>();
    for (const c of counts) {
      const n = numericCode(c.key);
      if (n) m.set(n, { code: c.key.toUpperCase(), count: (m.get(n)?.count ?? 0) + c.count });
    }
    return m;
  }, [counts]);
  const max = Math.max(1, ...[...byNumeric.values()].map((v) => v.count));
  return (
    <figure className="world-map">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={label}>
        {all.map((s) => {
          const hit = byNumeric.get(s.id);
          // Log scale: one country with thousands must not wash out those with tens.
          const level = hit ? Math.max(1, Math.ceil((Math.log1p(hit.count) / Math.log1p(max)) * 5)) : 0;
          return (
            <path key={s.id + s.name} d={s.d} className={`country l${level}`} data-country={hit?.code}>
              <title>{hit ? `${s.name}: ${fmt.format(hit.count)}` : s.name}</title>
            </path>
          );
        })}
      </svg>
      <figcaption className="legend">
        <span>fewer</span>
        {[1, 2, 3, 4, 5].map((l) => (
          <span key={l} className={`swatch l${l}`} aria-hidden="true" />
        ))}
        <span>more attacks</span>
      </figcaption>
    </figure>
  );
}
