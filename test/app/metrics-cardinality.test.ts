// A node that invents a new pot_type for every event must not grow /metrics or the core's memory:
// node-chosen label values beyond the configured and operator-installed pot types count as "other".
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry, type Metric } from 'prom-client';
import { buildCore, type Core } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { SimulatedNode } from '../../src/simulator/index.js';
import { waitFor } from '../events/helpers.js';
import { tempDir } from '../helpers/tmp.js';

const DISTINCT_POT_TYPES = 50_000;

describe('metric label cardinality under a pot_type flood', () => {
  const dir = tempDir('apiary-cardinality-');
  let core: Core;
  let base: string;
  let admin: string;
  let node: SimulatedNode;

  const metricsText = async () => {
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${admin}` }, signal: AbortSignal.timeout(30_000) });
    assert.equal(res.status, 200);
    return res.text();
  };
  /**
   * /metrics without the hpfeeds_* families, rendered by the same registry code. The hpfeeds
   * broker bounds its own ident/channel labels (a separate change); until it does, rendering its
   * 50k channel series takes longer than a loaded test machine allows.
   */
  const coreMetricsText = async () => {
    const only = new Registry();
    for (const m of core.registry.getMetricsAsArray()) if (!m.name.startsWith('hpfeeds_')) only.registerMetric(m as unknown as Metric);
    return only.metrics();
  };
  const stored = () => (core.database!.sqlite.prepare("SELECT count(*) AS n FROM events WHERE pot_type LIKE 'flood-%'").get() as { n: number }).n;

  /** Sends PotEvents with pot types flood-<from>..flood-<to-1>, in slices the socket can take. */
  const flood = async (from: number, to: number) => {
    for (let i = from; i < to; i += 2000) {
      const end = Math.min(to, i + 2000);
      for (let j = i; j < end; j++) {
        node.send({
          type: 'PotEvent',
          node_id: node.nodeId,
          pot_id: 'p1',
          pot_type: `flood-${j}`,
          event_type: 'probe',
          timestamp: new Date().toISOString(),
          data: { j },
        });
      }
      await waitFor(() => stored() >= end, 60_000, `${end} events stored`);
    }
  };

  before(async () => {
    const config = loadConfig(
      ['--api-host', '127.0.0.1', '--api-port', '0', '--node-tcp-host', '127.0.0.1', '--node-tcp-port', '0', '--hpfeeds-endpoint', 'tcp:port=0:interface=127.0.0.1'],
      { APIARY_DATA_DIR: dir.path, LOG_LEVEL: 'silent', ENROLLMENT_MODE: 'open', METRICS_POT_TYPES: 'mypot' },
    );
    core = await buildCore(config);
    base = `http://127.0.0.1:${core.addresses.api.port}`;
    admin = readFileSync(join(dir.path, 'admin-token'), 'utf8').trim();
    node = new SimulatedNode({ name: 'flooder', host: '127.0.0.1', port: core.addresses.nodeTcp.port, heartbeatMs: 60_000, pots: [] });
    const registered = node.waitFor('registered', { timeoutMs: 10_000 });
    node.start();
    await registered;
  });
  after(async () => {
    await node?.stop();
    await core?.close();
    dir.cleanup();
  });

  it('keeps /metrics and RSS flat while 50k distinct pot types arrive', { timeout: 300_000 }, async () => {
    await flood(0, 2000);
    assert.match(await metricsText(), /apiary_events_received_total\{pot_type="other"\} 2000\b/, '/metrics serves the core families');
    global.gc?.();
    const before = (await coreMetricsText()).length;
    const rssBefore = process.memoryUsage().rss;

    await flood(2000, DISTINCT_POT_TYPES);
    global.gc?.();
    const rssAfter = process.memoryUsage().rss;
    const text = await coreMetricsText();
    const afterSize = text.length;
    const rssGrowthMb = (rssAfter - rssBefore) / 1e6;
    process.stdout.write(`# /metrics core families ${before} -> ${afterSize} bytes; RSS ${(rssBefore / 1e6).toFixed(0)} -> ${(rssAfter / 1e6).toFixed(0)} MB\n`);

    // Counter values gain digits and the process families (GC kinds...) may add a few bounded
    // series; the 50k pot types must add none (before the fix: +5.6 MB).
    assert.ok(afterSize - before < 8192, `core families grew by ${afterSize - before} bytes`);
    assert.doesNotMatch(text, /flood-/);
    assert.match(text, new RegExp(`apiary_events_received_total\\{pot_type="other"\\} ${DISTINCT_POT_TYPES}\\b`));
    assert.match(text, /apiary_events_published_total\{channel="other"\} \d+/);
    assert.match(text, /apiary_events_published_total\{channel="apiary.events"\} \d+/);
    // Before the fix the same flood took RSS from ~185 MB to 1.7 GB (mostly when /metrics rendered).
    // About 120 MB of growth is the analytics counters of 50k distinct pot types (one scope each)
    // and the heaps that held them; the analytics fold thread (src/analytics/fold.ts) holds its own
    // copy until it is written, about 40 MB more.
    assert.ok(rssGrowthMb < 200, `RSS grew by ${rssGrowthMb.toFixed(0)} MB`);
  });

  it('keeps labels for configured and operator-installed pot types', async () => {
    const installed = await fetch(`${base}/api/v1/nodes/flooder/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: { InstallPot: { pot_id: 'p2', honeypot_type: 'newpot', auto_start: true } } }),
    });
    assert.equal(installed.status, 201);
    for (const potType of ['mypot', 'newpot', 'cowrie', 'invented']) {
      node.send({ type: 'PotEvent', node_id: node.nodeId, pot_id: 'p2', pot_type: potType, event_type: 'probe', timestamp: new Date().toISOString(), data: {} });
    }
    await waitFor(
      () => (core.database!.sqlite.prepare("SELECT count(*) AS n FROM events WHERE pot_id = 'p2'").get() as { n: number }).n === 4,
      10_000,
      'four events stored',
    );
    // Rows are visible once the writer thread commits; republishing (and its counter) follows on the
    // main thread when the commit is reported, so wait for the last of them.
    let text = '';
    const published = (t: string) => ['mypot', 'newpot', 'cowrie'].every((p) => new RegExp(`apiary_events_published_total\\{channel="${p}.events"\\} 1\\b`).test(t));
    const deadline = Date.now() + 10_000;
    do text = await coreMetricsText();
    while (!published(text) && Date.now() < deadline && (await new Promise((r) => setTimeout(r, 50)), true));
    for (const potType of ['mypot', 'newpot', 'cowrie']) {
      assert.match(text, new RegExp(`apiary_events_received_total\\{pot_type="${potType}"\\} 1\\b`), potType);
      assert.match(text, new RegExp(`apiary_events_published_total\\{channel="${potType}.events"\\} 1\\b`), potType);
    }
    assert.doesNotMatch(text, /pot_type="invented"/);
  });
});
