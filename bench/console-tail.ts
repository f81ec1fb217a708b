// The console's live events tail under load: a simulated node sends `--rate` events/s (default
// 1000) into a composed core; Chromium (Debian's, headless) shows the Events page; for `--seconds`
// the page records every animation frame. Prints frames, dropped frames (a frame that took longer
// than 1.5 vsync intervals counts the intervals it missed), frame-time p50/p99/max, and the events
// the page received per second.
//   node --import tsx bench/console-tail.ts [--rate 1000] [--seconds 10] [--runs 3]
import { parseArgs } from 'node:util';
import { buildConsole } from '../scripts/build-console.js';
import { SimulatedNode } from '../src/simulator/index.js';
import { startTestCore, until } from '../test/helpers/core.js';
import { launchChromium } from '../test/console/browser.js';

const { values } = parseArgs({ options: { rate: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '10' }, runs: { type: 'string', default: '3' } } });
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const runs = Number(values.runs);

await buildConsole({ ifStale: true, quiet: true });
const t = await startTestCore({ args: ['--enrollment', 'open'] });
await t.core.users.create('bench', 'viewer', 'bench-password-123');
const node = new SimulatedNode({ name: 'bench-1', host: '127.0.0.1', port: t.core.addresses.nodeTcp.port, eventsPerSecond: rate, pots: [{ id: 'cowrie-01', type: 'cowrie', status: 'Running' }], announcePots: true });
node.start();
const browser = await launchChromium();
const results: { frames: number; dropped: number; p50: number; p99: number; max: number; eventsPerSecond: number }[] = [];
try {
  await until(() => node.registered, 'the node registered', 30_000);
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(30_000);
  await page.goto(t.base);
  await page.getByLabel('User name').fill('bench');
  await page.getByLabel('Password').fill('bench-password-123');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  await page.goto(`${t.base}/events`);
  await page.getByTestId('stream-state').getByText('connected').waitFor();
  for (let run = 0; run < runs; run++) {
    // The event rate actually flowing is read from the core (ids of stored events), not the page.
    const before = (await t.api('GET', '/api/v1/events?limit=1', { token: t.adminToken })).body.events[0]?.id ?? 0;
    // Frame timings recorded in the page. A string, not a function: tsx would wrap a function's
    // inner closures in a helper (__name) that does not exist in the page.
    const frames = (await page.evaluate(`new Promise((resolve) => {
      const deltas = [];
      let last = performance.now();
      const end = last + ${seconds * 1000};
      const tick = (now) => {
        deltas.push(now - last);
        last = now;
        if (now < end) requestAnimationFrame(tick);
        else resolve(deltas);
      };
      requestAnimationFrame(tick);
    })`)) as number[];
    const afterId = (await t.api('GET', '/api/v1/events?limit=1', { token: t.adminToken })).body.events[0]?.id ?? 0;
    const sorted = [...frames].sort((a, b) => a - b);
    const vsync = sorted[Math.floor(sorted.length / 2)]!;
    const dropped = frames.reduce((n, d) => n + (d > vsync * 1.5 ? Math.round(d / vsync) - 1 : 0), 0);
    results.push({
      frames: frames.length,
      dropped,
      p50: vsync,
      p99: sorted[Math.floor(sorted.length * 0.99)]!,
      max: sorted.at(-1)!,
      eventsPerSecond: (afterId - before) / seconds,
    });
    const r = results.at(-1)!;
    console.log(`run ${run + 1}: ${r.frames} frames, ${r.dropped} dropped (${((r.dropped / (r.frames + r.dropped)) * 100).toFixed(1)}%), frame p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms max ${r.max.toFixed(0)} ms; ${r.eventsPerSecond.toFixed(0)} events/s stored`);
  }
} finally {
  await browser.close();
  await node.stop();
  await t.close();
}
const median = <K extends keyof (typeof results)[number]>(k: K) => [...results].map((r) => r[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)]!;
console.log(`median of ${results.length}: ${median('dropped')} dropped frames in ${seconds} s, frame p99 ${median('p99').toFixed(1)} ms, max ${median('max').toFixed(0)} ms, at ${median('eventsPerSecond').toFixed(0)} events/s`);
